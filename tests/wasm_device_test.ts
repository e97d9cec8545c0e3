/**
 * `device: "wasm"` (onnxruntime-web) on an image big enough for the worker-thread dynamics:
 * onnxruntime-web's Emscripten runtime replaces the global `Worker`, which once left the
 * dynamics workers without `self` and the segmentation waiting forever. The library and the
 * CLI must finish, with the masks of `device: "cpu"`.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { FIXTURES } from "./fixtures.ts";
import { runCli } from "./cli.ts";
import { NumpyRandom } from "../core/random.ts";
import { loadModel } from "../models/load.ts";
import { segment } from "../pipeline/segment.ts";
import { writeTiff } from "../io/tiff_write.ts";
import { readImage } from "../io/image.ts";

const SIDE = 1024;
/** A random 1024 x 1024 float image (seeded), as the reproduction. */
function randomImage() {
  const rng = new NumpyRandom(12);
  const data = new Float32Array(SIDE * SIDE);
  for (let i = 0; i < data.length; i++) data[i] = rng.random();
  return { data, shape: [SIDE, SIDE] };
}

/** Rejects after `ms`, so that a deadlock fails the test instead of hanging the suite. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

async function masksOn(device: "cpu" | "wasm", cache: string) {
  const model = await loadModel(join(cache, "tiny-cpsam.pt"), { device, numThreads: 2 });
  try {
    const r = await within(segment(randomImage(), { model }), 300_000, `segment on ${device}`);
    return r.masks;
  } finally {
    await model.dispose();
  }
}

async function withCache(fn: (cache: string) => Promise<void>) {
  const cache = await Deno.makeTempDir({ prefix: "wasm_device_test_" });
  try {
    await Deno.copyFile(join(FIXTURES, "tiny-cpsam.pt"), join(cache, "tiny-cpsam.pt"));
    await fn(cache);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
}

Deno.test({
  name: "library device wasm: a random 1024 x 1024 image finishes with the masks of cpu",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withCache(async (cache) => {
      const cpu = await masksOn("cpu", cache);
      const wasm = await masksOn("wasm", cache);
      assertEquals(wasm.shape, cpu.shape);
      let max = 0, diff = 0;
      for (let i = 0; i < cpu.data.length; i++) {
        if (cpu.data[i] !== wasm.data[i]) diff++;
        max = Math.max(max, cpu.data[i]);
      }
      assert(max > 0, "the random image gives masks");
      assertEquals(diff, 0, `${diff} pixels differ between wasm and cpu`);
    }),
});

Deno.test({
  name: "cli --device wasm: a random 1024 x 1024 image finishes with the masks of --device cpu",
  sanitizeResources: false,
  fn: () =>
    withCache(async (cache) => {
      const img = join(cache, "random.tif");
      await writeTiff(img, randomImage());
      const masks: Record<string, Uint8Array | Uint16Array | Uint32Array> = {};
      for (const device of ["cpu", "wasm"]) {
        const out = join(cache, device);
        const r = await runCli([
          "segment",
          img,
          "--pretrained_model",
          join(cache, "tiny-cpsam.pt"),
          "--device",
          device,
          "--savedir",
          out,
          "--save_tif",
          "--no_npy",
        ], { env: { CELLPOSE_LOCAL_MODELS_PATH: cache }, timeoutMs: 300_000 });
        assertEquals(r.code, 0, `--device ${device}: exit ${r.code}: ${r.stderr.slice(-2000)}`);
        const m = await readImage(join(out, "random_cp_masks.tif"));
        masks[device] = m.image.data as Uint16Array;
      }
      assertEquals(masks.wasm.length, SIDE * SIDE);
      assert(masks.cpu.some((v) => v > 0), "the random image gives masks");
      assertEquals(Array.from(masks.wasm).join() === Array.from(masks.cpu).join(), true);
    }),
});
