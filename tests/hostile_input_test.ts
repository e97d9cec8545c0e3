/**
 * The hostile image files of `hostile_cases.ts` (a TIFF directory loop, Deflate / PackBits /
 * LZW / PNG compression bombs, a JPEG declaring 10000 x 10000) through the library and the CLI:
 * each refused with its code and a message saying why, in bounded time, and with the process's
 * peak RSS growing by less than 256 MB.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { FIXTURES, REPO } from "./fixtures.ts";
import { hostileCheckpoints, hostileImages } from "./hostile_cases.ts";
import { CellposeError } from "../core/errors.ts";
import { readImage } from "../io/image.ts";
import { readCheckpoint } from "../models/checkpoint.ts";
import { encodePng } from "../io/png.ts";

const MB = 2 ** 20;
const PEAK_GROWTH = 256 * MB;

/** Peak resident memory (VmHWM) of a process, in bytes; 0 where /proc is missing. */
export function peakRss(pid: number | "self" = "self"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

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

/** Runs `cellpose segment file` and follows its peak RSS until it exits. */
async function segmentCli(file: string, cache: string, model = join(cache, "tiny-cpsam.pt")) {
  const p = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(REPO, "cli", "main.ts"),
      "segment",
      file,
      "--pretrained_model",
      model,
      "--savedir",
      join(cache, "out"),
      "--save_tif",
    ],
    env: { CELLPOSE_LOCAL_MODELS_PATH: cache, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peak = 0;
  const poll = setInterval(() => (peak = Math.max(peak, peakRss(p.pid))), 20);
  const kill = setTimeout(() => p.kill("SIGKILL"), 120_000);
  const t0 = performance.now();
  const out = await p.output();
  const ms = performance.now() - t0;
  clearInterval(poll), clearTimeout(kill);
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr), ms, peak };
}

Deno.test("hostile input, CLI: each file fails alone with its message, fast and small", async () => {
  const cache = await Deno.makeTempDir({ prefix: "hostile_input_test_" });
  try {
    await Deno.copyFile(join(FIXTURES, "tiny-cpsam.pt"), join(cache, "tiny-cpsam.pt"));
    // the baseline: the same command on a plainly broken 8-byte TIFF
    await Deno.writeFile(
      join(cache, "broken.tif"),
      new Uint8Array([0x49, 0x49, 42, 0, 8, 0, 0, 0]),
    );
    const base = await segmentCli(join(cache, "broken.tif"), cache);
    assertEquals(base.code, 1, base.stderr);
    for (const c of hostileImages()) {
      const file = join(cache, c.file);
      await Deno.writeFile(file, c.bytes);
      const r = await segmentCli(file, cache);
      assertEquals(r.code, 1, `${c.file}: ${r.stderr}`);
      assert(c.message.test(r.stderr), `${c.file}: ${r.stderr}`);
      assert(r.ms < base.ms + 10_000, `${c.file}: ${r.ms} ms (baseline ${base.ms} ms)`);
      const growth = r.peak - base.peak;
      assert(
        growth < PEAK_GROWTH,
        `${c.file}: peak RSS ${r.peak / MB} MB, baseline ${base.peak / MB} MB`,
      );
      const left = [...Deno.readDirSync(cache)].map((d) => d.name);
      assert(!left.includes("out") || [...Deno.readDirSync(join(cache, "out"))].length === 0);
    }
  } finally {
    await Deno.remove(cache, { recursive: true });
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
    assertEquals(base.code, 3, base.stderr);
    for (const c of hostileCheckpoints()) {
      const model = join(dir, c.file);
      await Deno.writeFile(model, c.bytes);
      const r = await segmentCli(image, dir, model);
      assertEquals(r.code, 3, `${c.file}: ${r.stderr}`);
      assert(c.message.test(r.stderr), `${c.file}: ${r.stderr}`);
      assert(!/RangeError/.test(r.stderr), r.stderr);
      assert(r.ms < base.ms + 10_000, `${c.file}: ${r.ms} ms (baseline ${base.ms} ms)`);
      const growth = r.peak - base.peak;
      assert(
        growth < PEAK_GROWTH,
        `${c.file}: peak RSS ${r.peak / MB} MB, baseline ${base.peak / MB} MB`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
