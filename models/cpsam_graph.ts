/**
 * Builds the ONNX graph of cellpose v4's `cpsam` network (`cellpose.vit_sam.Transformer`) from a
 * state dict, following shared/docs/pipeline.md section 5: patch embedding, position embedding,
 * global-attention ViT blocks with SAM's decomposed relative position bias, the neck, and the
 * readout with its depth-to-space. Depth, width and heads come from the tensor shapes.
 *
 * Static work is done here once: the relative-position tables are resized to `2 * grid - 1`
 * rows and expanded per query row, the attention scale is folded into the key weights, and the
 * fixed transposed convolution `W2` is folded into the readout. The bias
 * `rel_h[q, kh] + rel_w[q, kw]` is added inside the score MatMul by appending `[rel_h, rel_w]`
 * to each query and constant one-hot rows to the keys, so the graph uses only MatMul, Softmax,
 * LayerNormalization, Erf, Conv and shape operators (all supported by onnxruntime's CPU, wasm and
 * WebGPU providers). The fp16 variant stores weights and computes in float16 with float32 input
 * and output.
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
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { readCheckpointFile, type StateDict } from "./checkpoint.ts";
import {
  encodeModel,
  type OnnxAttr,
  type OnnxNode,
  type OnnxTensor,
  type OnnxType,
} from "./onnx_proto.ts";
import { writeAll } from "../io/tiff_strips.ts";

/** The architecture read off a cpsam state dict. */
export interface CpsamConfig {
  /** token width (1024 for cpsam, ViT-L) */
  dim: number;
  /** transformer blocks (24) */
  depth: number;
  /** attention heads (16) */
  heads: number;
  /** per-head width (64) */
  headDim: number;
  /** patch size (8) */
  patch: number;
  /** tokens per side (32) */
  grid: number;
  /** MLP hidden width (4096) */
  mlpDim: number;
  /** neck channels (256) */
  neck: number;
  /** output channels (3: dY, dX, cellprob) */
  nout: number;
  /** tile size = grid * patch (256) */
  bsize: number;
}

/** Options of {@link buildCpsamOnnx}. */
export interface BuildOptions {
  /** weights and compute in float32, or float16 (input and output stay float32) */
  precision: "fp32" | "fp16";
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
/** initializers at least this large go to the external data file */
const EXTERNAL_MIN_BYTES = 1024;
/** external data offsets are page aligned so runtimes can map them */
const EXTERNAL_ALIGN = 4096;

function get(sd: StateDict, key: string): NdArray<Float32Array> {
  const t = sd.get(key);
  if (!t) throw new CellposeError("BAD_MODEL", `state dict lacks ${key}, which cpsam needs`, key);
  return t;
}

/**
 * Reads the architecture off the tensor shapes and checks every key cpsam needs.
 * Throws `BAD_MODEL` for a different architecture (naming cellpose 3 models), `BAD_SHAPE` for a
 * tensor of the wrong shape.
 *
 * @example
 * ```ts
 * import { readCheckpointFile } from "./checkpoint.ts";
 * import { cpsamConfig } from "./cpsam_graph.ts";
 * const cfg = cpsamConfig(await readCheckpointFile("../shared/fixtures/tiny-cpsam.pt"));
 * console.log(cfg.dim, cfg.depth, cfg.heads); // 64 2 4
 * ```
 */
export function cpsamConfig(sd: StateDict): CpsamConfig {
  const keys = [...sd.keys()];
  if (keys.some((k) => k.startsWith("downsample.") || k.startsWith("output."))) {
    throw new CellposeError(
      "BAD_MODEL",
      "this looks like a cellpose 3 model (keys downsample.*, upsample.*, output.*); cpsam needs " +
        "a cellpose v4 (Cellpose-SAM) checkpoint",
      keys.slice(0, 5),
    );
  }
  const pos = get(sd, "encoder.pos_embed");
  const pe = get(sd, "encoder.patch_embed.proj.weight");
  const rel = get(sd, "encoder.blocks.0.attn.rel_pos_h");
  if (pos.shape.length !== 4 || pos.shape[1] !== pos.shape[2]) {
    throw new CellposeError(
      "BAD_SHAPE",
      `encoder.pos_embed must be [1, G, G, dim], got [${pos.shape}]`,
      pos.shape,
    );
  }
  if (pe.shape.length !== 4 || rel.shape.length !== 2) {
    throw new CellposeError(
      "BAD_SHAPE",
      `encoder.patch_embed.proj.weight must be 4-D and rel_pos_h 2-D, got [${pe.shape}], [${rel.shape}]`,
      pe.shape,
    );
  }
  const dim = pos.shape[3];
  const grid = pos.shape[1];
  const headDim = rel.shape[1];
  let depth = 0;
  while (sd.has(`encoder.blocks.${depth}.norm1.weight`)) depth++;
  const mlpDim = get(sd, "encoder.blocks.0.mlp.lin1.weight").shape[0];
  const neck = get(sd, "encoder.neck.0.weight").shape[0];
  const outCh = get(sd, "out.weight").shape[0];
  const patch = pe.shape[2];
  if (dim % headDim !== 0) {
    throw new CellposeError(
      "BAD_SHAPE",
      `rel_pos width ${headDim} (the head width) must divide the token width ${dim}`,
      rel.shape,
    );
  }
  const nout = outCh / (patch * patch);
  const cfg: CpsamConfig = {
    dim,
    depth,
    heads: dim / headDim,
    headDim,
    patch,
    grid,
    mlpDim,
    neck,
    nout,
    bsize: grid * patch,
  };
  checkShapes(sd, cfg);
  return cfg;
}

function checkShapes(sd: StateDict, c: CpsamConfig) {
  const expect: [string, number[]][] = [
    ["encoder.patch_embed.proj.weight", [c.dim, 3, c.patch, c.patch]],
    ["encoder.patch_embed.proj.bias", [c.dim]],
    ["encoder.pos_embed", [1, c.grid, c.grid, c.dim]],
    ["encoder.neck.0.weight", [c.neck, c.dim, 1, 1]],
    ["encoder.neck.1.weight", [c.neck]],
    ["encoder.neck.1.bias", [c.neck]],
    ["encoder.neck.2.weight", [c.neck, c.neck, 3, 3]],
    ["encoder.neck.3.weight", [c.neck]],
    ["encoder.neck.3.bias", [c.neck]],
    ["out.weight", [c.nout * c.patch ** 2, c.neck, 1, 1]],
    ["out.bias", [c.nout * c.patch ** 2]],
    ["W2", [c.nout * c.patch ** 2, c.nout, c.patch, c.patch]],
  ];
  for (let i = 0; i < c.depth; i++) {
    const b = `encoder.blocks.${i}.`;
    expect.push(
      [b + "norm1.weight", [c.dim]],
      [b + "norm1.bias", [c.dim]],
      [b + "attn.qkv.weight", [3 * c.dim, c.dim]],
      [b + "attn.qkv.bias", [3 * c.dim]],
      [b + "attn.proj.weight", [c.dim, c.dim]],
      [b + "attn.proj.bias", [c.dim]],
      [b + "norm2.weight", [c.dim]],
      [b + "norm2.bias", [c.dim]],
      [b + "mlp.lin1.weight", [c.mlpDim, c.dim]],
      [b + "mlp.lin1.bias", [c.mlpDim]],
      [b + "mlp.lin2.weight", [c.dim, c.mlpDim]],
      [b + "mlp.lin2.bias", [c.dim]],
    );
    for (const axis of ["h", "w"]) {
      const t = get(sd, `${b}attn.rel_pos_${axis}`);
      if (t.shape.length !== 2 || t.shape[1] !== c.headDim || t.shape[0] < 1) {
        throw new CellposeError(
          "BAD_SHAPE",
          `${b}attn.rel_pos_${axis} must be [rows, ${c.headDim}], got [${t.shape}]`,
          t.shape,
        );
      }
    }
  }
  for (const [key, shape] of expect) {
    const t = get(sd, key);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new CellposeError(
        "BAD_SHAPE",
        `${key} must have shape [${shape}] for this cpsam (dim ${c.dim}, ${c.heads} heads), ` +
          `got [${t.shape}]`,
        t.shape,
      );
    }
  }
}

/**
 * `rel_pos` resized to `2 * grid - 1` rows (PyTorch linear interpolation, align_corners=False)
 * and laid out per query row as `[grid (q), headDim, grid (k)]`: `T[q, c, k] = R[q - k + grid - 1, c]`.
 */
function relPosTable(rel: NdArray<Float32Array>, grid: number): Float32Array {
  const [n, d] = rel.shape;
  const L = 2 * grid - 1;
  const resized = new Float64Array(L * d);
  for (let i = 0; i < L; i++) {
    const src = Math.max(0, (i + 0.5) * n / L - 0.5);
    const i0 = Math.min(Math.floor(src), n - 1);
    const i1 = Math.min(i0 + 1, n - 1);
    const w = src - i0;
    for (let c = 0; c < d; c++) {
      resized[i * d + c] = (1 - w) * rel.data[i0 * d + c] + w * rel.data[i1 * d + c];
    }
  }
  const out = new Float32Array(grid * d * grid);
  for (let q = 0; q < grid; q++) {
    for (let k = 0; k < grid; k++) {
      const r = q - k + grid - 1;
      for (let c = 0; c < d; c++) out[(q * d + c) * grid + k] = resized[r * d + c];
    }
  }
  return out;
}

/** `[rows, cols]` -> `[cols, rows]`, optionally scaling rows `[r0, r1)`. */
function transpose2d(w: NdArray<Float32Array>, scaleRows?: [number, number, number]) {
  const [rows, cols] = [w.shape[0], size2(w.shape)];
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const s = scaleRows && r >= scaleRows[0] && r < scaleRows[1] ? scaleRows[2] : 1;
    for (let c = 0; c < cols; c++) out[c * rows + r] = w.data[r * cols + c] * s;
  }
  return out;
}

const size2 = (shape: number[]) => shape.slice(1).reduce((a, b) => a * b, 1);

/** Readout 1x1 conv followed by the transposed conv `W2`, folded into one `[neck, nout*p*p]` matrix. */
function foldReadout(sd: StateDict, c: CpsamConfig): { w: Float32Array; b: Float32Array } {
  const wo = get(sd, "out.weight").data;
  const bo = get(sd, "out.bias").data;
  const w2 = get(sd, "W2").data;
  const n = c.nout * c.patch ** 2;
  const w = new Float32Array(c.neck * n);
  const b = new Float32Array(n);
  for (let col = 0; col < n; col++) {
    let acc = 0;
    for (let ch = 0; ch < n; ch++) acc += bo[ch] * w2[ch * n + col];
    b[col] = acc;
    for (let k = 0; k < c.neck; k++) {
      let s = 0;
      for (let ch = 0; ch < n; ch++) {
        const m = w2[ch * n + col];
        if (m !== 0) s += wo[ch * c.neck + k] * m;
      }
      w[k * n + col] = s;
    }
  }
  return { w, b };
}

interface LazyTensor {
  name: string;
  type: OnnxType;
  dims: number[];
  bytes: () => Uint8Array;
  byteLength: number;
}

/** Collects nodes and initializers with fresh names. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly inits: LazyTensor[] = [];
  private count = 0;
  constructor(readonly ftype: "float32" | "float16") {}

  node(op: string, inputs: string[], attrs?: Record<string, OnnxAttr>, nOut = 1): string[] {
    const outputs = Array.from({ length: nOut }, () => `${op.toLowerCase()}_${this.count++}`);
    this.nodes.push({ op, inputs, outputs, name: outputs[0], attrs });
    return outputs;
  }
  op(op: string, inputs: string[], attrs?: Record<string, OnnxAttr>): string {
    return this.node(op, inputs, attrs)[0];
  }
  /** A float weight in the compute precision, converted when written. */
  weight(name: string, dims: number[], data: () => Float32Array): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const half = this.ftype === "float16";
    this.inits.push({
      name,
      type: this.ftype,
      dims,
      byteLength: n * (half ? 2 : 4),
      bytes: () => {
        const f = data();
        const t = half ? new Float16Array(f) : f;
        return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
      },
    });
    return name;
  }
  int64(name: string, values: number[]): string {
    const b = new BigInt64Array(values.map(BigInt));
    this.inits.push({
      name,
      type: "int64",
      dims: [values.length],
      byteLength: b.byteLength,
      bytes: () => new Uint8Array(b.buffer),
    });
    return name;
  }
}

interface Plan {
  model: Uint8Array;
  /** external data pieces in file order */
  pieces: { offset: number; tensor: LazyTensor }[];
  dataLength: number;
}

function graphOf(sd: StateDict, c: CpsamConfig, ftype: "float32" | "float16") {
  const g = new GraphBuilder(ftype);
  const { dim, heads, headDim: d, grid: G, patch: p } = c;
  const N = G * G;
  const t = (key: string) => () => get(sd, key).data;
  const scalar = (name: string, v: number) => g.weight(name, [], () => new Float32Array([v]));

  const shTokens = g.int64("shape_tokens", [-1, dim]);
  const shHeads = g.int64("shape_heads", [-1, N, heads, d]);
  const shGrid5 = g.int64("shape_qgrid", [-1, heads, G, G, d]);
  const shRel = g.int64("shape_rel", [-1, heads, N, G]);
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
  x = g.op("Reshape", [x, g.int64("shape_bnc", [-1, N, dim])]);
  x = g.op("Add", [x, g.weight("pos_embed", [1, N, dim], t("encoder.pos_embed"))]);
  x = g.op("Reshape", [x, shTokens]);

  // one-hot key rows that pick rel_h[q, k_h] and rel_w[q, k_w] in the score MatMul
  const oneHot = g.weight("rel_onehot", [1, 1, 2 * G, N], () => {
    const e = new Float32Array(2 * G * N);
    for (let k = 0; k < N; k++) {
      e[Math.floor(k / G) * N + k] = 1;
      e[(G + (k % G)) * N + k] = 1;
    }
    return e;
  });
  const batch = g.op("Shape", ["tiles"], { start: { i: 0 }, end: { i: 1 } });
  const keyRows = g.op("Expand", [
    oneHot,
    g.op("Concat", [batch, g.int64("shape_onehot_rest", [heads, 2 * G, N])], { axis: { i: 0 } }),
  ]);

  const ln = (v: string, w: string, b: string) =>
    g.op("LayerNormalization", [v, w, b], { axis: { i: -1 }, epsilon: { f: LN_EPS } });
  const linear = (v: string, name: string, key: string, rows: number, cols: number) => {
    const w = get(sd, `${key}.weight`);
    const y = g.op("MatMul", [v, g.weight(`${name}.weight`, [cols, rows], () => transpose2d(w))]);
    return g.op("Add", [y, g.weight(`${name}.bias`, [rows], t(`${key}.bias`))]);
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
    const qkvW = get(sd, `${k}.attn.qkv.weight`);
    const qkvB = get(sd, `${k}.attn.qkv.bias`);
    h = g.op("MatMul", [
      h,
      g.weight(`${n}.qkv.weight`, [dim, 3 * dim], () => transpose2d(qkvW, [dim, 2 * dim, scale])),
    ]);
    h = g.op("Add", [
      h,
      g.weight(
        `${n}.qkv.bias`,
        [3 * dim],
        () => qkvB.data.map((v, j) => j >= dim && j < 2 * dim ? v * scale : v),
      ),
    ]);
    const [q, kk, v] = g.node("Split", [h, splitQkv], { axis: { i: 1 } }, 3);
    const heads4 = (s: string, perm: number[]) =>
      g.op("Transpose", [g.op("Reshape", [s, shHeads])], { perm: { ints: perm } });
    const qh = heads4(q, [0, 2, 1, 3]); // [B, H, N, d]
    const kT = heads4(kk, [0, 2, 3, 1]); // [B, H, d, N]
    const vh = heads4(v, [0, 2, 1, 3]); // [B, H, N, d]
    const q5 = g.op("Reshape", [qh, shGrid5]); // [B, H, qh, qw, d]
    const tabH = g.weight(
      `${n}.rel_h_table`,
      [G, d, G],
      () => relPosTable(get(sd, `${k}.attn.rel_pos_h`), G),
    );
    const tabW = g.weight(
      `${n}.rel_w_table`,
      [G, d, G],
      () => relPosTable(get(sd, `${k}.attn.rel_pos_w`), G),
    );
    const relH = g.op("Reshape", [g.op("MatMul", [q5, tabH]), shRel]);
    const q5t = g.op("Transpose", [q5], { perm: { ints: [0, 1, 3, 2, 4] } });
    const relWt = g.op("MatMul", [q5t, tabW]); // [B, H, qw, qh, kw]
    const relW = g.op("Reshape", [
      g.op("Transpose", [relWt], { perm: { ints: [0, 1, 3, 2, 4] } }),
      shRel,
    ]);
    const qExt = g.op("Concat", [qh, relH, relW], { axis: { i: -1 } });
    const kExt = g.op("Concat", [kT, keyRows], { axis: { i: 2 } });
    const probs = g.op("Softmax", [g.op("MatMul", [qExt, kExt])], { axis: { i: -1 } });
    let o = g.op("Transpose", [g.op("MatMul", [probs, vh])], { perm: { ints: [0, 2, 1, 3] } });
    o = g.op("Reshape", [o, shTokens]);
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
  const neck0 = get(sd, "encoder.neck.0.weight");
  x = g.op("MatMul", [x, g.weight("neck0.weight", [dim, c.neck], () => transpose2d(neck0))]);
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
  g.nodes.push({ op: "Identity", inputs: [x], outputs: ["flows"], name: "flows" });
  return g;
}

function plan(sd: StateDict, opts: BuildOptions): Plan {
  if (opts.precision !== "fp32" && opts.precision !== "fp16") {
    throw new CellposeError(
      "BAD_PARAMETER",
      `precision must be "fp32" or "fp16", got ${JSON.stringify(opts.precision)}`,
      opts.precision,
    );
  }
  const c = cpsamConfig(sd);
  const g = graphOf(sd, c, opts.precision === "fp16" ? "float16" : "float32");
  const pieces: Plan["pieces"] = [];
  let dataLength = 0;
  const initializers: OnnxTensor[] = g.inits.map((t) => {
    if (!opts.externalData || t.byteLength < EXTERNAL_MIN_BYTES) {
      return { name: t.name, type: t.type, dims: t.dims, data: t.bytes() };
    }
    const offset = Math.ceil(dataLength / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
    pieces.push({ offset, tensor: t });
    dataLength = offset + t.byteLength;
    return {
      name: t.name,
      type: t.type,
      dims: t.dims,
      external: { location: opts.externalData, offset, length: t.byteLength },
    };
  });
  const model = encodeModel({
    opset: 17,
    graph: {
      name: `cpsam_${opts.precision}`,
      nodes: g.nodes,
      initializers,
      inputs: [{ name: "tiles", type: "float32", shape: ["batch", 3, c.bsize, c.bsize] }],
      outputs: [{ name: "flows", type: "float32", shape: ["batch", c.nout, c.bsize, c.bsize] }],
    },
  });
  return { model, pieces, dataLength };
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
  const data = new Uint8Array(p.dataLength);
  for (const { offset, tensor } of p.pieces) data.set(tensor.bytes(), offset);
  return { model: p.model, externalData: data };
}

/** What {@link convertCheckpoint} wrote. */
export interface ConvertResult {
  /** path of the model file */
  onnxPath: string;
  /** path of the external data file, if any */
  dataPath?: string;
  /** weights and compute precision */
  precision: "fp32" | "fp16";
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
  opts: { precision: "fp32" | "fp16"; externalData?: string | false },
): Promise<ConvertResult> {
  const externalData = opts.externalData === false
    ? undefined
    : opts.externalData ?? `${basename(onnxPath)}.data`;
  const p = plan(sd, { precision: opts.precision, externalData });
  let bytes = p.model.length;
  let dataPath: string | undefined;
  if (externalData) {
    dataPath = join(dirname(onnxPath), externalData);
    const file = await Deno.open(dataPath, { write: true, create: true, truncate: true });
    try {
      let at = 0;
      for (const { offset, tensor } of p.pieces) {
        if (offset > at) await writeAll(file, new Uint8Array(offset - at));
        await writeAll(file, tensor.bytes());
        at = offset + tensor.byteLength;
      }
    } finally {
      file.close();
    }
    bytes += p.dataLength;
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
  opts: { precision: "fp32" | "fp16"; externalData?: string | false },
): Promise<ConvertResult> {
  return writeCpsamOnnx(await readCheckpointFile(ptPath), onnxPath, opts);
}
