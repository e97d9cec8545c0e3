import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import { readCheckpointFile, type StateDict } from "../models/checkpoint.ts";
import { cpsamConfig } from "../models/cpsam_config.ts";
import { buildCpsamOnnx, convertCheckpoint } from "../models/cpsam_graph.ts";
import { createRunner } from "../models/runtime.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { fixture, FIXTURES } from "./fixtures.ts";

const TINY = join(FIXTURES, "tiny-cpsam.pt");

const maxAbsDiff = (a: Float32Array, b: Float32Array) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

Deno.test("cpsamConfig reads the tiny architecture off the tensor shapes", async () => {
  const cfg = cpsamConfig(await readCheckpointFile(TINY));
  assertEquals(cfg, {
    dim: 64,
    depth: 2,
    heads: 4,
    headDim: 16,
    patch: 8,
    grid: 32,
    mlpDim: 256,
    neck: 256,
    nout: 3,
    bsize: 256,
  });
});

Deno.test("a cellpose 3 state dict is refused as such", () => {
  const t = { data: new Float32Array(4), shape: [4] };
  const sd: StateDict = new Map([
    ["downsample.down.res_down_0.conv.conv_0.0.weight", t],
    ["output.2.weight", t],
    ["style.weight", t],
  ]);
  const e = assertThrows(() => cpsamConfig(sd), CellposeError, "cellpose 3");
  assertEquals(e.code, "BAD_MODEL");
  assert(e.message.includes("cellpose v4"), e.message);
  const other: StateDict = new Map([["fc.weight", t]]);
  const e2 = assertThrows(() => cpsamConfig(other), CellposeError, "encoder.pos_embed");
  assertEquals(e2.code, "BAD_MODEL");
});

Deno.test("a wrong-shaped or missing tensor is named in the error", async () => {
  const sd = await readCheckpointFile(TINY);
  const bad = new Map(sd);
  bad.set("encoder.blocks.1.mlp.lin2.weight", {
    data: new Float32Array(64 * 255),
    shape: [64, 255],
  });
  const e = assertThrows(() => cpsamConfig(bad), CellposeError, "encoder.blocks.1.mlp.lin2.weight");
  assertEquals(e.code, "BAD_SHAPE");
  assert(e.message.includes("[64,256]") && e.message.includes("[64,255]"), e.message);
  const rel = new Map(sd);
  rel.set("encoder.blocks.0.attn.rel_pos_w", { data: new Float32Array(27 * 8), shape: [27, 8] });
  assertEquals(assertThrows(() => cpsamConfig(rel), CellposeError, "rel_pos_w").code, "BAD_SHAPE");
  const missing = new Map(sd);
  missing.delete("encoder.neck.3.bias");
  assertEquals(
    assertThrows(() => cpsamConfig(missing), CellposeError, "encoder.neck.3.bias").code,
    "BAD_MODEL",
  );
  assertThrows(
    () => buildCpsamOnnx(sd, { precision: "fp64" as "fp32" }),
    CellposeError,
    "precision",
  );
});

Deno.test("external data: weights leave the model and the model gives the same output", async () => {
  const sd = await readCheckpointFile(TINY);
  const inline = buildCpsamOnnx(sd, { precision: "fp32" });
  const ext = buildCpsamOnnx(sd, { precision: "fp32", externalData: "m.onnx.data" });
  assert(ext.model.length < 100_000, `model without weights is ${ext.model.length} bytes`);
  assert(inline.model.length > 3_000_000);
  assert(ext.externalData!.length >= 3_000_000);
  const dir = await Deno.makeTempDir();
  const r = await convertCheckpoint(TINY, join(dir, "m.onnx"), { precision: "fp32" });
  assertEquals(r.dataPath, join(dir, "m.onnx.data"));
  assertEquals(await Deno.readFile(join(dir, "m.onnx")), ext.model);
  assertEquals(await Deno.readFile(join(dir, "m.onnx.data")), ext.externalData);
  await Deno.writeFile(join(dir, "inline.onnx"), inline.model);
  const input = (await fixture("tiny-net-input")) as { data: Float32Array; shape: number[] };
  const expected = (await fixture("tiny-net-output")).data as Float32Array;
  for (const name of ["m.onnx", "inline.onnx"]) {
    const net = await createRunner(join(dir, name), { device: "cpu" });
    const out = await net.run(input);
    await net.dispose();
    const err = maxAbsDiff(out.data, expected);
    assert(err <= 1e-4, `${name}: max abs error ${err}`);
  }
  await Deno.remove(dir, { recursive: true });
});
