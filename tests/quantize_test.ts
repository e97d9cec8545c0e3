import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { buildCpsamOnnx, convertCheckpoint } from "../models/cpsam_graph.ts";
import { readCheckpointFile } from "../models/checkpoint.ts";
import { convertModel, loadModel } from "../models/load.ts";
import { quantizeColumns } from "../models/quantize.ts";
import { createRunner } from "../models/runtime.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { fixture, FIXTURES, REPO } from "./fixtures.ts";
import { runCli } from "./cli.ts";

const TINY = join(FIXTURES, "tiny-cpsam.pt");

Deno.test("quantizeColumns: per-column scales, every value within half a step", () => {
  const rows = 7, cols = 5;
  const w = new Float32Array(rows * cols).map((_, i) => Math.sin(i * 1.7) * (1 + (i % cols)));
  const { q, scale } = quantizeColumns(w, rows, cols);
  for (let c = 0; c < cols; c++) {
    let max = 0;
    for (let r = 0; r < rows; r++) max = Math.max(max, Math.abs(w[r * cols + c]));
    assert(Math.abs(scale[c] - max / 127) <= 1e-7 * max, `scale of column ${c}`);
    for (let r = 0; r < rows; r++) {
      const err = Math.abs(q[r * cols + c] * scale[c] - w[r * cols + c]);
      assert(err <= scale[c] / 2 + 1e-7, `[${r}, ${c}] off by ${err}`);
    }
  }
  // the column's largest value maps to +-127; an all-zero column stays zero
  assert(q.some((v) => Math.abs(v) === 127));
  const z = quantizeColumns(new Float32Array(4), 2, 2);
  assertEquals([...z.q], [0, 0, 0, 0]);
});

Deno.test("int8 network: tiny-cpsam output close to cellpose's fp32 reference, linear weights in a byte", async () => {
  const sd = await readCheckpointFile(TINY);
  const f32 = buildCpsamOnnx(sd, { precision: "fp32", externalData: "m.data" });
  const i8 = buildCpsamOnnx(sd, { precision: "int8", externalData: "m.data" });
  const text = new TextDecoder().decode(i8.model);
  assert(text.includes("DynamicQuantizeMatMul") && text.includes("com.microsoft"));
  assert(!new TextDecoder().decode(f32.model).includes("DynamicQuantizeMatMul"));
  // int8 is for the CPU: its attention is onnxruntime's fused (flash) MultiHeadAttention
  assert(text.includes("MultiHeadAttention") && !text.includes("Softmax"));
  assert(!new TextDecoder().decode(f32.model).includes("MultiHeadAttention"));
  // the linear layers (qkv, proj, lin1, lin2 per block; neck 1x1) take a byte per weight (3
  // saved, less the per-column scales and page alignment)
  const { dim, depth, mlpDim, neck } = { dim: 64, depth: 2, mlpDim: 256, neck: 256 };
  const linear = depth * (3 * dim * dim + dim * dim + 2 * dim * mlpDim) + dim * neck;
  const saved = f32.externalData!.length - i8.externalData!.length;
  assert(saved >= 2.5 * linear, `int8 saves ${saved} bytes for ${linear} linear weights`);

  const dir = await Deno.makeTempDir({ prefix: "cpsam-int8-" });
  try {
    const path = join(dir, "tiny-int8.onnx");
    await convertCheckpoint(TINY, path, { precision: "int8" });
    const input = (await fixture("tiny-net-input")) as NdArray<Float32Array>;
    const expected = (await fixture("tiny-net-output")).data as Float32Array;
    const net = await createRunner(path, { device: "cpu" });
    try {
      const out = (await net.run(input)).data;
      let max = 0, sq = 0, range = 0;
      for (let i = 0; i < out.length; i++) {
        const d = Math.abs(out[i] - expected[i]);
        max = Math.max(max, d);
        sq += d * d;
        range = Math.max(range, Math.abs(expected[i]));
      }
      const rms = Math.sqrt(sq / out.length);
      console.log(`int8 vs fp32 reference: max abs ${max.toFixed(4)}, rms ${rms.toFixed(4)}`);
      // measured on this fixture: max abs 0.080 (outputs up to 5.6), rms 0.017
      assert(max <= 0.15, `int8 max abs error ${max} (outputs up to ${range})`);
      assert(rms <= 0.03, `int8 rms error ${rms}`);
      // not the fp32 numbers: the weights really are quantised
      assert(max >= 1e-3, `int8 output equals fp32 (${max})`);
    } finally {
      await net.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("int8: converted once per precision, beside fp32, under its own name", async () => {
  const cache = await Deno.makeTempDir({ prefix: "cpsam-int8-cache-" });
  try {
    const ckpt = join(cache, "tiny");
    await Deno.copyFile(TINY, ckpt);
    const opts = { cacheDir: cache };
    const a = await convertModel(ckpt, { ...opts, precision: "int8" });
    assertEquals([a.onnxPath, a.precision, a.reused], [
      join(cache, "tiny-int8.onnx"),
      "int8",
      false,
    ]);
    const b = await convertModel(ckpt, { ...opts, precision: "fp32" });
    assertEquals([b.onnxPath, b.reused], [join(cache, "tiny.onnx"), false]);
    assertEquals((await convertModel(ckpt, { ...opts, precision: "int8" })).reused, true);
    const net = await loadModel(ckpt, { ...opts, precision: "int8", device: "cpu" });
    assertEquals(net.name, "tiny");
    await net.dispose();
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("a bad precision is a BAD_PARAMETER naming it, before any work", async () => {
  const sd = await readCheckpointFile(TINY);
  const e = assertThrows(
    () => buildCpsamOnnx(sd, { precision: "int4" as "int8" }),
    CellposeError,
    '"int4"',
  );
  assertEquals(e.code, "BAD_PARAMETER");
  assert(e.message.includes('"int8"'), e.message);
  for (const call of [convertModel, loadModel]) {
    const e2 = await assertRejects(
      () => call("/nonexistent/model", { precision: "INT8" as "int8" }),
      CellposeError,
      '"INT8"',
    );
    assertEquals(e2.code, "BAD_PARAMETER"); // not MODEL_NOT_FOUND: checked first
  }
});

Deno.test("cli: --quantize int8 on segment and models convert; bad values exit 2", async () => {
  const cache = await Deno.makeTempDir({ prefix: "cellpose-cli-int8-" });
  const cli = (args: string[]) =>
    runCli(args, { cwd: REPO, env: { CELLPOSE_LOCAL_MODELS_PATH: cache } });
  try {
    await Deno.copyFile(TINY, join(cache, "tiny"));
    const conv = await cli(["models", "convert", "tiny", "--quantize", "int8", "--json"]);
    assertEquals(conv.code, 0, conv.stderr);
    const r = JSON.parse(conv.stdout);
    assertEquals([r.precision, r.onnxPath], ["int8", join(cache, "tiny-int8.onnx")]);
    const img = join(cache, "img.png");
    await Deno.copyFile(join(FIXTURES, "..", "data", "dsb2018", "00071198d059.png"), img);
    const seg = await cli([
      "segment",
      img,
      "--pretrained_model",
      "tiny",
      "--quantize",
      "int8",
      "--device",
      "cpu",
    ]);
    assertEquals(seg.code, 0, seg.stderr);
    assert((await Deno.stat(join(cache, "img_seg.npy"))).size > 0);
    assert(seg.stderr.includes("tiny-int8.onnx"), seg.stderr);
    const bad = await cli(["segment", img, "--pretrained_model", "tiny", "--quantize", "int4"]);
    assertEquals(bad.code, 2, bad.stderr);
    assert(bad.stderr.includes("--quantize") && bad.stderr.includes("int4"), bad.stderr);
    const both = await cli([
      "segment",
      img,
      "--pretrained_model",
      "tiny",
      "--fp16",
      "--quantize",
      "int8",
    ]);
    assertEquals(both.code, 2, both.stderr);
    assert(both.stderr.includes("--fp16 and --quantize int8"), both.stderr);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
