/**
 * `cellpose segment` on images larger than one block (a subprocess, tiny random model, CPU): the
 * large-image path is taken by itself, its labels equal `segmentLarge`'s exactly, the streamed
 * CSV / outlines / ROI set equal those made from the whole label image, the outputs it cannot
 * make are named with the reason, `--no_large` loads the image whole, and Ctrl+C leaves no file.
 */
import { unzipSync } from "fflate";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { FIXTURES, REPO } from "./fixtures.ts";
import { runCli, spawnCli } from "./cli.ts";
import { tiffLabels } from "../io/label_sink.ts";
import { masksToOutlines, outlinesText } from "../io/outlines.ts";
import { encodeRoiZip } from "../io/roi.ts";
import { maskStats, statsCsv } from "../io/stats.ts";
import { readTiff } from "../io/tiff_read.ts";
import { encodeTiff } from "../io/tiff_write.ts";
import { loadModel } from "../models/load.ts";
import { arraySource } from "../io/array_source.ts";
import { segmentLarge } from "../pipeline/segment_large.ts";

const cache = await Deno.makeTempDir({ prefix: "cellpose-cli-large-models-" });
const work = await Deno.makeTempDir({ prefix: "cellpose-cli-large-" });
globalThis.addEventListener("unload", () => {
  for (const d of [cache, work]) Deno.removeSync(d, { recursive: true });
});
const tinyModel = join(cache, "tiny-cpsam.pt");
await Deno.copyFile(join(FIXTURES, "tiny-cpsam.pt"), tinyModel);
/** From the repository, with the temporary model cache. */
const options = { cwd: REPO, env: { CELLPOSE_LOCAL_MODELS_PATH: cache } };
/** `cellpose segment <args>`, to its end. */
const cli = (args: string[]) => runCli(["segment", ...args], options);

/** A uint8 image of bright discs (radius 5..9) on a dim textured background. */
function discs(h: number, w: number): { data: Uint8Array; shape: [number, number] } {
  const data = new Uint8Array(h * w);
  for (let i = 0; i < data.length; i++) data[i] = 20 + (i * 7) % 11;
  for (let cy = 10; cy < h; cy += 24) {
    for (let cx = 10 + (cy % 48 ? 12 : 0); cx < w; cx += 24) {
      const r = 5 + ((cx * 3 + cy * 5) % 5);
      for (let y = Math.max(0, cy - r); y < Math.min(h, cy + r + 1); y++) {
        for (let x = Math.max(0, cx - r); x < Math.min(w, cx + r + 1); x++) {
          if ((y - cy) ** 2 + (x - cx) ** 2 <= r * r) data[y * w + x] = 170 + (x % 9);
        }
      }
    }
  }
  return { data, shape: [h, w] };
}

const sortedLines = (s: string) => s.split("\n").filter((l) => l).sort();

Deno.test("cli segment: an image larger than a block goes block by block; labels equal segmentLarge's, CSV / outlines / ROIs equal the whole labels'", async () => {
  const image = discs(300, 420);
  const path = join(work, "slide.tif");
  await Deno.writeFile(path, encodeTiff(image));
  const out = join(work, "out");
  const r = await cli([
    path,
    "--pretrained_model",
    tinyModel,
    "--device",
    "cpu",
    "--block_size",
    "160",
    "--halo",
    "32",
    "--savedir",
    out,
    "--json",
    "--save_csv",
    "--save_txt",
    "--save_rois",
    "--save_png",
  ]);
  const stderr = r.stderr;
  assertEquals(r.code, 0, stderr);
  const line = JSON.parse(r.stdout.trim());
  assertEquals(line.blocks, 6, "2 x 3 blocks of 160");
  assertEquals(line.outputs, [
    join(out, "slide_cp_masks.tif"),
    join(out, "slide_stats_cp_masks.csv"),
    join(out, "slide_cp_outlines.txt"),
    join(out, "slide_rois.zip"),
  ]);
  assert(line.skipped.some((s: string) => s.startsWith("_seg.npy: it needs the whole image")));
  assert(line.skipped.some((s: string) => s.startsWith("--save_png")), line.skipped);
  assert(stderr.includes("skipped --save_png"), stderr);
  assertEquals(
    [...Deno.readDirSync(out)].map((e) => e.name).sort(),
    ["slide_cp_masks.tif", "slide_cp_outlines.txt", "slide_rois.zip", "slide_stats_cp_masks.csv"],
    "no _seg.npy, PNG or leftover temporary file",
  );

  const model = await loadModel(tinyModel, { device: "cpu" });
  const ref = join(work, "ref.tif");
  try {
    const lib = await segmentLarge(arraySource(image), tiffLabels(ref), {
      model,
      blockSize: 160,
      halo: 32,
    });
    assertEquals(line.nMasks, lib.nMasks);
    assert(lib.nMasks > 5, `the tiny model finds masks (${lib.nMasks})`);
  } finally {
    await model.dispose();
  }
  const labels = (await readTiff(await Deno.readFile(ref), ref)).image;
  const got = (await readTiff(await Deno.readFile(line.outputs[0]), "cli")).image;
  assertEquals(got.data, labels.data, "the CLI's labels are segmentLarge's");
  assertEquals(
    await Deno.readTextFile(line.outputs[1]),
    statsCsv(maskStats(labels, image)),
    "streamed CSV = maskStats of the whole labels and image",
  );
  const outlines = masksToOutlines(labels);
  assertEquals(
    sortedLines(await Deno.readTextFile(line.outputs[2])),
    sortedLines(outlinesText(outlines)),
  );
  const rois = unzipSync(await Deno.readFile(line.outputs[3]));
  const whole = unzipSync(encodeRoiZip(labels));
  assertEquals(Object.keys(rois).sort(), Object.keys(whole).sort());
  for (const k of Object.keys(whole)) assertEquals(rois[k], whole[k], k);
});

Deno.test("cli segment: --no_large loads the image whole (a _seg.npy), --no_npy alone writes the block-wise label TIFF, --large with --do_3D is a usage error", async () => {
  const path = join(work, "small.tif");
  await Deno.writeFile(path, encodeTiff(discs(200, 180)));
  const out = join(work, "whole");
  const withBlock128 = (...flags: string[]) =>
    cli([
      path,
      "--pretrained_model",
      tinyModel,
      "--device",
      "cpu",
      "--block_size",
      "128",
      ...flags,
    ]);
  const r = await withBlock128("--no_large", "--savedir", out, "--json");
  assertEquals(r.code, 0, r.stderr);
  const line = JSON.parse(r.stdout.trim());
  assertEquals(line.blocks, undefined);
  assertEquals(line.outputs, [join(out, "small_seg.npy")]);
  // --no_npy alone: the block-wise path still writes its label TIFF; the whole path would
  // write nothing and is refused before any work, naming the file
  const labelsOnly = join(work, "labels-only");
  const block = await withBlock128("--no_npy", "--savedir", labelsOnly, "--json");
  assertEquals(block.code, 0, block.stderr);
  assertEquals(JSON.parse(block.stdout.trim()).outputs, [
    join(labelsOnly, "small_cp_masks.tif"),
  ]);
  const none = await cli([path, "--pretrained_model", tinyModel, "--no_large", "--no_npy"]);
  assertEquals(none.code, 2, none.stderr);
  assert(none.stderr.includes("nothing to write for small.tif"), none.stderr);
  const bad = await cli([path, "--pretrained_model", tinyModel, "--large", "--do_3D"]);
  assertEquals(bad.code, 2, bad.stderr);
  assert(bad.stderr.includes("--large segments 2-D images"), bad.stderr);
});

Deno.test("cli segment: Ctrl+C during a block-wise image leaves no file behind", async () => {
  const path = join(work, "stop.tif");
  await Deno.writeFile(path, encodeTiff(discs(640, 640)));
  const out = join(work, "stopped");
  await Deno.mkdir(out);
  const child = spawnCli([
    "segment",
    path,
    "--pretrained_model",
    tinyModel,
    "--device",
    "cpu",
    "--block_size",
    "64",
    "--halo",
    "16",
    "--savedir",
    out,
    "--save_csv",
  ], options);
  try {
    await child.waitFor(/blocks [1-9]\d*\/100/);
    child.kill("SIGINT");
    const status = await child.result();
    const log = child.stderr;
    assertEquals(status.code, 1, log);
    assert(log.includes("stopping after the current tile") && log.includes("cancelled"), log);
  } finally {
    child.kill();
    await child.result();
  }
  assertEquals([...Deno.readDirSync(out)].map((e) => e.name), [], "nothing left in --savedir");
});
