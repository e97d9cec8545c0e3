import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { convertCheckpoint } from "../models/cpsam_graph.ts";
import { createRunner, gpuAdapterInfo } from "../models/runtime.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { fixture, FIXTURES, REPO } from "./fixtures.ts";

const dir = await Deno.makeTempDir({ prefix: "cpsam-runtime-" });
const fp32 = join(dir, "tiny-fp32.onnx");
const fp16 = join(dir, "tiny-fp16.onnx");
await convertCheckpoint(join(FIXTURES, "tiny-cpsam.pt"), fp32, { precision: "fp32" });
await convertCheckpoint(join(FIXTURES, "tiny-cpsam.pt"), fp16, { precision: "fp16" });
const input = (await fixture("tiny-net-input")) as NdArray<Float32Array>;
const expected = (await fixture("tiny-net-output")).data as Float32Array;
const gpu = await gpuAdapterInfo();

const maxAbsDiff = (a: Float32Array, b: Float32Array) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** Runs the first `tiles` fixture tiles and returns the max abs error against the reference. */
async function runTiny(
  model: string,
  device: "cpu" | "wasm" | "webgpu",
  { batchSize, tiles = 2 }: { batchSize?: number; tiles?: number } = {},
) {
  const per = 3 * 256 * 256;
  const net = await createRunner(model, { device, batchSize });
  try {
    assertEquals([net.device, net.bsize, net.name], [
      device,
      256,
      model.endsWith("fp16.onnx") ? "tiny-fp16" : "tiny-fp32",
    ]);
    const out = await net.run({
      data: input.data.subarray(0, tiles * per),
      shape: [tiles, 3, 256, 256],
    });
    assertEquals(out.shape, [tiles, 3, 256, 256]);
    return maxAbsDiff(out.data, expected.subarray(0, tiles * per));
  } finally {
    await net.dispose();
  }
}

Deno.test("cpu (onnxruntime-node) reproduces tiny-net-output within 1e-4, fp16 within 0.02", async () => {
  const err = await runTiny(fp32, "cpu");
  assert(err <= 1e-4, `fp32 max abs error ${err}`);
  assertEquals(await runTiny(fp32, "cpu", { batchSize: 1 }), err); // one tile per session run: same numbers
  const err16 = await runTiny(fp16, "cpu");
  console.log(`cpu fp16 max abs error vs fp32 reference: ${err16.toExponential(2)}`);
  assert(err16 <= 0.02, `fp16 max abs error ${err16}`);
});

Deno.test("wasm (onnxruntime-web) reproduces tiny-net-output within 1e-4", async () => {
  const err = await runTiny(fp32, "wasm");
  assert(err <= 1e-4, `fp32 max abs error ${err}`);
});

Deno.test("threaded wasm (2 threads) runs to the end in fresh processes, within 1e-4", async () => {
  // Before the heap was grown at start-up (models/ort_wasm_factory.ts), about half of these
  // processes hung for good in their first session.run.
  const code = `
    import { createRunner } from "./models/runtime.ts";
    import { fixture } from "./tests/fixtures.ts";
    const input = await fixture("tiny-net-input");
    const expected = (await fixture("tiny-net-output")).data;
    const net = await createRunner(${JSON.stringify(fp32)}, { device: "wasm", numThreads: 2 });
    const out = await net.run({ data: input.data.subarray(0, 3 * 256 * 256), shape: [1, 3, 256, 256] });
    let err = 0;
    for (let i = 0; i < out.data.length; i++) err = Math.max(err, Math.abs(out.data[i] - expected[i]));
    await net.dispose();
    console.log(err);`;
  for (let run = 0; run < 3; run++) {
    const { code: rc, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const text = new TextDecoder().decode(stdout).trim();
    assertEquals(rc, 0, `run ${run}: exit ${rc} ${new TextDecoder().decode(stderr)}`);
    assert(Number(text) <= 1e-4, `run ${run}: max abs error ${text}`);
  }
});

Deno.test({
  name: "webgpu (onnxruntime-web) reproduces tiny-net-output within 1e-4, fp16 within 0.25",
  ignore: !gpu,
  fn: async () => {
    const err = await runTiny(fp32, "webgpu", { tiles: 1 });
    assert(err <= 1e-4, `fp32 max abs error ${err} on ${gpu!.description}`);
    const err16 = await runTiny(fp16, "webgpu", { tiles: 1 });
    console.log(`webgpu fp16 max abs error vs fp32 reference: ${err16.toExponential(2)}`);
    assert(err16 <= 0.25, `fp16 max abs error ${err16} on ${gpu!.description}`);
  },
});

Deno.test("bad runner inputs are typed errors", async () => {
  const net = await createRunner(fp32, { device: "cpu", name: "cpsam" });
  assertEquals(net.name, "cpsam");
  const e = await assertRejects(
    () => net.run({ data: new Float32Array(3 * 128 * 128), shape: [1, 3, 128, 128] }),
    CellposeError,
    "[B, 3, 256, 256]",
  );
  assertEquals(e.code, "BAD_SHAPE");
  await net.dispose();
  const missing = await assertRejects(
    () => createRunner(join(dir, "nope.onnx"), { device: "cpu" }),
    CellposeError,
  );
  assertEquals(missing.code, "MODEL_NOT_FOUND");
  const dev = await assertRejects(
    () => createRunner(fp32, { device: "gpu" as "cpu" }),
    CellposeError,
    "device",
  );
  assertEquals(dev.code, "BAD_PARAMETER");
  const junk = join(dir, "junk.onnx");
  await Deno.writeTextFile(junk, "not a model");
  assertEquals(
    (await assertRejects(() => createRunner(junk, { device: "cpu" }), CellposeError)).code,
    "BAD_MODEL",
  );
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
