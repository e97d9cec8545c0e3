/**
 * `segmentLarge` on synthetic TIFFs of growing size with the tiny random cpsam (onnxruntime-node,
 * CPU): wall time, blocks, masks and the process's peak RSS (VmHWM) after each size, which must
 * stay under 4 GB for 12k x 12k: memory follows the block size, not the image. The input TIFF is
 * generated strip by strip (uint8 discs on a jittered grid) so that no full image is ever built.
 * Sizes: `LARGE_BENCH_SIZES` (comma-separated sides, default `3000,12000`).
 * @module
 */
import { join } from "node:path";
import { TiffStripWriter } from "../io/tiff_strips.ts";
import { loadModel } from "../models/load.ts";
import { segmentLarge } from "../pipeline/segment_large.ts";
import { FIXTURES } from "../tests/fixtures.ts";
import { peakRssMiB } from "./measure.ts";

/** Deterministic 0..1 hash of two integers. */
function hash(a: number, b: number): number {
  let h = Math.imul(a, 374761393) ^ Math.imul(b, 668265263);
  h = Math.imul(h ^ (h >>> 13), 1274126177);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** Writes a side x side uint8 TIFF of bright discs (radius 7..13) on a 32-pixel jittered grid. */
export async function writeBlobs(path: string, side: number): Promise<void> {
  const g = 32;
  const w = await TiffStripWriter.create(path, side, side, Uint8Array);
  const row = new Uint8Array(side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) row[x] = 20 + ((x * 7 + y * 13) % 11);
    const gy = Math.floor(y / g);
    for (let cy = gy - 1; cy <= gy + 1; cy++) {
      for (let cx = 0; cx <= Math.floor(side / g); cx++) {
        const oy = cy * g + 8 + 16 * hash(cy, cx), ox = cx * g + 8 + 16 * hash(cx, cy + 7);
        const r = 7 + 6 * hash(cy + 3, cx + 5);
        const dy = y - oy;
        if (Math.abs(dy) >= r) continue;
        const half = Math.sqrt(r * r - dy * dy);
        for (let x = Math.max(0, Math.ceil(ox - half)); x < Math.min(side, ox + half); x++) {
          row[x] = 180 + (x % 7);
        }
      }
    }
    await w.write(row);
  }
  await w.close();
}

export default async function main(): Promise<void> {
  const sizes = (Deno.env.get("LARGE_BENCH_SIZES") ?? "3000,12000").split(",").map(Number);
  const dir = await Deno.makeTempDir({ prefix: "large_bench_" });
  try {
    const ckpt = join(dir, "tiny-cpsam.pt");
    await Deno.copyFile(join(FIXTURES, "tiny-cpsam.pt"), ckpt);
    const model = await loadModel(ckpt, { device: "cpu", numThreads: 2 });
    console.log(
      "| image | blocks | masks | time (s) | µs / pixel | peak RSS (MiB) | RSS / uint16 image |",
    );
    console.log("|---|---|---|---|---|---|---|");
    for (const side of sizes) {
      const input = join(dir, `blobs-${side}.tif`), output = join(dir, `masks-${side}.tif`);
      await writeBlobs(input, side);
      const t0 = performance.now();
      const r = await segmentLarge(input, output, { model, device: "cpu", tempDir: dir });
      const s = (performance.now() - t0) / 1000;
      const rss = peakRssMiB();
      const imageMiB = side * side * 2 / 2 ** 20;
      console.log(
        `| ${side} x ${side} | ${r.blocks} | ${r.nMasks} | ${s.toFixed(1)} | ` +
          `${(s * 1e6 / (side * side)).toFixed(2)} | ${rss.toFixed(0)} | ` +
          `${(rss / imageMiB).toFixed(2)} |`,
      );
      console.log(
        `<!-- ${side}: ${
          Object.entries(r.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(", ")
        } -->`,
      );
      await Deno.remove(input);
      await Deno.remove(output);
    }
    await model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
