/**
 * The hostile files of `hostile_cases.ts` (a TIFF directory loop, Deflate / PackBits / LZW / PNG
 * compression bombs, a Zstandard TIFF strip of 16 KB inflating to 512 MiB, a JPEG declaring
 * 10000 x 10000, a JPEG TIFF strip whose frame claims
 * 20000 x 20000, large TIFFs whose every tile or strip
 * inflates to its full declared size for the block-wise reader, checkpoints with a zero-stride
 * tensor, a zip64 claim of 2^40 bytes and a pickle list of 300 000 items) through the library,
 * the CLI (a subprocess) and the server (a process of its own: images to `POST /v1/segment`,
 * checkpoints to `POST /v1/models/:name/load`): each refused with its
 * code or status and a message saying why, in bounded time, and with the process's peak RSS
 * growing by less than 256 MB. `deno task bench fuzz` measures the same runs in a table.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { FIXTURES } from "./fixtures.ts";
import { hostileCheckpoints, hostileImages, hostileLargeTiffs } from "./hostile_cases.ts";
import {
  healthDuring,
  peakRss,
  postModelLoad,
  postSegment,
  quantile,
  segmentCli,
} from "./hostile_runs.ts";
import { spawnServer } from "./server_process.ts";
import { CellposeError } from "../core/errors.ts";
import { readImage } from "../io/image.ts";
import { encodePng } from "../io/png.ts";
import { readCheckpoint } from "../models/checkpoint.ts";
import { openTiff } from "../io/tiff_lazy.ts";

const MB = 2 ** 20;
const PEAK_GROWTH = 256 * MB;

for (const c of hostileImages()) {
  Deno.test(`hostile input, library: ${c.name} gives ${c.code}, fast and small`, async () => {
    const before = peakRss();
    const t0 = performance.now();
    const e = await assertRejects(() => readImage(c.bytes, c.file), CellposeError);
    const ms = performance.now() - t0;
    assertEquals(e.code, c.code, e.message);
    assert(c.message.test(e.message), e.message);
    assert(e.message.startsWith(c.file), e.message);
    assert(ms < 5000, `${c.file}: ${ms} ms`);
    const growth = peakRss() - before;
    assert(growth < PEAK_GROWTH, `${c.file}: peak RSS grew by ${growth / MB} MB`);
  });
}

for (const c of hostileCheckpoints()) {
  Deno.test(`hostile input, library: ${c.name} gives ${c.code}, fast and small`, () => {
    const before = peakRss();
    const t0 = performance.now();
    const e = assertThrows(() => readCheckpoint(c.bytes), CellposeError);
    const ms = performance.now() - t0;
    assertEquals(e.code, c.code, e.message);
    assert(c.message.test(e.message), e.message);
    assert(ms < 5000, `${c.file}: ${ms} ms`);
    const growth = peakRss() - before;
    assert(growth < PEAK_GROWTH, `${c.file}: peak RSS grew by ${growth / MB} MB`);
  });
}

Deno.test("hostile input, library: large TIFFs whose blocks each inflate to their full size are refused by the lazy reader, fast and small", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hostile_large_tiff_" });
  try {
    for (const c of hostileLargeTiffs()) {
      const path = join(dir, c.file);
      await Deno.writeFile(path, c.bytes);
      const before = peakRss();
      const t0 = performance.now();
      // the first block of a block-wise run (2048 + a halo of 128)
      const e = await assertRejects(async () => {
        const src = await openTiff(path);
        try {
          await src.read({ y0: 0, x0: 0, y1: 2176, x1: 2176 });
        } finally {
          await src.close();
        }
      }, CellposeError);
      const ms = performance.now() - t0;
      assertEquals(e.code, c.code, e.message);
      assert(c.message.test(e.message), e.message);
      assert(e.message.startsWith(path), e.message);
      assert(ms < 5000, `${c.file}: ${ms} ms`);
      const growth = peakRss() - before;
      assert(growth < PEAK_GROWTH, `${c.file}: peak RSS grew by ${growth / MB} MB`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile input, CLI: each image fails alone with its message, fast and small", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hostile_input_test_" });
  try {
    const model = join(dir, "tiny-cpsam.pt");
    await Deno.copyFile(join(FIXTURES, "tiny-cpsam.pt"), model);
    // the baseline: the same command on a plainly broken 8-byte TIFF
    await Deno.writeFile(join(dir, "broken.tif"), new Uint8Array([0x49, 0x49, 42, 0, 8, 0, 0, 0]));
    const base = await segmentCli(join(dir, "broken.tif"), dir, model);
    assertEquals(base.status, 1, base.text);
    for (const c of [...hostileImages(), ...hostileLargeTiffs()]) {
      const file = join(dir, c.file);
      await Deno.writeFile(file, c.bytes);
      const r = await segmentCli(file, dir, model);
      assertEquals(r.status, 1, `${c.file}: ${r.killed ?? ""} ${r.text}`);
      // a TIFF the block-wise reader refuses to open is read whole, and --max_image_bytes refuses
      // it there
      const whole =
        /declares \d+ decoded bytes in its header; the limit is \d+ \(--max_image_bytes\)/;
      assert(c.message.test(r.text) || whole.test(r.text), `${c.file}: ${r.text}`);
      assert(r.ms < base.ms + 10_000, `${c.file}: ${r.ms} ms (baseline ${base.ms} ms)`);
      const growth = r.peakBytes - base.peakBytes;
      assert(
        growth < PEAK_GROWTH,
        `${c.file}: peak RSS ${r.peakBytes / MB} MB, baseline ${base.peakBytes / MB} MB`,
      );
      const out = join(dir, "out");
      const left = [...Deno.readDirSync(dir)].some((d) => d.name === "out")
        ? [...Deno.readDirSync(out)].map((d) => d.name)
        : [];
      assertEquals(left, [], `${c.file} left outputs behind`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile input, CLI: each hostile checkpoint exits 3 with its message, fast and small", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hostile_checkpoint_test_" });
  try {
    const image = join(dir, "cells.png");
    await Deno.writeFile(image, encodePng({ data: new Uint8Array(32 * 32), shape: [32, 32] }));
    // the baseline: the same command with a plainly broken checkpoint
    await Deno.writeFile(join(dir, "broken.pt"), new TextEncoder().encode("not a zip"));
    const base = await segmentCli(image, dir, join(dir, "broken.pt"));
    assertEquals(base.status, 3, base.text);
    for (const c of hostileCheckpoints()) {
      const model = join(dir, c.file);
      await Deno.writeFile(model, c.bytes);
      const r = await segmentCli(image, dir, model);
      assertEquals(r.status, 3, `${c.file}: ${r.killed ?? ""} ${r.text}`);
      assert(c.message.test(r.text), `${c.file}: ${r.text}`);
      assert(!/RangeError/.test(r.text), r.text);
      assert(r.ms < base.ms + 10_000, `${c.file}: ${r.ms} ms (baseline ${base.ms} ms)`);
      const growth = r.peakBytes - base.peakBytes;
      assert(
        growth < PEAK_GROWTH,
        `${c.file}: peak RSS ${r.peakBytes / MB} MB, baseline ${base.peakBytes / MB} MB`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "hostile input, server: POST /v1/segment of each image is a 4xx with its message, " +
    "fast and small, health responsive",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await spawnServer();
    try {
      for (const c of hostileImages()) {
        const run = postSegment(server, c);
        const health = await healthDuring(server.url, run);
        const r = await run;
        const status = c.code === "TOO_LARGE" ? 413 : 422;
        assertEquals(r.status, status, `${c.file}: ${r.killed ?? ""} ${r.text.slice(0, 300)}`);
        assert(c.message.test(r.text), `${c.file}: ${r.text.slice(0, 300)}`);
        assert(r.text.length < 2000, `${c.file}: an answer of ${r.text.length} characters`);
        assert(r.ms < 10_000, `${c.file}: ${r.ms} ms`);
        assert(r.peakBytes < PEAK_GROWTH, `${c.file}: peak RSS grew ${r.peakBytes / MB} MB`);
        assert(quantile(health, 1) < 2000, `${c.file}: health up to ${quantile(health, 1)} ms`);
      }
      // and the server still segments
      const ok = await fetch(`${server.url}/v1/health`);
      assertEquals(ok.status, 200, await ok.text());
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "hostile input, server: POST /v1/models/:name/load of each hostile checkpoint is a 422 " +
    "with the CLI's message, fast and small, health responsive, the model in service kept",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "hostile_model_route_" });
    const server = await spawnServer({}, { CELLPOSE_LOCAL_MODELS_PATH: cache });
    try {
      const png = encodePng({ data: new Uint8Array(32 * 32), shape: [32, 32] });
      const segment = () =>
        fetch(`${server.url}/v1/segment?sync=1`, {
          method: "POST",
          headers: { "content-type": "image/png" },
          body: png as Uint8Array<ArrayBuffer>,
        });
      const first = await segment(); // the server's own model, loaded
      assertEquals(first.status, 200, await first.clone().text());
      const served = (await (await fetch(`${server.url}/v1/models`)).json()).current;
      await first.body?.cancel();
      // the baseline: a plainly broken checkpoint
      const broken = {
        name: "broken",
        file: "broken.pt",
        bytes: new TextEncoder().encode("not a zip"),
        code: "BAD_MODEL" as const,
        message: /./,
      };
      const base = await postModelLoad(server, cache, broken);
      assertEquals(base.status, 422, base.text);
      for (const c of hostileCheckpoints()) {
        const run = postModelLoad(server, cache, c);
        const health = await healthDuring(server.url, run);
        const r = await run;
        console.log(
          `${c.file}: HTTP ${r.status} in ${(r.ms / 1000).toFixed(2)} s (baseline ` +
            `${(base.ms / 1000).toFixed(2)} s), peak RSS +${(r.peakBytes / MB).toFixed(0)} MiB, ` +
            `health max ${quantile(health, 1).toFixed(0)} ms`,
        );
        assertEquals(r.status, 422, `${c.file}: ${r.killed ?? ""} ${r.text.slice(0, 300)}`);
        const { error } = JSON.parse(r.text);
        assertEquals(error.code, c.code, r.text);
        assert(c.message.test(error.message), `${c.file}: ${error.message}`);
        assert(!/RangeError/.test(error.message), error.message);
        assert(r.text.length < 2000, `${c.file}: an answer of ${r.text.length} characters`);
        assert(r.ms < base.ms + 10_000, `${c.file}: ${r.ms} ms (baseline ${base.ms} ms)`);
        assert(r.peakBytes < PEAK_GROWTH, `${c.file}: peak RSS grew ${r.peakBytes / MB} MB`);
        assert(quantile(health, 1) < 2000, `${c.file}: health up to ${quantile(health, 1)} ms`);
        // the failed load leaves the model in service, and says why it failed
        const now = (await (await fetch(`${server.url}/v1/models`)).json()).current;
        assertEquals([now.name, now.state], [served.name, "loaded"]);
        assert(c.message.test(now.error.message), JSON.stringify(now));
      }
      const after = await segment();
      assertEquals(after.status, 200, await after.clone().text());
      await after.body?.cancel();
      const logged = server.log();
      assert(!/RangeError|internal error/i.test(logged), `the server logged:\n${logged}`);
    } finally {
      await server.stop();
      await Deno.remove(cache, { recursive: true });
    }
  },
});
