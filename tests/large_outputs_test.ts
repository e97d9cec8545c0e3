/**
 * The streamed per-cell outputs of block-wise runs (io/large_outputs.ts) against the in-memory
 * ones, on sources that decode in blocks narrower than the image (OME-Zarr chunks), and the
 * reads of a wide image of tall chunks within the source's decode budget.
 */
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { declaredOmeZarr, writeOmeZarr } from "./ome_zarr_write.ts";
import { zeroBomb } from "./hostile_cases.ts";
import { allLabels, tiffLabels } from "../io/label_sink.ts";
import { largeOutputs } from "../io/large_outputs.ts";
import { openOmeZarr } from "../io/ome_zarr.ts";
import { maskStats, statsCsv } from "../io/stats.ts";

Deno.test("large outputs: the CSV of an OME-Zarr image in 64-px chunks, from 7-row bands, equals maskStats", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [h, w] = [100, 300];
    const image = new Uint16Array(h * w).map((_, i) => (i * 7919) % 4093);
    const path = join(dir, "img.zarr");
    await writeOmeZarr(path, { data: image, shape: [h, w] }, {
      version: "0.4",
      axes: "yx",
      chunks: [16, 64],
      pyramid: false,
    });
    const source = await openOmeZarr(path);
    assertEquals(source.blockWidth, 64);
    const labels = new Uint16Array(h * w);
    for (let k = 0; k < 12; k++) {
      const [y0, x0] = [(k * 37) % 80, (k * 89) % 260];
      for (let y = y0; y < y0 + 15; y++) labels.fill(k + 1, y * w + x0, y * w + x0 + 33);
    }
    const extra = largeOutputs(source, { imagePath: path, savedir: dir, csv: true });
    const labelsPath = join(dir, "img_cp_masks.tif");
    const sink = await allLabels([tiffLabels(labelsPath), ...extra.targets])(Uint16Array, w, h);
    for (let y = 0; y < h; y += 7) {
      await sink.write(labels.slice(y * w, Math.min(h, y + 7) * w));
    }
    await sink.close();
    const [csv] = await extra.finish(labelsPath);
    assertEquals(
      await Deno.readTextFile(csv),
      statsCsv(maskStats({ data: labels, shape: [h, w] }, { data: image, shape: [h, w] })),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("large outputs: a band of a 36864-px-wide OME-Zarr of 4096^2 chunks is read within the budget", async () => {
  // 9 chunks of 32 MiB across a band: one read of the band (288 MiB) passes the budget of a
  // 113-row band (256 MiB); read chunk column by chunk column it does not
  const dir = await Deno.makeTempDir();
  try {
    const [h, w] = [4096, 36864];
    const path = join(dir, "wide.zarr");
    await declaredOmeZarr(path, "yx", {
      shape: [h, w],
      chunks: [4096, 4096],
      dtype: "<u2",
      compressor: { id: "zlib", level: 9 },
    });
    const chunk = zeroBomb(32 * 2 ** 20);
    for (let c = 0; c < 9; c++) await Deno.writeFile(join(path, "0", `0.${c}`), chunk);
    const source = await openOmeZarr(path);
    const extra = largeOutputs(source, { imagePath: path, savedir: dir, csv: true });
    const sink = await extra.targets[0](Uint16Array, w, h);
    const band = 113; // the rows per write of the block-wise merge at this width (4 M pixels)
    await sink.write(new Uint16Array(band * w).fill(1)); // refused before: 301989888 > 268435456
    await sink.abort();
    await extra.abort();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
