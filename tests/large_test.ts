/**
 * Large 2-D images: block plan, strip-by-strip TIFF writing and lazy region reading, the label
 * merge (exact on crops of one label image, robust when blocks disagree), the dynamics run block
 * by block, and segmentLarge end to end (one block: identical to segment(); many blocks with an
 * identity network: the same masks).
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { FIXTURES, REPO } from "./fixtures.ts";
import { matchMasks } from "./match_masks.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { computeMasks } from "../dynamics/compute_masks.ts";
import { renumber } from "../dynamics/labels.ts";
import { masksToFlows } from "../dynamics/masks_to_flows.ts";
import { openTiff } from "../io/tiff_lazy.ts";
import { readTiff } from "../io/tiff_read.ts";
import { needsBigTiff, TiffStripWriter } from "../io/tiff_strips.ts";
import { loadModel } from "../models/load.ts";
import { type Block, neighbours, planBlocks } from "../pipeline/blocks.ts";
import { convertImage } from "../pipeline/channels.ts";
import { blockOutput, decodeSummary, encodeSummary } from "../pipeline/merge_labels.ts";
import { imageNormalization, normalizeImage } from "../pipeline/normalize.ts";
import { segment } from "../pipeline/segment.ts";
import { assembleBlocks } from "../pipeline/assemble.ts";
import { segmentLarge } from "../pipeline/segment_large.ts";
import { arraySource } from "../io/array_source.ts";
import { identity } from "./identity_net.ts";

/** Seeded uniform numbers in [0, 1). */
function random(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** Ellipses with radii 6..16 (many touching), about one per `density` pixels; labels 1..N. */
function ellipses(h: number, w: number, seed = 7, density = 700): NdArray<Uint32Array> {
  const rnd = random(seed);
  const lab = new Uint32Array(h * w);
  let n = 0;
  for (let k = 0; k < h * w / density; k++) {
    const cy = rnd() * h, cx = rnd() * w, ry = 6 + rnd() * 10, rx = 6 + rnd() * 10;
    n++;
    for (let y = Math.max(0, Math.floor(cy - ry)); y < Math.min(h, cy + ry); y++) {
      for (let x = Math.max(0, Math.floor(cx - rx)); x < Math.min(w, cx + rx); x++) {
        const inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1;
        if (inside && lab[y * w + x] === 0) lab[y * w + x] = n;
      }
    }
  }
  // ellipses hidden under earlier ones leave gaps: renumber in order
  const ids = new Map<number, number>();
  for (const v of lab) if (v && !ids.has(v)) ids.set(v, ids.size + 1);
  return { data: lab.map((v) => ids.get(v) ?? 0), shape: [h, w] };
}

/** Channel `c` of [C, H, W] (or the [H, W] array itself) cut to a block's region. */
function crop<T extends NumericArray>(a: NdArray<T>, b: Block, c = 0): T {
  const [h, w] = a.shape.slice(-2);
  const bh = b.y1 - b.y0, bw = b.x1 - b.x0;
  const out = new (a.data.constructor as { new (n: number): T })(bh * bw);
  for (let y = 0; y < bh; y++) {
    const from = c * h * w + (y + b.y0) * w + b.x0;
    out.set(a.data.subarray(from, from + bw), y * bw);
  }
  return out;
}

async function readLabels(path: string): Promise<NdArray<NumericArray>> {
  return (await readTiff(await Deno.readFile(path), path)).image;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "large_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("blocks: cores tile the image, regions are cores grown by the halo", () => {
  const plan = planBlocks(1500, 1300, { blockSize: 512, halo: 64 });
  assertEquals([plan.rows, plan.cols, plan.blocks.length], [3, 3, 9]);
  const cover = new Uint8Array(1500 * 1300);
  for (const b of plan.blocks) {
    assertEquals(b.id, b.row * plan.cols + b.col);
    for (let y = b.core.y0; y < b.core.y1; y++) {
      for (let x = b.core.x0; x < b.core.x1; x++) cover[y * 1300 + x]++;
    }
    assertEquals(b.y0, Math.max(0, b.core.y0 - 64));
    assertEquals(b.x1, Math.min(1300, b.core.x1 + 64));
  }
  assert(cover.every((v) => v === 1), "every pixel in exactly one core");
  assertEquals(plan.blocks[8].core, { y0: 1024, x0: 1024, y1: 1500, x1: 1300 });
  assertEquals(neighbours(plan, 4).map((b) => b.id), [0, 1, 2, 3, 5, 6, 7, 8]);
  assertEquals(neighbours(plan, 2).map((b) => b.id), [1, 4, 5]);
  // defaults, and one block for a small image
  assertEquals(planBlocks(100, 100).blocks.length, 1);
  assertEquals([planBlocks(5000, 5000).blockSize, planBlocks(5000, 5000).halo], [2048, 128]);
  for (
    const [o, field] of [
      [{ blockSize: 100, halo: 51 }, "halo must be at most blockSize / 2 = 50, got 51"],
      [{ blockSize: 1 }, "blockSize must be an integer >= 2, got 1"],
      [{ halo: -1 }, "halo must be an integer >= 0, got -1"],
      [{ blockSize: 100.5 }, "blockSize must be an integer >= 2"],
    ] as const
  ) {
    const e = assertThrows(() => planBlocks(100, 100, o), CellposeError, field);
    assertEquals(e.code, "BAD_PARAMETER");
  }
  assertThrows(() => planBlocks(0, 10), CellposeError, "height must be an integer >= 1, got 0");
});

Deno.test("tiff strips: written row band by row band (classic and BigTIFF), read whole and by region", async () => {
  assert(needsBigTiff(40000 * 40000 * 4) && !needsBigTiff(20000 * 20000 * 2));
  assert(needsBigTiff(2 ** 32 - 2 ** 20) && !needsBigTiff(4.2e9));
  await withTempDir(async (dir) => {
    const cases = [
      [Uint8Array, "none", 300, 7, false],
      [Uint16Array, "none", 1000, 77, false],
      [Uint32Array, "deflate", 20000, 9, false],
      [Uint8Array, "none", 300, 7, true],
      [Uint16Array, "none", 1000, 77, true],
      [Uint32Array, "deflate", 20000, 9, true],
    ] as const;
    for (const [type, compression, w, h, bigTiff] of cases) {
      const path = join(dir, `${type.name}-${bigTiff}.tif`);
      const full = new type(w * h).map((_, i) =>
        (i * 7919) % 65537 % 2 ** (8 * type.BYTES_PER_ELEMENT)
      );
      const out = await TiffStripWriter.create(path, w, h, type, { compression, bigTiff });
      for (let y = 0; y < h; y += 5) await out.write(full.subarray(y * w, Math.min(h, y + 5) * w));
      assertEquals(out.rowsWritten, h);
      await out.close();
      const version = new DataView((await Deno.readFile(path)).buffer).getUint16(2, true);
      assertEquals(version, bigTiff ? 43 : 42, "BigTIFF's version number");
      const back = await readLabels(path);
      assertEquals(back.shape, [h, w]);
      assertEquals(back.data.constructor, type);
      assertEquals(back.data, full, `${type.name} ${compression}`);
      const src = await openTiff(path);
      assertEquals([src.height, src.width, src.channels], [h, w, 1]);
      const r = { y0: 2, x0: 150, y1: h - 1, x1: 299 };
      const region = await src.read(r);
      assertEquals(region.shape, [r.y1 - r.y0, r.x1 - r.x0]);
      let same = true;
      for (let y = r.y0; y < r.y1; y++) {
        for (let x = r.x0; x < r.x1; x++) {
          same &&= region.data[(y - r.y0) * (r.x1 - r.x0) + x - r.x0] === full[y * w + x];
        }
      }
      assert(same, `region of ${type.name}`);
      const outside = await assertRejects(
        () => src.read({ y0: 0, x0: 0, y1: h + 1, x1: 1 }),
        CellposeError,
        `must be a non-empty part of the ${h} x ${w} image`,
      );
      assertEquals(outside.code, "BAD_PARAMETER");
      await src.close();
    }
    const path = join(dir, "bad.tif");
    const w = await TiffStripWriter.create(path, 10, 2, Uint16Array);
    const e1 = await assertRejects(
      () => w.write(new Uint32Array(10)),
      CellposeError,
      "Uint16Array",
    );
    assertEquals(e1.code, "BAD_DTYPE");
    const e2 = await assertRejects(() => w.write(new Uint16Array(15)), CellposeError, "whole rows");
    assertEquals(e2.code, "BAD_SHAPE");
    await w.write(new Uint16Array(10));
    await assertRejects(() => w.close(), CellposeError, "only 1 of 2 rows were written");
    await assertRejects(
      () => TiffStripWriter.create(path, 0, 2, Uint8Array),
      CellposeError,
      "positive integer size",
    );
    await Deno.writeTextFile(path, "not a tiff at all");
    const e3 = await assertRejects(() => openTiff(path), CellposeError, "not a TIFF file");
    assertEquals(e3.code, "BAD_FILE");
    await assertRejects(() => openTiff(join(dir, "missing.tif")), CellposeError, "cannot open");
  });
});

Deno.test("openTiff: regions of tiled, planar, big-endian, BigTIFF and compressed files", async () => {
  const dir = join(REPO, "tests", "data", "tiff");
  for (
    const name of [
      "rgb_chunky.tif",
      "rgb_planar_tiled.tif",
      "deflate_tiled_u16.tif",
      "bigendian_i16.tif",
      "bigtiff_u16.tif",
      "f64.tif",
      "i32_lzw.tif",
    ]
  ) {
    const path = join(dir, name);
    const { image, axes } = await readTiff(await Deno.readFile(path), name);
    const planar = axes === "CYX";
    const [h, w] = planar ? image.shape.slice(1) : image.shape;
    const c = planar ? image.shape[0] : image.shape[2] ?? 1;
    const src = await openTiff(path);
    assertEquals([src.height, src.width, src.channels], [h, w, c], name);
    const r = { y0: 3, x0: 2, y1: h - 1, x1: w - 3 };
    const region = await src.read(r);
    assertEquals(region.data.constructor, image.data.constructor, name);
    const rw = r.x1 - r.x0;
    let same = true;
    for (let y = r.y0; y < r.y1; y++) {
      for (let x = r.x0; x < r.x1; x++) {
        for (let k = 0; k < c; k++) {
          const want = planar ? image.data[(k * h + y) * w + x] : image.data[(y * w + x) * c + k];
          same &&= region.data[((y - r.y0) * rw + x - r.x0) * c + k] === want;
        }
      }
    }
    assert(same, name);
    await src.close();
  }
});

Deno.test("merge: crops of one label image merge back to it exactly, uint32 past 65535 masks", async () => {
  await withTempDir(async (dir) => {
    // touching ellipses (diameter <= 32 = halo) cut by many block borders
    const lab = ellipses(700, 600);
    let n = 0;
    for (const v of lab.data) n = Math.max(n, v);
    // 3 x 3 squares on a 4-pixel grid: 76176 masks
    const sq = new Uint32Array(1104 * 1104);
    for (let y = 0; y < 1104; y++) {
      for (let x = 0; x < 1104; x++) {
        if (y % 4 < 3 && x % 4 < 3) sq[y * 1104 + x] = (y >> 2) * 276 + (x >> 2) + 1;
      }
    }
    const squares: NdArray<Uint32Array> = { data: sq, shape: [1104, 1104] };
    const cases: [NdArray<Uint32Array>, number, number][] = [
      [lab, 128, 32],
      [lab, 256, 64],
      [squares, 256, 8],
    ];
    for (const [labels, blockSize, halo] of cases) {
      const plan = planBlocks(labels.shape[0], labels.shape[1], { blockSize, halo });
      const out = join(dir, "merged.tif");
      const r = await assembleBlocks(plan, (b) => {
        // each block numbers its masks on its own: reversed local labels
        const region = crop(labels, b);
        const ids = [...new Set(region)].filter((v) => v).sort((a, c) => c - a);
        const local = new Map(ids.map((v, i) => [v, i + 1]));
        const data = region.map((v) => (v ? local.get(v)! : 0));
        // as a remote worker would hand it over: the summary as bytes
        const { core, summary } = blockOutput({ data, shape: [b.y1 - b.y0, b.x1 - b.x0] }, b, plan);
        return Promise.resolve({ core, summary: decodeSummary(encodeSummary(summary)) });
      }, out);
      const merged = await readLabels(out);
      const m = matchMasks(merged, labels, 1);
      assertEquals([m.missing, m.extra], [[], []], `blocks ${blockSize}/${halo}`);
      assertEquals(r.nMasks, labels === lab ? n : 76176);
      assertEquals(merged.data.constructor, labels === lab ? Uint16Array : Uint32Array);
    }
    const bad = assertThrows(
      () => decodeSummary(new Uint8Array(20)),
      CellposeError,
      "not an encoded block summary (20 bytes)",
    );
    assertEquals(bad.code, "BAD_VALUE");
  });
});

Deno.test("merge: blocks that disagree about a cell keep it once, whole", async () => {
  await withTempDir(async (dir) => {
    // two blocks side by side (cores x 0..32 and 32..64, halo 16); a 10 x 12 cell at x 26..38
    const plan = planBlocks(20, 64, { blockSize: 32, halo: 16 });
    const cell = (x0: number, x1: number) => (b: Block) => {
      const w = b.x1 - b.x0, data = new Uint16Array(20 * w);
      for (let y = 5; y < 15; y++) for (let x = x0; x < x1; x++) data[y * w + x - b.x0] = 1;
      return blockOutput({ data, shape: [20, w] }, b, plan);
    };
    const cases: [string, [number, number][]][] = [
      // left sees it reaching further right (centroid in the right core) and vice versa
      ["owned by neither", [[26, 40], [24, 38]]],
      // each sees its own side larger: both own it
      ["owned by both", [[24, 38], [26, 40]]],
      ["seen the same", [[26, 38], [26, 38]]],
    ];
    for (const [name, [a, b]] of cases) {
      const out = join(dir, "two.tif");
      const r = await assembleBlocks(
        plan,
        (blk) => Promise.resolve(cell(...(blk.id === 0 ? a : b))(blk)),
        out,
      );
      const merged = (await readLabels(out)).data;
      assertEquals(r.nMasks, 1, name);
      // one mask, the union of both views: each core shows its own view, a neighbour's view
      // is painted where the own one has no kept mask
      const row = Array.from(merged.subarray(10 * 64, 11 * 64));
      const lo = Math.min(a[0], b[0]), hi = Math.max(a[1], b[1]);
      assertEquals(
        [row.indexOf(1), row.lastIndexOf(1), row.filter((v) => v === 1).length],
        [lo, hi - 1, hi - lo],
        name,
      );
    }
  });
});

/** The label image renumbered 1..N in order of first appearance (equal up to renumbering). */
function canonical(a: NdArray<NumericArray>): Uint32Array {
  const l = Uint32Array.from(a.data as ArrayLike<number>);
  renumber(l);
  return l;
}

Deno.test("dynamics per block with a halo and a frame: exactly the labels of one pass", async () => {
  const lab = ellipses(384, 320, 11);
  const [h, w] = lab.shape;
  const flows = masksToFlows(lab);
  const dP = { data: flows.data.map((v) => 5 * v), shape: [2, h, w] };
  const cellprob = { data: Float32Array.from(lab.data, (v) => (v ? 4 : -4)), shape: [h, w] };
  const opts = { device: "cpu", flowThreshold: 0 } as const;
  const whole = await computeMasks(dP, cellprob, opts);
  const plan = planBlocks(h, w, { blockSize: 128, halo: 32 });
  await withTempDir(async (dir) => {
    const out = join(dir, "dyn.tif");
    const r = await assembleBlocks(plan, async (b) => {
      const bh = b.y1 - b.y0, bw = b.x1 - b.x0;
      const d = new Float32Array(2 * bh * bw);
      d.set(crop(dP, b, 0), 0);
      d.set(crop(dP, b, 1), bh * bw);
      const m = await computeMasks(
        { data: d, shape: [2, bh, bw] },
        { data: crop(cellprob, b), shape: [bh, bw] },
        { ...opts, frame: { origin: [b.y0, b.x0], fullShape: [h, w] } },
      );
      return blockOutput(m, b, plan);
    }, out);
    // cellpose's trajectories depend on the image size and origin (grid_sample at
    // p * L / (L - 1) - 0.5): with the frame a block follows the whole image's, so every pixel
    // (173 masks) gets its single-pass mask. Without it, 2469 pixels moved and 70 masks had
    // IoU < 0.99 (2 below 0.9).
    assertEquals(r.nMasks, 173);
    assertEquals(canonical(await readLabels(out)), canonical(whole));
  });
});

Deno.test("segmentLarge: many blocks through the whole path give the masks of segment()", async () => {
  // an image whose channels are flows and cell probability, through the identity network
  const lab = ellipses(320, 300, 5);
  const [h, w] = lab.shape;
  const flows = masksToFlows(lab);
  const image = new Float32Array(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    image[3 * i] = 5 * flows.data[i];
    image[3 * i + 1] = 5 * flows.data[h * w + i];
    image[3 * i + 2] = lab.data[i] ? 4 : -4;
  }
  const img = { data: image, shape: [h, w, 3] };
  const opts = { model: identity, normalize: false, device: "cpu", flowThreshold: 0 } as const;
  const whole = await segment(img, { ...opts, channelAxis: 2 });
  await withTempDir(async (dir) => {
    const out = join(dir, "identity.tif");
    const fractions: number[] = [];
    const r = await segmentLarge(arraySource(img), out, {
      ...opts,
      blockSize: 128,
      halo: 32,
      onProgress: (p) => p.fraction !== undefined && fractions.push(p.fraction),
    });
    assertEquals(r.blocks, 9);
    assertEquals(fractions.at(-1), 1);
    assert(["normalize", "blocks", "merge", "write", "total"].every((k) => k in r.timings));
    assertEquals(r.nMasks, whole.nMasks);
    assertEquals(canonical(await readLabels(out)), canonical(whole.masks));
    // cancelled between blocks: no output, no temporary tiles left
    const abort = new AbortController();
    let blocks = 0;
    const e = await assertRejects(
      () =>
        segmentLarge(arraySource(img), join(dir, "cancelled.tif"), {
          ...opts,
          blockSize: 128,
          tempDir: dir,
          signal: abort.signal,
          onProgress: () => ++blocks === 2 && abort.abort(),
        }),
      CellposeError,
      "cancelled",
    );
    assertEquals([e.code, blocks], ["CANCELLED", 2]);
    assertEquals([...Deno.readDirSync(dir)].map((f) => f.name), ["identity.tif"]);
  });
});

Deno.test({
  name: "segmentLarge: one block is segment() exactly (tiny cpsam, TIFF read lazily)",
  sanitizeResources: false,
  async fn() {
    await withTempDir(async (dir) => {
      const models = join(dir, "models");
      await Deno.mkdir(models);
      const previous = Deno.env.get("CELLPOSE_LOCAL_MODELS_PATH");
      Deno.env.set("CELLPOSE_LOCAL_MODELS_PATH", models);
      // the fixture folder is read-only: the checkpoint is converted from a copy in the cache
      await Deno.copyFile(join(FIXTURES, "tiny-cpsam.pt"), join(models, "tiny-cpsam.pt"));
      const model = await loadModel(join(models, "tiny-cpsam.pt"), {
        device: "cpu",
        numThreads: 1,
      });
      try {
        const [h, w] = [200, 180];
        const rnd = random(3);
        const lab = ellipses(h, w, 9, 500);
        const pixels = Uint16Array.from(lab.data, (v) => (v ? 900 : 100) + Math.floor(rnd() * 50));
        const input = join(dir, "blobs.tif");
        const writer = await TiffStripWriter.create(input, w, h, Uint16Array);
        await writer.write(pixels);
        await writer.close();
        const whole = await segment({ data: pixels, shape: [h, w] }, { model, device: "cpu" });
        const out = join(dir, "masks.tif");
        const r = await segmentLarge(input, out, { model, device: "cpu", blockSize: 512 });
        assertEquals(r.blocks, 1);
        assertEquals(r.nMasks, whole.nMasks);
        assertEquals((await readLabels(out)).data, whole.masks.data);
        const e = await assertRejects(
          () => segmentLarge(input, out, { model, do3D: true }),
          CellposeError,
          "2-D images only",
        );
        assertEquals(e.code, "BAD_PARAMETER");
        await assertRejects(
          () => segmentLarge(input, out, { model, normalize: { tileNormBlocksize: 64 } }),
          CellposeError,
          "tile normalisation is per block",
        );
      } finally {
        await model.dispose();
        if (previous === undefined) Deno.env.delete("CELLPOSE_LOCAL_MODELS_PATH");
        else Deno.env.set("CELLPOSE_LOCAL_MODELS_PATH", previous);
      }
    });
  },
});

Deno.test("imageNormalization: the whole image's percentiles (subsampled past 224^3), constant channels", async () => {
  // 3400 x 3400 > 224^3 pixels: cellpose takes its percentiles on a strided subsample
  const [h, w] = [3400, 3400];
  const rnd = random(1);
  const grey = Uint8Array.from({ length: h * w }, () => Math.floor(rnd() * 256));
  const big = { data: grey, shape: [h, w] };
  const n1 = await imageNormalization(arraySource(big), planBlocks(h, w, { blockSize: 1024 }), {});
  assertEquals(n1.zeroChannels, []);
  const reference = normalizeImage(convertImage(big));
  const fixed = normalizeImage(convertImage(big), n1.normalize as object);
  assertEquals(fixed.data, reference.data);

  // two channels, the second constant; inverted: the constant channel still ends as 0
  const two = new Uint16Array(100 * 80 * 2);
  for (let i = 0; i < 100 * 80; i++) (two[2 * i] = Math.floor(rnd() * 4000)), (two[2 * i + 1] = 7);
  const img = { data: two, shape: [100, 80, 2] };
  const n2 = await imageNormalization(arraySource(img), planBlocks(100, 80, { blockSize: 32 }), {
    invert: true,
  });
  assertEquals(n2.zeroChannels, [1]);
  const zeroed = { data: two.map((v, i) => (i % 2 ? 0 : v)), shape: img.shape };
  assertEquals(
    normalizeImage(convertImage(zeroed, { channelAxis: 2 }), n2.normalize as object).data,
    normalizeImage(convertImage(img, { channelAxis: 2 }), { invert: true }).data,
  );
  assertEquals(
    await imageNormalization(arraySource(img), planBlocks(100, 80), { normalize: false }),
    { normalize: false, zeroChannels: [] },
  );
});
