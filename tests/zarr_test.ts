/**
 * OME-Zarr in and out: images written in the OME-Zarr layout (0.4 on Zarr v2, 0.5 on Zarr v3,
 * 2-D, 3-D and 5-D, several codecs) read back region by region equal to the array; the labels
 * group written chunk by chunk reads back equal to the label TIFF of the same run; Zarr folders
 * that are not OME-Zarr images are clear errors naming them.
 */
import { join } from "node:path";
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { declaredOmeZarr, writeOmeZarr } from "./ome_zarr_write.ts";
import { identity } from "./identity_net.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { masksToFlows } from "../dynamics/masks_to_flows.ts";
import { openImageSource } from "../io/image_source.ts";
import { allLabels, tiffLabels } from "../io/label_sink.ts";
import { openOmeZarr, readOmeZarrInfo } from "../io/ome_zarr.ts";
import { readTiff } from "../io/tiff_read.ts";
import { zarrLabels } from "../io/zarr_labels.ts";
import { arraySource } from "../io/array_source.ts";
import { peakRss } from "./hostile_runs.ts";
import { zeroBomb } from "./hostile_cases.ts";
import { segmentLarge } from "../pipeline/segment_large.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "zarr_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Seeded uniform numbers in [0, 1). */
function random(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** The expected channel-last pixels of a region of a C-order array with axes `axes`. */
function expected(
  a: NdArray<NumericArray>,
  axes: string,
  r: { z0: number; z1: number; y0: number; x0: number; y1: number; x1: number },
): number[] {
  const size = (l: string) => axes.includes(l) ? a.shape[axes.indexOf(l)] : 1;
  const stride = (l: string) =>
    axes.includes(l) ? a.shape.slice(axes.indexOf(l) + 1).reduce((p, q) => p * q, 1) : 0;
  const out: number[] = [];
  for (let z = r.z0; z < r.z1; z++) {
    for (let y = r.y0; y < r.y1; y++) {
      for (let x = r.x0; x < r.x1; x++) {
        for (let c = 0; c < size("c"); c++) {
          out.push(a.data[z * stride("z") + y * stride("y") + x * stride("x") + c * stride("c")]);
        }
      }
    }
  }
  return out;
}

const CASES = [
  { axes: "cyx", shape: [3, 70, 90], chunks: [1, 32, 32], type: Uint16Array, codec: "blosc" },
  { axes: "zyx", shape: [5, 40, 50], chunks: [2, 16, 24], type: Uint8Array, codec: "zstd" },
  { axes: "yx", shape: [65, 33], chunks: [16, 16], type: Float32Array, codec: "none" },
  { axes: "tczyx", shape: [2, 2, 1, 30, 20], chunks: [1, 1, 1, 8, 8], type: Int16Array },
] as const;

for (const version of ["0.4", "0.5"] as const) {
  Deno.test(`OME-Zarr ${version}: regions read back equal to the array (2-D, 3-D, 5-D)`, async () => {
    await withTempDir(async (dir) => {
      const rnd = random(version === "0.4" ? 4 : 5);
      for (const c of CASES) {
        const n = c.shape.reduce((p: number, q: number) => p * q, 1);
        const data = new c.type(n).map(() =>
          Math.floor(rnd() * 250) - (c.type === Int16Array ? 100 : 0)
        );
        const image = { data, shape: [...c.shape] };
        const path = join(dir, `${c.axes}.zarr`);
        await writeOmeZarr(path, image, {
          version,
          axes: c.axes,
          chunks: [...c.chunks],
          codec: "codec" in c ? c.codec : undefined,
        });
        const info = await readOmeZarrInfo(path);
        assertEquals(info.version, version);
        assertEquals(info.zarrFormat, version === "0.4" ? 2 : 3);
        assertEquals(info.axes, c.axes.toUpperCase());
        assertEquals([info.level, info.levels], ["0", ["0", "1"]]); // full resolution, not level 1
        assertEquals(info.shape, [...c.shape]);
        const size = (l: string) => c.axes.includes(l) ? c.shape[c.axes.indexOf(l)] : 1;
        const [h, w, nz] = [size("y"), size("x"), size("z")];
        const src = await openOmeZarr(path, nz > 1 ? { z: 3 } : {});
        assertEquals([src.height, src.width, src.channels, src.depth], [h, w, size("c"), nz]);
        // regions across chunk borders, the whole image, single pixels at the far corner
        const regions = [
          { y0: 0, x0: 0, y1: h, x1: w },
          { y0: 5, x0: 7, y1: h - 3, x1: w - 1 },
          { y0: h - 1, x0: w - 1, y1: h, x1: w },
          ...Array.from({ length: 4 }, () => {
            const y0 = Math.floor(rnd() * (h - 1)), x0 = Math.floor(rnd() * (w - 1));
            const y1 = y0 + 1 + Math.floor(rnd() * (h - y0 - 1)),
              x1 = x0 + 1 + Math.floor(rnd() * (w - x0 - 1));
            return { y0, x0, y1, x1 };
          }),
        ];
        for (const r of regions) {
          const got = await src.read(r);
          const z = nz > 1 ? 3 : 0;
          const want = expected(image, c.axes, { ...r, z0: z, z1: z + 1 });
          // t = 0 is the first half of a tczyx array, so the t axis adds no offset
          assertEquals(
            got.shape,
            size("c") > 1 ? [r.y1 - r.y0, r.x1 - r.x0, size("c")] : [r.y1 - r.y0, r.x1 - r.x0],
          );
          assertEquals(got.data.constructor, c.type);
          assertEquals([...got.data], want, `${c.axes} ${JSON.stringify(r)}`);
        }
        if (nz > 1) {
          const box = { z0: 1, z1: 4, y0: 3, x0: 20, y1: 38, x1: 50 };
          const vol = await src.readVolume(box);
          assertEquals(vol.shape, [3, 35, 30]);
          assertEquals([...vol.data], expected(image, c.axes, box));
          const e = await assertRejects(
            () => openOmeZarr(path).then((s) => s.read(regions[0])),
            CellposeError,
            "is a 3-D image (5 Z planes)",
          );
          assertEquals(e.code, "BAD_PARAMETER");
        }
        if (c.axes === "tczyx") {
          // the second time point
          const t1 = await openOmeZarr(path, { t: 1 });
          const got = await t1.read({ y0: 0, x0: 0, y1: h, x1: w });
          const offset = c.shape.slice(1).reduce((p: number, q: number) => p * q, 1);
          const second = { data: data.subarray(offset), shape: c.shape.slice(1) };
          assertEquals(
            [...got.data],
            expected(second, "czyx", { z0: 0, z1: 1, y0: 0, x0: 0, y1: h, x1: w }),
          );
          await assertRejects(
            () => openOmeZarr(path, { t: 2 }),
            CellposeError,
            "t must be an integer in [0, 2), got 2",
          );
        }
        await assertRejects(
          () => src.read({ y0: 0, x0: 0, y1: h + 1, x1: w }),
          CellposeError,
          "must be a non-empty part",
        );
      }
    });
  });
}

Deno.test("OME-Zarr: folders that are not OME-Zarr images are errors naming them", async () => {
  await withTempDir(async (dir) => {
    const plainV2 = join(dir, "plain_v2.zarr");
    await Deno.mkdir(plainV2);
    await Deno.writeTextFile(join(plainV2, ".zgroup"), '{"zarr_format": 2}');
    const plainV3 = join(dir, "plain_v3.zarr");
    await zarr.create(new FileSystemStore(plainV3), { attributes: { note: "no ome" } });
    for (const path of [plainV2, plainV3]) {
      const e = await assertRejects(() => openOmeZarr(path), CellposeError);
      assertEquals(e.code, "BAD_FILE");
      assert(
        e.message.startsWith(`${path}: a Zarr group without OME-Zarr 'multiscales' metadata`),
        e.message,
      );
      // the block path reports the same
      await assertRejects(
        () => segmentLarge(path, join(dir, "x.tif"), { model: identity }),
        CellposeError,
        `${path}: a Zarr group without OME-Zarr 'multiscales'`,
      );
    }
    // an array inside an OME-Zarr image: the image folder is the one to name
    const image = join(dir, "image.zarr");
    await writeOmeZarr(image, { data: new Uint8Array(64), shape: [8, 8] }, {
      version: "0.4",
      axes: "yx",
      chunks: [4, 4],
    });
    await assertRejects(
      () => openOmeZarr(join(image, "0")),
      CellposeError,
      `${
        join(image, "0")
      }: a plain Zarr array without OME-Zarr 'multiscales' metadata (in .zattrs for OME-Zarr 0.4, in zarr.json attributes.ome for 0.5); the folder above it, ${image}, is the OME-Zarr image to name`,
    );
    const empty = join(dir, "empty.zarr");
    await Deno.mkdir(empty);
    await assertRejects(
      () => openOmeZarr(empty),
      CellposeError,
      `${empty}: not a Zarr folder (no zarr.json, .zgroup or .zattrs in it)`,
    );
    await assertRejects(
      () => openOmeZarr(join(dir, "missing.zarr")),
      CellposeError,
      `${join(dir, "missing.zarr")}: cannot open`,
    );
    const plate = join(dir, "plate.zarr");
    await Deno.mkdir(plate);
    await Deno.writeTextFile(join(plate, ".zgroup"), '{"zarr_format": 2}');
    await Deno.writeTextFile(join(plate, ".zattrs"), '{"plate": {"wells": []}}');
    await assertRejects(() => openOmeZarr(plate), CellposeError, "an OME-Zarr plate (HCS)");
    // an unsupported data type
    const u64 = join(dir, "u64.zarr");
    await writeOmeZarr(u64, { data: new Uint16Array(16), shape: [4, 4] }, {
      version: "0.4",
      axes: "yx",
      chunks: [4, 4],
      pyramid: false,
    });
    const meta = JSON.parse(await Deno.readTextFile(join(u64, "0", ".zarray")));
    await Deno.writeTextFile(join(u64, "0", ".zarray"), JSON.stringify({ ...meta, dtype: "<u8" }));
    await assertRejects(() => openOmeZarr(u64), CellposeError, "unsupported data type uint64");
  });
});

Deno.test("OME-Zarr labels: written chunk by chunk, equal to the label TIFF of the same run", async () => {
  // an image whose channels are flows and cell probability, through the identity network
  const [h, w] = [150, 140];
  const rnd = random(2);
  const lab = new Uint32Array(h * w);
  for (let k = 1; k <= 40; k++) {
    const cy = rnd() * h, cx = rnd() * w, r = 5 + rnd() * 6;
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(h, cy + r); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(w, cx + r); x++) {
        if ((y - cy) ** 2 + (x - cx) ** 2 < r * r && !lab[y * w + x]) lab[y * w + x] = k;
      }
    }
  }
  const flows = masksToFlows({ data: lab, shape: [h, w] });
  const cyx = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) {
    cyx[i] = 5 * flows.data[i];
    cyx[h * w + i] = 5 * flows.data[h * w + i];
    cyx[2 * h * w + i] = lab[i] ? 4 : -4;
  }
  const yxc = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) yxc[3 * i + c] = cyx[c * h * w + i];
  const opts = {
    model: identity,
    normalize: false,
    device: "cpu",
    flowThreshold: 0,
    blockSize: 64,
    halo: 24,
  } as const;
  await withTempDir(async (dir) => {
    const reference = join(dir, "reference.tif");
    const ref = await segmentLarge(arraySource({ data: yxc, shape: [h, w, 3] }), reference, opts);
    assert(ref.nMasks > 20 && ref.blocks === 9, `${ref.nMasks} masks, ${ref.blocks} blocks`);
    const refLabels = (await readTiff(await Deno.readFile(reference), reference)).image;
    for (const version of ["0.4", "0.5"] as const) {
      const image = join(dir, `flows-${version}.ome.zarr`);
      await writeOmeZarr(image, { data: cyx, shape: [3, h, w] }, {
        version,
        axes: "cyx",
        chunks: [1, 48, 48],
      });
      const tif = join(dir, `masks-${version}.tif`);
      const r = await segmentLarge(
        image,
        allLabels([tiffLabels(tif), zarrLabels(image, { chunks: [40, 64] })]),
        opts,
      );
      assertEquals(r.nMasks, ref.nMasks);
      const tiffLabelsRead = (await readTiff(await Deno.readFile(tif), tif)).image;
      assertEquals(tiffLabelsRead.data, refLabels.data, "the Zarr image segments as the array");
      // the labels group: listed, an OME-Zarr image itself, pointing back at the image
      const labelsMeta = version === "0.4"
        ? JSON.parse(await Deno.readTextFile(join(image, "labels", ".zattrs")))
        : JSON.parse(await Deno.readTextFile(join(image, "labels", "zarr.json"))).attributes.ome;
      assertEquals(labelsMeta.labels, ["cp_masks"]);
      const masks = join(image, "labels", "cp_masks");
      const info = await readOmeZarrInfo(masks);
      assertEquals([info.version, info.axes, info.shape, info.chunks, info.dtype], [
        version,
        "YX",
        [h, w],
        [40, 64],
        "uint16",
      ]);
      assertEquals(info.scale, [0.5, 0.5]);
      const attrs = version === "0.4"
        ? JSON.parse(await Deno.readTextFile(join(masks, ".zattrs")))
        : JSON.parse(await Deno.readTextFile(join(masks, "zarr.json"))).attributes.ome;
      assertEquals(attrs["image-label"].source, { image: "../../" });
      const back = await (await openOmeZarr(masks)).read({ y0: 0, x0: 0, y1: h, x1: w });
      assertEquals(back.data, tiffLabelsRead.data, `OME-Zarr ${version} labels equal the TIFF's`);
      // chunk files: ceil(150 / 40) x ceil(140 / 64) = 4 x 3
      const chunkDir = version === "0.4" ? join(masks, "0") : join(masks, "0", "c");
      const rows = [...Deno.readDirSync(chunkDir)].filter((e) => e.isDirectory).length;
      assertEquals(rows, 4);
      // a second label image of the image joins the list; a failed write leaves nothing
      const sink = await zarrLabels(image, { name: "other" })(Uint16Array, w, h);
      await sink.write(new Uint16Array(w * 10));
      await sink.abort();
      assertEquals(
        [...Deno.readDirSync(join(image, "labels"))].map((e) => e.name).sort(),
        version === "0.4" ? [".zattrs", ".zgroup", "cp_masks"] : ["cp_masks", "zarr.json"],
      );
      const sink2 = await zarrLabels(image, { name: "other" })(Uint16Array, w, h);
      await sink2.write(new Uint16Array(w * h));
      await sink2.close();
      const listed = version === "0.4"
        ? JSON.parse(await Deno.readTextFile(join(image, "labels", ".zattrs"))).labels
        : JSON.parse(await Deno.readTextFile(join(image, "labels", "zarr.json"))).attributes.ome
          .labels;
      assertEquals(listed, ["cp_masks", "other"]);
      await assertRejects(
        () => zarrLabels(image)(Uint16Array, w + 1, h),
        CellposeError,
        "labels do not fit the image",
      );
    }
    // openImageSource tells a Zarr folder from a TIFF file
    assertEquals((await openImageSource(join(dir, "flows-0.5.ome.zarr"))).kind, "zarr");
    assertEquals((await openImageSource(reference)).kind, "tiff");
  });
});

Deno.test("OME-Zarr: chunks too large to decode per read are refused before decoding, fast and small", async () => {
  await withTempDir(async (dir) => {
    // 65536 x 65536 uint8 whose metadata declares huge chunks, chunk 0.0 stored as a 512 KB zlib
    // stream that inflates to its full 512 MiB: a naive first-block read decodes all of it
    const make = async (name: string, chunks: number[]) => {
      const path = join(dir, name);
      await declaredOmeZarr(path, "yx", {
        shape: [65536, 65536],
        chunks,
        dtype: "|u1",
        compressor: { id: "zlib", level: 9 },
      });
      await Deno.writeFile(join(path, "0", "0.0"), zeroBomb(512 * 2 ** 20));
      return path;
    };
    const rows = await make("rows.zarr", [8192, 65536]); // 512 MiB chunks
    const whole = await make("whole.zarr", [65536, 65536]); // one 4 GiB chunk
    const before = peakRss();
    const t0 = performance.now();
    const src = await openOmeZarr(rows);
    assertEquals([src.height, src.width], [65536, 65536]);
    // the first block of a block-wise run (2048 + a halo of 128)
    await assertRejects(
      () => src.read({ y0: 0, x0: 0, y1: 2176, x1: 2176 }),
      CellposeError,
      `${rows}: reading region [0, 2176) x [0, 2176) would decode 536870912 bytes of chunks of ` +
        "[8192, 65536] (YX), 536870912 bytes each, more than the 285212672 allowed",
    );
    await assertRejects(
      () => openOmeZarr(whole),
      CellposeError,
      `${whole}: chunks of [65536, 65536] (YX), 4294967296 bytes each: one of them decodes to ` +
        "more than the 2147483648 bytes a read may decode (maxBytes)",
    );
    assert(performance.now() - t0 < 5000, `${performance.now() - t0} ms`);
    const growth = peakRss() - before;
    assert(growth < 256 * 2 ** 20, `peak RSS grew by ${growth / 2 ** 20} MiB`);
    // a wide region of the same file may decode its chunk (within 16 x its own bytes)
    const band = await src.read({ y0: 0, x0: 0, y1: 1024, x1: 65536 });
    assertEquals(band.shape, [1024, 65536]);
    assertEquals(band.data.every((v) => v === 0), true);
  });
});

Deno.test("OME-Zarr: 2-D reads of a 3-D image in 128^3 chunks are within the budget (the chunk depth counts as read)", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "stack.zarr");
    await declaredOmeZarr(path, "zyx", {
      shape: [256, 2048, 2048],
      chunks: [128, 128, 128],
      dtype: "<u2",
    });
    // a whole plane touches 256 chunks of 4 MiB: 1 GiB for an 8 MiB plane (refused before)
    const src = await openOmeZarr(path, { z: 12 });
    assertEquals((await src.read({ y0: 0, x0: 0, y1: 2048, x1: 2048 })).shape, [2048, 2048]);
    assertEquals((await src.read({ y0: 0, x0: 0, y1: 1152, x1: 1152 })).shape, [1152, 1152]);
  });
});
