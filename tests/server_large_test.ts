/**
 * `POST /v1/segment_large` on a real server (tiny model, CPU): an uploaded TIFF spooled to disk
 * and an image named by path under `--data_dir` both give `segmentLarge`'s labels exactly, as a
 * streamed TIFF; paths outside the data folders, or with none configured, are 403; an upload
 * past the spool limit is 413; nothing is left in the spool folder.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { FIXTURES } from "./fixtures.ts";
import { tiffLabels } from "../io/label_sink.ts";
import { readTiff } from "../io/tiff_read.ts";
import { encodeTiff } from "../io/tiff_write.ts";
import { loadModel } from "../models/load.ts";
import { arraySource } from "../io/array_source.ts";
import { segmentLarge } from "../pipeline/segment_large.ts";
import { startServer } from "../server/main.ts";

const TINY = join(FIXTURES, "tiny-cpsam.pt");

/** Bright discs on a dim background, uint8. */
function discs(h: number, w: number): { data: Uint8Array; shape: [number, number] } {
  const data = new Uint8Array(h * w).map((_, i) => 20 + (i * 7) % 11);
  for (let cy = 10; cy < h; cy += 24) {
    for (let cx = 10 + (cy % 48 ? 12 : 0); cx < w; cx += 24) {
      for (let y = Math.max(0, cy - 7); y < Math.min(h, cy + 8); y++) {
        for (let x = Math.max(0, cx - 7); x < Math.min(w, cx + 8); x++) {
          if ((y - cy) ** 2 + (x - cx) ** 2 <= 49) data[y * w + x] = 170 + (x % 9);
        }
      }
    }
  }
  return { data, shape: [h, w] };
}

Deno.test("server segment_large: spooled upload and --data_dir path give segmentLarge's labels; other paths 403, big uploads 413", async () => {
  const work = await Deno.makeTempDir({ prefix: "server_large_" });
  const data = join(work, "data"), spool = join(work, "spool"), cache = join(work, "models");
  for (const d of [data, spool, cache]) await Deno.mkdir(d);
  const image = discs(260, 300);
  const tiff = encodeTiff(image) as Uint8Array<ArrayBuffer>;
  await Deno.writeFile(join(data, "slide.tif"), tiff);
  await Deno.writeFile(join(work, "outside.tif"), tiff);
  const server = await startServer({
    port: 0,
    log: () => {},
    model: TINY,
    device: "cpu",
    modelsDir: cache,
    dataDirs: [data],
    spoolDir: spool,
    maxSpoolBytes: tiff.length + 10,
  });
  const model = await loadModel(TINY, { device: "cpu", cacheDir: cache });
  try {
    const ref = join(work, "ref.tif");
    const lib = await segmentLarge(arraySource(image), tiffLabels(ref), {
      model,
      blockSize: 128,
      halo: 32,
    });
    const want = (await readTiff(await Deno.readFile(ref), ref)).image.data;
    const url = `${server.url}/v1/segment_large?block_size=128&halo=32`;
    const upload = await fetch(url, { method: "POST", body: tiff });
    assertEquals(upload.status, 200, await upload.clone().text());
    assertEquals(upload.headers.get("content-type"), "image/tiff");
    assertEquals(upload.headers.get("x-cellpose-blocks"), "9");
    assertEquals(Number(upload.headers.get("x-cellpose-masks")), lib.nMasks);
    const got = await readTiff(new Uint8Array(await upload.arrayBuffer()), "upload");
    assertEquals(got.image.data, want, "uploaded: segmentLarge's labels");

    const byPath = await fetch(`${url}&path=${encodeURIComponent(join(data, "slide.tif"))}`, {
      method: "POST",
    });
    assertEquals(byPath.status, 200);
    const got2 = await readTiff(new Uint8Array(await byPath.arrayBuffer()), "path");
    assertEquals(got2.image.data, want, "by path: the same labels");

    for (const p of [join(work, "outside.tif"), join(data, "..", "outside.tif")]) {
      const res = await fetch(`${url}&path=${encodeURIComponent(p)}`, { method: "POST" });
      assertEquals(res.status, 403, p);
      const body = await res.json();
      assert(
        body.error.message.includes("not under the server's data folders"),
        body.error.message,
      );
    }
    const big = await fetch(url, { method: "POST", body: new Uint8Array(tiff.length + 11) });
    assertEquals(big.status, 413);
    await big.body?.cancel();
    assertEquals([...Deno.readDirSync(spool)], [], "the spool folder is left empty");
  } finally {
    await model.dispose();
    await server.close();
  }
  const bare = await startServer({ port: 0, log: () => {}, preload: false, modelsDir: cache });
  try {
    const res = await fetch(`${bare.url}/v1/segment_large?path=/etc/passwd`, { method: "POST" });
    assertEquals(res.status, 403);
    assert((await res.json()).error.message.includes("--data_dir"));
  } finally {
    await bare.close();
    await Deno.remove(work, { recursive: true });
  }
});
