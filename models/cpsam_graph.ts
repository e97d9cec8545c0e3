/**
 * Builds the ONNX graph of cellpose v4's `cpsam` network (`cellpose.vit_sam.Transformer`) from a
 * state dict, following shared/docs/pipeline.md section 5: patch embedding, position embedding,
 * global-attention ViT blocks with SAM's decomposed relative position bias, the neck, and the
 * readout with its depth-to-space. Depth, width and heads come from the tensor shapes.
 *
 * Static work is done here once: the relative-position tables are resized to `2 * grid - 1`
 * rows and expanded per query row, the attention scale is folded into the key weights, and the
 * fixed transposed convolution `W2` is folded into the readout (models/cpsam_fold.ts). The bias
 * `rel_h[q, kh] + rel_w[q, kw]` is added inside the score MatMul by appending `[rel_h, rel_w]`
 * to each query and constant one-hot rows to the keys, so the graph uses only MatMul, Softmax,
 * LayerNormalization, Erf, Conv and shape operators (all supported by onnxruntime's CPU, wasm and
 * WebGPU providers). The fp16 variant stores weights and computes in float16 with float32 input
 * and output. The int8 variant (for CPUs) stores the linear layers' weights (qkv, proj, MLP,
 * neck 1x1) as int8 with per-column scales and runs them as onnxruntime's `com.microsoft`
 * `DynamicQuantizeMatMul` (activations quantised to uint8 per tensor at run time, bias fused;
 * VNNI / AMX kernels where the CPU has them); its attention is onnxruntime's fused
 * `MultiHeadAttention` (fp32, flash attention on the CPU: the N x N scores are never stored), fed
 * the same extended queries and keys token-major. Convolutions, the readout and normalisations
 * stay fp32.
 *
 * @example
 * ```ts
 * import { readCheckpointFile } from "./checkpoint.ts";
 * import { buildCpsamOnnx } from "./cpsam_graph.ts";
 * const sd = await readCheckpointFile("../shared/fixtures/tiny-cpsam.pt");
 * const { model } = buildCpsamOnnx(sd, { precision: "fp32" });
 * await Deno.writeFile("/tmp/tiny-cpsam.onnx", model);
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";
import { readCheckpointFile, type StateDict } from "./checkpoint.ts";
import { type CpsamConfig, cpsamConfig, stateTensor } from "./cpsam_config.ts";
import { foldReadout, relOneHot, relPosTable, transpose2d } from "./cpsam_fold.ts";
import { type FloatType, GraphBuilder } from "./onnx_builder.ts";
import { quantizeColumns } from "./quantize.ts";
import { checkPrecision, type Precision } from "./precision.ts";
import {
  externalBytes,
  type ExternalLayout,
  layoutExternal,
  writeExternalData,
} from "./onnx_external.ts";

/** Options of {@link buildCpsamOnnx}. */
export interface BuildOptions {
  /**
   * weights and compute in float32; or float16 (input and output stay float32); or int8
   * weights for the linear layers with activations quantised at run time (CPU)
   */
  precision: Precision;
  /**
   * file name (relative to the model) of an external data file for the weights; without it,
   * weights are stored inside the model (fine up to the 2 GB protobuf limit)
   */
  externalData?: string;
}

/** What {@link buildCpsamOnnx} returns: the model, and the external data file's bytes. */
export interface BuiltModel {
  /** the ONNX protobuf */
  model: Uint8Array;
  /** bytes of the external data file (when `externalData` was given) */
  externalData?: Uint8Array;
}

const LN_EPS = 1e-6;

/** onnxruntime's contrib operator domain (DynamicQuantizeMatMul) */
const MS = "com.microsoft";

function graphOf(sd: StateDict, c: CpsamConfig, precision: Precision): GraphBuilder {
  const ftype: FloatType = precision === "fp16" ? "float16" : "float32";
  const int8 = precision === "int8";
  const g = new GraphBuilder(ftype);
  const { dim, heads, headDim: d, grid: G, patch: p } = c;
  const N = G * G;
  const t = (key: string) => () => stateTensor(sd, key).data;
  const scalar = (name: string, v: number) => g.weight(name, [], () => new Float32Array([v]));

  const shTokens = g.int64("shape_tokens", [-1, dim]);
  const shHeads = g.int64("shape_heads", [-1, N, heads, d]);
  const splitQkv = g.int64("split_qkv", [dim, dim, dim]);
  const sqrt2 = scalar("sqrt2", Math.SQRT2);
  const one = scalar("one", 1);
  const half = scalar("half", 0.5);

  let x = "tiles";
  if (ftype === "float16") x = g.op("Cast", [x], { to: { i: 10 } });
  // patch embedding -> tokens [B*N, dim] + position embedding
  x = g.op("Conv", [
    x,
    g.weight("patch_embed.weight", [dim, 3, p, p], t("encoder.patch_embed.proj.weight")),
    g.weight("patch_embed.bias", [dim], t("encoder.patch_embed.proj.bias")),
  ], { kernel_shape: { ints: [p, p] }, strides: { ints: [p, p] } });
  x = g.op("Transpose", [x], { perm: { ints: [0, 2, 3, 1] } });
  const shBnc = g.int64("shape_bnc", [-1, N, dim]);
  x = g.op("Reshape", [x, shBnc]);
  x = g.op("Add", [x, g.weight("pos_embed", [1, N, dim], t("encoder.pos_embed"))]);
  x = g.op("Reshape", [x, shTokens]);

  // one-hot keys that pick rel_h[q, k_h] and rel_w[q, k_w] in the score product, broadcast to
  // the batch: key rows [B, H, 2G, N] (head-major attention) or columns [B, N, H, 2G] (fused)
  const batch = g.op("Shape", ["tiles"], { start: { i: 0 }, end: { i: 1 } });
  const expand = (name: string, dims: number[], to: number[], data: () => Float32Array) =>
    g.op("Expand", [
      g.weight(name, dims, data),
      g.op("Concat", [batch, g.ints(to)], { axis: { i: 0 } }),
    ]);
  let keyRows: string | undefined, keyCols: string | undefined;
  const oneHotRows = () =>
    keyRows ??= expand("rel_onehot", [1, 1, 2 * G, N], [heads, 2 * G, N], () => relOneHot(G));
  const oneHotCols = () =>
    keyCols ??= expand(
      "rel_onehot_t",
      [1, N, 1, 2 * G],
      [N, heads, 2 * G],
      () => transpose2d({ data: relOneHot(G), shape: [2 * G, N] }),
    );

  const ln = (v: string, w: string, b: string) =>
    g.op("LayerNormalization", [v, w, b], { axis: { i: -1 }, epsilon: { f: LN_EPS } });
  /** `v @ W + b` with `W [cols, rows]`: in float, or with int8 weights and dynamically quantised `v` */
  const dense = (
    v: string,
    name: string,
    [cols, rows]: [number, number],
    w: () => Float32Array,
    b?: () => Float32Array,
  ) => {
    const bias = b && g.weight(`${name}.bias`, [rows], b);
    if (!int8) {
      const y = g.op("MatMul", [v, g.weight(`${name}.weight`, [cols, rows], w)]);
      return bias ? g.op("Add", [y, bias]) : y;
    }
    // the quantised weight and its scales are written one after the other: computed once
    let q: ReturnType<typeof quantizeColumns> | undefined;
    const quantized = () => (q ??= quantizeColumns(w(), cols, rows));
    const wq = g.tensor(`${name}.weight_int8`, "int8", [cols, rows], () => {
      const r = quantized().q;
      return new Uint8Array(r.buffer, r.byteOffset, r.byteLength);
    });
    const ws = g.weight(`${name}.weight_scale`, [rows], () => {
      const r = quantized().scale;
      q = undefined;
      return r;
    });
    return g.op("DynamicQuantizeMatMul", [v, wq, ws, "", bias ?? ""], undefined, MS);
  };
  const linear = (v: string, name: string, key: string, rows: number, cols: number) => {
    const w = stateTensor(sd, `${key}.weight`);
    return dense(v, name, [cols, rows], () => transpose2d(w), t(`${key}.bias`));
  };

  /**
   * Attention over head-major `[B, H, N, d]` products: `[q, rel_h, rel_w] @ [k; one-hot rows]`,
   * Softmax, `@ v` (MatMul, Softmax and Transpose only: every backend runs it).
   */
  const attention = (q: string, k: string, v: string, [tabH, tabW]: [string, string]) => {
    const heads4 = (s: string, perm: number[]) =>
      g.op("Transpose", [g.op("Reshape", [s, shHeads])], { perm: { ints: perm } });
    const qh = heads4(q, [0, 2, 1, 3]); // [B, H, N, d]
    const kT = heads4(k, [0, 2, 3, 1]); // [B, H, d, N]
    const vh = heads4(v, [0, 2, 1, 3]); // [B, H, N, d]
    const q5 = g.op("Reshape", [qh, g.ints([-1, heads, G, G, d])]); // [B, H, qh, qw, d]
    const shRel = g.ints([-1, heads, N, G]);
    const relH = g.op("Reshape", [g.op("MatMul", [q5, tabH]), shRel]);
    const q5t = g.op("Transpose", [q5], { perm: { ints: [0, 1, 3, 2, 4] } });
    const relWt = g.op("MatMul", [q5t, tabW]); // [B, H, qw, qh, kw]
    const relW = g.op("Reshape", [
      g.op("Transpose", [relWt], { perm: { ints: [0, 1, 3, 2, 4] } }),
      shRel,
    ]);
    const qExt = g.op("Concat", [qh, relH, relW], { axis: { i: -1 } });
    const kExt = g.op("Concat", [kT, oneHotRows()], { axis: { i: 2 } });
    const probs = g.op("Softmax", [g.op("MatMul", [qExt, kExt])], { axis: { i: -1 } });
    const o = g.op("Transpose", [g.op("MatMul", [probs, vh])], { perm: { ints: [0, 2, 1, 3] } });
    return g.op("Reshape", [o, shTokens]);
  };
  /**
   * The same attention as onnxruntime's `com.microsoft` `MultiHeadAttention` over token-major
   * `[B, N, H * (d + 2G)]` queries and keys (each head's `[q, rel_h, rel_w]` and
   * `[k, one-hot columns]`): on the CPU its flash-attention kernel never holds the `N x N`
   * scores, which the MatMul/Softmax chain writes and reads three times (CPU only; the int8
   * graph's).
   */
  const fusedAttention = (q: string, k: string, v: string, [tabH, tabW]: [string, string]) => {
    const rowsTok = g.ints([-1, G, G * heads, d]);
    const headsG = g.ints([-1, N, heads, G]);
    // rel_h[b, qh, qw, h, kh] = q[b, qh, qw, h, :] . tabH[qh, :, kh]
    const relH = g.op("MatMul", [g.op("Reshape", [q, rowsTok]), tabH]);
    // rel_w[b, qh, qw, h, kw] = q[b, qh, qw, h, :] . tabW[qw, :, kw], batched over qw
    const qCols = g.op("Transpose", [g.op("Reshape", [q, g.ints([-1, G, G, heads, d])])], {
      perm: { ints: [0, 2, 1, 3, 4] },
    });
    const relWt = g.op("MatMul", [g.op("Reshape", [qCols, rowsTok]), tabW]);
    const relW = g.op("Transpose", [g.op("Reshape", [relWt, g.ints([-1, G, G, heads, G])])], {
      perm: { ints: [0, 2, 1, 3, 4] },
    });
    const ext = (parts: string[]) =>
      g.op("Reshape", [
        g.op("Concat", parts, { axis: { i: -1 } }),
        g.ints([-1, N, heads * (d + 2 * G)]),
      ]);
    const qExt = ext([
      g.op("Reshape", [q, shHeads]),
      g.op("Reshape", [relH, headsG]),
      g.op("Reshape", [relW, headsG]),
    ]);
    const kExt = ext([g.op("Reshape", [k, shHeads]), oneHotCols()]);
    const o = g.op("MultiHeadAttention", [qExt, kExt, g.op("Reshape", [v, shBnc])], {
      num_heads: { i: heads },
      scale: { f: 1 }, // folded into the key weights
    }, MS);
    return g.op("Reshape", [o, shTokens]);
  };

  for (let i = 0; i < c.depth; i++) {
    const k = `encoder.blocks.${i}`;
    const n = `block${i}`;
    // attention; the scale head_dim^-0.5 is folded into the key weights
    let h = ln(
      x,
      g.weight(`${n}.norm1.weight`, [dim], t(`${k}.norm1.weight`)),
      g.weight(`${n}.norm1.bias`, [dim], t(`${k}.norm1.bias`)),
    );
    const scale = d ** -0.5;
    const qkvW = stateTensor(sd, `${k}.attn.qkv.weight`);
    const qkvB = stateTensor(sd, `${k}.attn.qkv.bias`);
    h = dense(
      h,
      `${n}.qkv`,
      [dim, 3 * dim],
      () => transpose2d(qkvW, [dim, 2 * dim, scale]),
      () => qkvB.data.map((v, j) => j >= dim && j < 2 * dim ? v * scale : v),
    );
    const [q, kk, v] = g.node("Split", [h, splitQkv], { axis: { i: 1 } }, 3);
    const tables = [`${k}.attn.rel_pos_h`, `${k}.attn.rel_pos_w`].map((key, a) =>
      g.weight(`${n}.rel_${"hw"[a]}_table`, [G, d, G], () => relPosTable(stateTensor(sd, key), G))
    ) as [string, string];
    const o = int8 ? fusedAttention(q, kk, v, tables) : attention(q, kk, v, tables);
    x = g.op("Add", [x, linear(o, `${n}.proj`, `${k}.attn.proj`, dim, dim)]);
    // MLP with exact (erf) GELU, in the pattern onnxruntime fuses into one Gelu
    h = ln(
      x,
      g.weight(`${n}.norm2.weight`, [dim], t(`${k}.norm2.weight`)),
      g.weight(`${n}.norm2.bias`, [dim], t(`${k}.norm2.bias`)),
    );
    h = linear(h, `${n}.lin1`, `${k}.mlp.lin1`, c.mlpDim, dim);
    const e = g.op("Add", [g.op("Erf", [g.op("Div", [h, sqrt2])]), one]);
    h = g.op("Mul", [g.op("Mul", [h, e]), half]);
    x = g.op("Add", [x, linear(h, `${n}.lin2`, `${k}.mlp.lin2`, dim, c.mlpDim)]);
  }

  // neck, channels last: 1x1 conv as MatMul, LayerNorm2d as LayerNormalization over channels
  const neck0 = stateTensor(sd, "encoder.neck.0.weight");
  x = dense(x, "neck0", [dim, c.neck], () => transpose2d(neck0));
  x = ln(
    x,
    g.weight("neck1.weight", [c.neck], t("encoder.neck.1.weight")),
    g.weight("neck1.bias", [c.neck], t("encoder.neck.1.bias")),
  );
  x = g.op("Reshape", [x, g.int64("shape_neck", [-1, G, G, c.neck])]);
  x = g.op("Transpose", [x], { perm: { ints: [0, 3, 1, 2] } });
  x = g.op("Conv", [
    x,
    g.weight("neck2.weight", [c.neck, c.neck, 3, 3], t("encoder.neck.2.weight")),
  ], {
    kernel_shape: { ints: [3, 3] },
    pads: { ints: [1, 1, 1, 1] },
  });
  x = g.op("Transpose", [x], { perm: { ints: [0, 2, 3, 1] } });
  x = g.op("Reshape", [x, g.int64("shape_neck_tokens", [-1, c.neck])]);
  x = ln(
    x,
    g.weight("neck3.weight", [c.neck], t("encoder.neck.3.weight")),
    g.weight("neck3.bias", [c.neck], t("encoder.neck.3.bias")),
  );
  // readout (1x1 conv + W2) and depth-to-space: out[o, p*i + dy, p*j + dx]
  const ro = foldReadout(sd, c);
  const nOut = c.nout * p * p;
  x = g.op("Add", [
    g.op("MatMul", [x, g.weight("readout.weight", [c.neck, nOut], () => ro.w)]),
    g.weight("readout.bias", [nOut], () => ro.b),
  ]);
  x = g.op("Reshape", [x, g.int64("shape_d2s", [-1, G, G, c.nout, p, p])]);
  x = g.op("Transpose", [x], { perm: { ints: [0, 3, 1, 4, 2, 5] } });
  x = g.op("Reshape", [x, g.int64("shape_out", [-1, c.nout, c.bsize, c.bsize])]);
  if (ftype === "float16") x = g.op("Cast", [x], { to: { i: 1 } });
  g.output(x, "flows");
  return g;
}

interface Plan {
  model: Uint8Array;
  layout: ExternalLayout;
}

function plan(sd: StateDict, opts: BuildOptions): Plan {
  checkPrecision(opts.precision);
  const c = cpsamConfig(sd);
  const g = graphOf(sd, c, opts.precision);
  const layout = layoutExternal(g.inits, opts.externalData);
  const model = g.encode({
    name: `cpsam_${opts.precision}`,
    initializers: layout.initializers,
    inputs: [{ name: "tiles", type: "float32", shape: ["batch", 3, c.bsize, c.bsize] }],
    outputs: [{ name: "flows", type: "float32", shape: ["batch", c.nout, c.bsize, c.bsize] }],
  });
  return { model, layout };
}

/**
 * Builds the ONNX model of cpsam from its state dict. With `externalData`, weights of 1 KiB and
 * more are placed in a separate buffer to be written next to the model under that name (needed
 * for the real 1.2 GB model; see {@link convertCheckpoint} to write both without holding a
 * second copy).
 *
 * @example
 * ```ts
 * import { readCheckpointFile } from "./checkpoint.ts";
 * import { buildCpsamOnnx } from "./cpsam_graph.ts";
 * const sd = await readCheckpointFile("../shared/fixtures/tiny-cpsam.pt");
 * const { model, externalData } = buildCpsamOnnx(sd, {
 *   precision: "fp16",
 *   externalData: "tiny.onnx.data",
 * });
 * await Deno.writeFile("/tmp/tiny.onnx", model);
 * await Deno.writeFile("/tmp/tiny.onnx.data", externalData!);
 * ```
 */
export function buildCpsamOnnx(sd: StateDict, opts: BuildOptions): BuiltModel {
  const p = plan(sd, opts);
  if (!opts.externalData) return { model: p.model };
  return { model: p.model, externalData: externalBytes(p.layout) };
}

/** What {@link convertCheckpoint} wrote. */
export interface ConvertResult {
  /** path of the model file */
  onnxPath: string;
  /** path of the external data file, if any */
  dataPath?: string;
  /** weights and compute precision */
  precision: Precision;
  /** architecture read off the state dict */
  config: CpsamConfig;
  /** bytes of the model file plus the external data file */
  bytes: number;
}

/**
 * Writes the ONNX model of a cpsam state dict to `onnxPath`. Unless `externalData` is `false`,
 * weights go to `<onnx name>.data` beside it (the default), written tensor by tensor so that no
 * second copy of the weights is held.
 *
 * @example
 * ```ts
 * import { readCheckpointFile } from "./checkpoint.ts";
 * import { writeCpsamOnnx } from "./cpsam_graph.ts";
 * const sd = await readCheckpointFile("../shared/fixtures/tiny-cpsam.pt");
 * const r = await writeCpsamOnnx(sd, "/tmp/tiny16.onnx", { precision: "fp16" });
 * console.log(r.dataPath); // "/tmp/tiny16.onnx.data"
 * ```
 */
export async function writeCpsamOnnx(
  sd: StateDict,
  onnxPath: string,
  opts: { precision: Precision; externalData?: string | false },
): Promise<ConvertResult> {
  const externalData = opts.externalData === false
    ? undefined
    : opts.externalData ?? `${basename(onnxPath)}.data`;
  const p = plan(sd, { precision: opts.precision, externalData });
  let bytes = p.model.length;
  let dataPath: string | undefined;
  if (externalData) {
    dataPath = join(dirname(onnxPath), externalData);
    await writeExternalData(dataPath, p.layout);
    bytes += p.layout.dataLength;
  }
  await Deno.writeFile(onnxPath, p.model);
  return { onnxPath, dataPath, precision: opts.precision, config: cpsamConfig(sd), bytes };
}

/**
 * Converts a `torch.save` cpsam checkpoint into an ONNX model file (see {@link writeCpsamOnnx}
 * for the external data file).
 *
 * @example
 * ```ts
 * import { convertCheckpoint } from "./cpsam_graph.ts";
 * const r = await convertCheckpoint("../shared/fixtures/tiny-cpsam.pt", "/tmp/tiny.onnx", {
 *   precision: "fp32",
 * });
 * console.log(r.dataPath); // "/tmp/tiny.onnx.data"
 * ```
 */
export async function convertCheckpoint(
  ptPath: string,
  onnxPath: string,
  opts: { precision: Precision; externalData?: string | false },
): Promise<ConvertResult> {
  return writeCpsamOnnx(await readCheckpointFile(ptPath), onnxPath, opts);
}
