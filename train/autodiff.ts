/**
 * A small reverse-mode automatic differentiation over ONNX graphs. Each operation emits its
 * forward ONNX node(s) with static shapes and records a vector-Jacobian product (VJP) rule;
 * {@link Graph.gradients} then walks the record backwards and emits the backward pass as more
 * ONNX nodes in the same graph. The ops are the ones the cpsam architecture needs (Gemm, batched
 * MatMul with broadcasting, element-wise arithmetic with broadcasting, Reshape, Transpose,
 * Slice, Concat, Pad, Softmax, LayerNormalization, exact GELU, the cellpose loss), all of which
 * onnxruntime's CPU and WebGPU providers run; each rule is checked against finite differences in
 * tests/autodiff_test.ts.
 *
 * onnxruntime 1.30 has no training API, so training graphs are built here: the whole forward
 * pass, the loss and the backward pass are one inference graph whose outputs are the loss and
 * the gradients.
 *
 * @example
 * ```ts
 * import { Graph } from "./autodiff.ts";
 * const g = new Graph();
 * const x = g.input("x", [2, 3]);
 * const w = g.input("w", [4, 3], true);
 * const y = g.gemm(x, w); // x @ w^T: [2, 4]
 * const loss = g.reduceMeanAll(g.mul(y, y));
 * const [dw] = g.gradients(loss, [w]);
 * const model = g.encode([loss, dw], ["loss", "dw"]);
 * if (dw.shape.join() !== "4,3" || model.length === 0) throw new Error("unexpected");
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { GraphBuilder } from "../models/onnx_builder.ts";
import type { OnnxAttr } from "../models/onnx_proto.ts";

/** A float32 value in the graph: its name, static shape, and whether gradients flow into it. */
export interface Value {
  /** ONNX value name */
  readonly name: string;
  /** static shape */
  readonly shape: readonly number[];
  /** true when the value depends on an input that gradients are taken for */
  readonly grad: boolean;
}

/** Gradient of each input of a recorded op, given the gradient of its output. */
type Vjp = (g: Value) => (Value | null)[];

interface Record {
  out: Value;
  inputs: Value[];
  vjp: Vjp;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const same = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new CellposeError("BAD_SHAPE", `cannot broadcast [${a}] with [${b}]`, [a, b]);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Builds a float32 ONNX graph with a recorded backward pass. */
export class Graph {
  /** the nodes and constants (models/onnx_builder.ts) */
  readonly builder: GraphBuilder = new GraphBuilder("float32");
  /** graph inputs */
  readonly inputs: Value[] = [];
  private readonly records: Record[] = [];
  private readonly scalars = new Map<number, Value>();
  /** true while VJPs emit the backward pass (nothing is recorded then) */
  private inBackward = false;

  private emit(
    op: string,
    inputs: string[],
    shape: readonly number[],
    grad: boolean,
    attrs?: globalThis.Record<string, OnnxAttr>,
  ): Value {
    return { name: this.builder.op(op, inputs, attrs), shape: [...shape], grad };
  }

  private record(out: Value, inputs: Value[], vjp: Vjp): Value {
    if (out.grad && !this.inBackward) this.records.push({ out, inputs, vjp });
    return out;
  }

  /** A graph input; `grad` marks it as one to take gradients for. */
  input(name: string, shape: readonly number[], grad = false): Value {
    const v = { name, shape: [...shape], grad };
    this.inputs.push(v);
    return v;
  }

  /** A float32 constant. */
  constant(data: Float32Array, shape: readonly number[], name?: string): Value {
    name ??= this.builder.fresh("const");
    if (data.length !== numel(shape)) {
      throw new CellposeError(
        "BAD_SHAPE",
        `constant ${name}: ${data.length} values for [${shape}]`,
      );
    }
    this.builder.weight(name, [...shape], () => data);
    return { name, shape: [...shape], grad: false };
  }

  /** A scalar float32 constant (one initializer per value). */
  scalar(v: number): Value {
    let c = this.scalars.get(v);
    if (!c) this.scalars.set(v, c = this.constant(new Float32Array([v]), []));
    return c;
  }

  /** An int64 constant (shared between nodes that use the same values). */
  private ints(values: readonly number[]): string {
    return this.builder.ints(values);
  }

  // ---- shape operators ------------------------------------------------------------------

  /** Reshape to `shape` (sizes only; no -1). */
  reshape(a: Value, shape: readonly number[]): Value {
    if (numel(shape) !== numel(a.shape)) {
      throw new CellposeError("BAD_SHAPE", `reshape [${a.shape}] to [${shape}]`, shape);
    }
    if (same(a.shape, shape)) return a;
    const out = this.emit("Reshape", [a.name, this.ints(shape)], shape, a.grad);
    return this.record(out, [a], (g) => [this.reshape(g, a.shape)]);
  }

  /** Transpose by `perm`. */
  transpose(a: Value, perm: readonly number[]): Value {
    const shape = perm.map((p) => a.shape[p]);
    const out = this.emit("Transpose", [a.name], shape, a.grad, { perm: { ints: [...perm] } });
    const inv = perm.map((_, i) => perm.indexOf(i));
    return this.record(out, [a], (g) => [this.transpose(g, inv)]);
  }

  /** `a[..., start:end, ...]` along `axis`. */
  slice(a: Value, axis: number, start: number, end: number): Value {
    const shape = [...a.shape];
    shape[axis] = end - start;
    const out = this.emit(
      "Slice",
      [a.name, this.ints([start]), this.ints([end]), this.ints([axis])],
      shape,
      a.grad,
    );
    return this.record(out, [a], (g) => {
      const pads = new Array(2 * a.shape.length).fill(0);
      pads[axis] = start;
      pads[a.shape.length + axis] = a.shape[axis] - end;
      return [this.pad(g, pads)];
    });
  }

  /** Zero padding: `pads` = [begin of each axis..., end of each axis...] (ONNX order). */
  pad(a: Value, pads: readonly number[]): Value {
    const r = a.shape.length;
    const shape = a.shape.map((d, i) => d + pads[i] + pads[r + i]);
    const out = this.emit("Pad", [a.name, this.ints(pads)], shape, a.grad, {
      mode: { s: "constant" },
    });
    return this.record(out, [a], (g) => {
      let x = g;
      for (let i = 0; i < r; i++) {
        if (pads[i] || pads[r + i]) x = this.slice(x, i, pads[i], pads[i] + a.shape[i]);
      }
      return [x];
    });
  }

  /** Concatenation along `axis`. */
  concat(parts: Value[], axis: number): Value {
    const shape = [...parts[0].shape];
    shape[axis] = parts.reduce((s, p) => s + p.shape[axis], 0);
    const out = this.emit(
      "Concat",
      parts.map((p) => p.name),
      shape,
      parts.some((p) => p.grad),
      { axis: { i: axis } },
    );
    return this.record(out, parts, (g) => {
      let at = 0;
      return parts.map((p) => {
        const s = at;
        at += p.shape[axis];
        return p.grad ? this.slice(g, axis, s, at) : null;
      });
    });
  }

  // ---- reductions -------------------------------------------------------------------------

  /** Sum over `axes` (kept as size 1 when `keep`). */
  reduceSum(a: Value, axes: readonly number[], keep: boolean): Value {
    const shape = keep
      ? a.shape.map((d, i) => axes.includes(i) ? 1 : d)
      : a.shape.filter((_, i) => !axes.includes(i));
    const out = this.emit("ReduceSum", [a.name, this.ints(axes)], shape, a.grad, {
      keepdims: { i: keep ? 1 : 0 },
    });
    return this.record(out, [a], (g) => {
      const kept = keep ? g : this.reshape(g, a.shape.map((d, i) => axes.includes(i) ? 1 : d));
      return [this.expand(kept, a.shape)];
    });
  }

  /** Mean of all elements, a scalar. */
  reduceMeanAll(a: Value): Value {
    const flat = this.reshape(a, [numel(a.shape)]);
    const s = this.reduceSum(flat, [0], false);
    return this.scale(s, 1 / numel(a.shape));
  }

  /** Sums `g` down to `shape` over the axes broadcasting added. */
  private unbroadcast(g: Value, shape: readonly number[]): Value {
    if (same(g.shape, shape)) return g;
    const lead = g.shape.length - shape.length;
    const axes: number[] = [];
    for (let i = 0; i < g.shape.length; i++) {
      if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
    }
    const s = this.reduceSumRaw(g, axes);
    return this.reshapeRaw(s, shape);
  }

  /** Broadcast `a` to `shape` (no gradient record: used by VJPs only). */
  private expand(a: Value, shape: readonly number[]): Value {
    if (same(a.shape, shape)) return a;
    return this.emit("Expand", [a.name, this.ints(shape)], shape, false);
  }

  private reduceSumRaw(a: Value, axes: number[]): Value {
    const shape = a.shape.map((d, i) => axes.includes(i) ? 1 : d);
    return this.emit("ReduceSum", [a.name, this.ints(axes)], shape, false, {
      keepdims: { i: 1 },
    });
  }

  private reshapeRaw(a: Value, shape: readonly number[]): Value {
    if (same(a.shape, shape)) return a;
    return this.emit("Reshape", [a.name, this.ints(shape)], shape, false);
  }

  // ---- arithmetic -------------------------------------------------------------------------

  private binary(op: string, a: Value, b: Value, vjp: (g: Value) => [Value | null, Value | null]) {
    const out = this.emit(op, [a.name, b.name], broadcastShape(a.shape, b.shape), a.grad || b.grad);
    return this.record(out, [a, b], (g) => {
      const [ga, gb] = vjp(g);
      return [
        a.grad && ga ? this.unbroadcast(ga, a.shape) : null,
        b.grad && gb ? this.unbroadcast(gb, b.shape) : null,
      ];
    });
  }

  /** `a + b` with broadcasting. */
  add(a: Value, b: Value): Value {
    return this.binary("Add", a, b, (g) => [g, g]);
  }

  /** `a - b` with broadcasting. */
  sub(a: Value, b: Value): Value {
    return this.binary("Sub", a, b, (g) => [g, b.grad ? this.scale(g, -1) : null]);
  }

  /** `a * b` with broadcasting. */
  mul(a: Value, b: Value): Value {
    return this.binary("Mul", a, b, (g) => [
      a.grad ? this.mul(g, b) : null,
      b.grad ? this.mul(g, a) : null,
    ]);
  }

  /** `a * s` for a number `s`. */
  scale(a: Value, s: number): Value {
    const out = this.emit("Mul", [a.name, this.scalar(s).name], a.shape, a.grad);
    return this.record(out, [a], (g) => [this.scale(g, s)]);
  }

  /**
   * Batched matrix product with broadcasting of the batch dimensions (`numpy.matmul`).
   */
  matmul(a: Value, b: Value): Value {
    const ra = a.shape.length, rb = b.shape.length;
    if (ra < 2 || rb < 2 || a.shape[ra - 1] !== b.shape[rb - 2]) {
      throw new CellposeError("BAD_SHAPE", `matmul [${a.shape}] x [${b.shape}]`, [
        a.shape,
        b.shape,
      ]);
    }
    const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const shape = [...batch, a.shape[ra - 2], b.shape[rb - 1]];
    const out = this.emit("MatMul", [a.name, b.name], shape, a.grad || b.grad);
    const swap = (r: number) => [...Array(r - 2).keys(), r - 1, r - 2];
    return this.record(out, [a, b], (g) => [
      a.grad ? this.unbroadcast(this.matmul(g, this.transpose(b, swap(rb))), a.shape) : null,
      b.grad ? this.unbroadcast(this.matmul(this.transpose(a, swap(ra)), g), b.shape) : null,
    ]);
  }

  /**
   * `x @ w^T (+ b)` for 2-D `x` `[M, K]` and a PyTorch-layout weight `w` `[N, K]`: a linear
   * layer as ONNX Gemm.
   */
  gemm(x: Value, w: Value, b?: Value): Value {
    if (x.shape.length !== 2 || w.shape.length !== 2 || x.shape[1] !== w.shape[1]) {
      throw new CellposeError("BAD_SHAPE", `gemm [${x.shape}] x [${w.shape}]^T`, [
        x.shape,
        w.shape,
      ]);
    }
    const shape = [x.shape[0], w.shape[0]];
    const ins = b ? [x, w, b] : [x, w];
    const out = this.emit(
      "Gemm",
      ins.map((v) => v.name),
      shape,
      ins.some((v) => v.grad),
      { transB: { i: 1 } },
    );
    return this.record(out, ins, (g) => [
      x.grad ? this.gemmRaw(g, w, {}) : null,
      w.grad ? this.gemmRaw(g, x, { transA: { i: 1 } }) : null,
      ...(b ? [b.grad ? this.reshape(this.reduceSum(g, [0], false), b.shape) : null] : []),
    ]);
  }

  private gemmRaw(a: Value, b: Value, attrs: globalThis.Record<string, OnnxAttr>): Value {
    const m = "transA" in attrs ? a.shape[1] : a.shape[0];
    const n = "transB" in attrs ? b.shape[0] : b.shape[1];
    return this.emit("Gemm", [a.name, b.name], [m, n], false, attrs);
  }

  // ---- activations and normalisation -------------------------------------------------------

  /** Softmax over the last axis. */
  softmax(a: Value): Value {
    const y = this.emit("Softmax", [a.name], a.shape, a.grad, { axis: { i: -1 } });
    return this.record(y, [a], (g) => {
      const gy = this.mulRaw(g, y);
      const s = this.reduceSumRaw(gy, [a.shape.length - 1]);
      return [this.subRaw(gy, this.mulRaw(y, s))];
    });
  }

  /**
   * LayerNorm over the last axis with weight `w` and bias `b` (PyTorch's `nn.LayerNorm`, biased
   * variance), computed as ONNX LayerNormalization (unit scale) followed by `* w + b`, so that
   * the normalised values and the inverse standard deviation are kept for the backward pass.
   */
  layerNorm(x: Value, w: Value, b: Value, eps: number): Value {
    const d = x.shape[x.shape.length - 1];
    const ones = this.constant(new Float32Array(d).fill(1), [d]);
    const zeros = this.constant(new Float32Array(d), [d]);
    const [xhat, , inv] = this.builder.node(
      "LayerNormalization",
      [x.name, ones.name, zeros.name],
      { axis: { i: -1 }, epsilon: { f: eps } },
      3,
    );
    const xh: Value = { name: xhat, shape: x.shape, grad: false };
    const invstd: Value = { name: inv, shape: [...x.shape.slice(0, -1), 1], grad: false };
    const y = this.emit(
      "Add",
      [this.emit("Mul", [xhat, w.name], x.shape, false).name, b.name],
      x.shape,
      x.grad || w.grad || b.grad,
    );
    const lead = [...Array(x.shape.length - 1).keys()];
    return this.record(y, [x, w, b], (g) => {
      const gw = w.grad
        ? this.reshapeRaw(this.reduceSumRaw(this.mulRaw(g, xh), lead), w.shape)
        : null;
      const gb = b.grad ? this.reshapeRaw(this.reduceSumRaw(g, lead), b.shape) : null;
      let gx: Value | null = null;
      if (x.grad) {
        const last = x.shape.length - 1;
        const gxh = this.mulRaw(g, w);
        const m1 = this.scaleRaw(this.reduceSumRaw(gxh, [last]), 1 / d);
        const m2 = this.scaleRaw(this.reduceSumRaw(this.mulRaw(gxh, xh), [last]), 1 / d);
        gx = this.mulRaw(this.subRaw(this.subRaw(gxh, m1), this.mulRaw(xh, m2)), invstd);
      }
      return [gx, gw, gb];
    });
  }

  /** Exact GELU, `x * (1 + erf(x / sqrt 2)) / 2` (PyTorch's `nn.GELU()`). */
  gelu(x: Value): Value {
    const e = this.emit(
      "Erf",
      [this.emit("Mul", [x.name, this.scalar(Math.SQRT1_2).name], x.shape, false).name],
      x.shape,
      false,
    );
    const onePlus = this.emit("Add", [e.name, this.scalar(1).name], x.shape, false);
    const y = this.emit(
      "Mul",
      [this.emit("Mul", [x.name, onePlus.name], x.shape, false).name, this.scalar(0.5).name],
      x.shape,
      x.grad,
    );
    return this.record(y, [x], (g) => {
      // d/dx = (1 + erf(x/sqrt2)) / 2 + x * exp(-x^2/2) / sqrt(2 pi)
      const x2 = this.mulRaw(x, x);
      const pdf = this.scaleRaw(
        this.unary("Exp", this.scaleRaw(x2, -0.5)),
        1 / Math.sqrt(2 * Math.PI),
      );
      const dydx = this.addRaw(this.scaleRaw(onePlus, 0.5), this.mulRaw(x, pdf));
      return [this.mulRaw(g, dydx)];
    });
  }

  // ---- the cellpose loss --------------------------------------------------------------------

  /**
   * cellpose's `_loss_fn_seg` for network output `y` `[B, 3, H, W]` (dY, dX, cellprob logits)
   * and labels `lbl` `[B, 3, H, W]` (cellprob, flowY, flowX):
   * `MSE(y[:, :2], 5 * lbl[:, 1:]) / 2 + BCEWithLogits(y[:, 2], lbl[:, 0] > 0.5)`, both means.
   * Returns the scalar loss and its two terms.
   */
  cellposeLoss(y: Value, lbl: Value): { loss: Value; mse: Value; bce: Value } {
    const [B, , H, W] = y.shape;
    const flows = this.sliceRaw(y, 1, 0, 2);
    const logits = this.sliceRaw(y, 1, 2, 3);
    const target = this.scaleRaw(this.sliceRaw(lbl, 1, 1, 3), 5);
    const diff = this.subRaw(flows, target);
    const nFlow = B * 2 * H * W, nProb = B * H * W;
    const mse = this.scaleRaw(this.sumAll(this.mulRaw(diff, diff)), 1 / (2 * nFlow));
    const z = this.emit(
      "Cast",
      [
        this.emit(
          "Greater",
          [this.sliceRaw(lbl, 1, 0, 1).name, this.scalar(0.5).name],
          logits.shape,
          false,
        ).name,
      ],
      logits.shape,
      false,
      { to: { i: 1 } },
    );
    // max(x, 0) - x z + log(1 + exp(-|x|))
    const relu = this.unary("Relu", logits);
    const softplus = this.unary(
      "Log",
      this.addRaw(this.unary("Exp", this.scaleRaw(this.unary("Abs", logits), -1)), this.scalar(1)),
    );
    const bceAll = this.addRaw(this.subRaw(relu, this.mulRaw(logits, z)), softplus);
    const bce = this.scaleRaw(this.sumAll(bceAll), 1 / nProb);
    const loss = this.emit("Add", [mse.name, bce.name], [], y.grad);
    this.record(loss, [y], (g) => {
      const gFlow = this.scaleRaw(diff, 1 / nFlow);
      const gProb = this.scaleRaw(this.subRaw(this.unary("Sigmoid", logits), z), 1 / nProb);
      const gy = this.emit("Concat", [gFlow.name, gProb.name], y.shape, false, { axis: { i: 1 } });
      return [this.mulRaw(gy, g)];
    });
    return { loss, mse, bce };
  }

  // ---- raw (unrecorded) helpers for VJPs ----------------------------------------------------

  private unary(op: string, a: Value): Value {
    return this.emit(op, [a.name], a.shape, false);
  }
  private mulRaw(a: Value, b: Value): Value {
    return this.emit("Mul", [a.name, b.name], broadcastShape(a.shape, b.shape), false);
  }
  private addRaw(a: Value, b: Value): Value {
    return this.emit("Add", [a.name, b.name], broadcastShape(a.shape, b.shape), false);
  }
  private subRaw(a: Value, b: Value): Value {
    return this.emit("Sub", [a.name, b.name], broadcastShape(a.shape, b.shape), false);
  }
  private scaleRaw(a: Value, s: number): Value {
    return this.emit("Mul", [a.name, this.scalar(s).name], a.shape, false);
  }
  private sliceRaw(a: Value, axis: number, start: number, end: number): Value {
    const shape = [...a.shape];
    shape[axis] = end - start;
    return this.emit(
      "Slice",
      [a.name, this.ints([start]), this.ints([end]), this.ints([axis])],
      shape,
      false,
    );
  }
  private sumAll(a: Value): Value {
    const flat = this.reshapeRaw(a, [numel(a.shape)]);
    return this.emit("ReduceSum", [flat.name, this.ints([0])], [], false, { keepdims: { i: 0 } });
  }

  // ---- the backward pass --------------------------------------------------------------------

  /**
   * Emits the backward pass of the scalar `loss` and returns `d loss / d v` for each of `wrt`
   * (a zero tensor where `loss` does not depend on it).
   */
  gradients(loss: Value, wrt: readonly Value[]): Value[] {
    if (loss.shape.length !== 0) {
      throw new CellposeError("BAD_SHAPE", `gradients need a scalar loss, got [${loss.shape}]`);
    }
    this.inBackward = true;
    const grads = new Map<string, Value>([[loss.name, this.scalar(1)]]);
    const accumulate = (v: Value, g: Value) => {
      const prev = grads.get(v.name);
      grads.set(v.name, prev ? this.addRaw(prev, g) : g);
    };
    // Records are in forward order; every value's consumers come after it.
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i];
      const g = grads.get(r.out.name);
      if (!g) continue;
      const gi = r.vjp(g);
      r.inputs.forEach((v, k) => {
        if (v.grad && gi[k]) accumulate(v, gi[k]!);
      });
    }
    this.inBackward = false;
    return wrt.map((v) => {
      const g = grads.get(v.name);
      if (g) return g;
      return this.constant(new Float32Array(numel(v.shape)), v.shape);
    });
  }

  /** Encodes the graph with `outputs` as its outputs, named `names`. */
  encode(outputs: readonly Value[], names: readonly string[]): Uint8Array {
    outputs.forEach((v, i) => this.builder.output(v.name, names[i]));
    return this.builder.encode({
      name: "cellpose_deno_training",
      inputs: this.inputs.map((v) => ({ name: v.name, type: "float32", shape: [...v.shape] })),
      outputs: outputs.map((v, i) => ({ name: names[i], type: "float32", shape: [...v.shape] })),
    });
  }
}
