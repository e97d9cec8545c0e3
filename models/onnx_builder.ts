/**
 * A generic ONNX graph builder over {@link encodeModel}: nodes with fresh output names, constant
 * tensors whose bytes are produced only when the model is written (so a 1.2 GB network is never
 * held twice), shared int64 shape constants, and float weights stored in the graph's compute
 * precision. Used by the cpsam inference graph (models/cpsam_graph.ts) and the training graph's
 * automatic differentiation (train/autodiff.ts).
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./onnx_builder.ts";
 * const g = new GraphBuilder("float32");
 * const w = g.weight("w", [4, 2], () => new Float32Array(8).fill(0.5));
 * const y = g.op("MatMul", ["x", w]);
 * g.output(y, "y");
 * const model = g.encode({
 *   name: "linear",
 *   inputs: [{ name: "x", type: "float32", shape: ["N", 4] }],
 *   outputs: [{ name: "y", type: "float32", shape: ["N", 2] }],
 * });
 * if (model.length === 0 || g.inits[0].byteLength !== 32) throw new Error("unexpected");
 * ```
 * @module
 */
import {
  encodeModel,
  type OnnxAttr,
  type OnnxNode,
  type OnnxTensor,
  type OnnxType,
  type OnnxValueInfo,
} from "./onnx_proto.ts";

/** A constant tensor whose bytes are made when the model is written. */
export interface LazyTensor {
  /** initializer name */
  name: string;
  /** element type */
  type: OnnxType;
  /** shape */
  dims: number[];
  /** the little-endian element bytes (called once per write) */
  bytes: () => Uint8Array;
  /** length of `bytes()` */
  byteLength: number;
}

/** Float types a graph computes in. */
export type FloatType = "float32" | "float16";

const BYTES: Record<OnnxType, number> = {
  float32: 4,
  float16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
};

/** Collects nodes and initializers with fresh names. */
export class GraphBuilder {
  /** nodes in topological order */
  readonly nodes: OnnxNode[] = [];
  /** constant tensors */
  readonly inits: LazyTensor[] = [];
  private count = 0;
  private readonly shared = new Map<string, string>();

  /** `ftype`: the element type of {@link GraphBuilder.weight}s */
  constructor(readonly ftype: FloatType = "float32") {}

  /** A name not used before, starting with `prefix`. */
  fresh(prefix: string): string {
    return `${prefix.toLowerCase()}_${this.count++}`;
  }

  /** Adds a node with `nOut` fresh outputs; `domain` for contrib operators (`com.microsoft`). */
  node(
    op: string,
    inputs: string[],
    attrs?: Record<string, OnnxAttr>,
    nOut = 1,
    domain?: string,
  ): string[] {
    const outputs = Array.from({ length: nOut }, () => this.fresh(op));
    this.nodes.push({ op, inputs, outputs, name: outputs[0], attrs, domain });
    return outputs;
  }

  /** Adds a one-output node and returns the output's name. */
  op(op: string, inputs: string[], attrs?: Record<string, OnnxAttr>, domain?: string): string {
    return this.node(op, inputs, attrs, 1, domain)[0];
  }

  /** A constant of any element type from a byte producer. */
  tensor(name: string, type: OnnxType, dims: number[], bytes: () => Uint8Array): string {
    const byteLength = dims.reduce((a, b) => a * b, 1) * BYTES[type];
    this.inits.push({ name, type, dims, byteLength, bytes });
    return name;
  }

  /** A float weight in the compute precision, converted when written. */
  weight(name: string, dims: number[], data: () => Float32Array): string {
    const half = this.ftype === "float16";
    return this.tensor(name, this.ftype, dims, () => {
      const f = data();
      const t = half ? new Float16Array(f) : f;
      return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
    });
  }

  /** A named 1-D int64 constant. */
  int64(name: string, values: readonly number[]): string {
    const b = new BigInt64Array(values.map(BigInt));
    return this.tensor(name, "int64", [values.length], () => new Uint8Array(b.buffer));
  }

  /** A 1-D int64 constant shared by every node that uses the same values. */
  ints(values: readonly number[]): string {
    const key = values.join(",");
    let name = this.shared.get(key);
    if (!name) this.shared.set(key, name = this.int64(this.fresh("ints"), values));
    return name;
  }

  /** Names `value` as the graph output `name` (an Identity node). */
  output(value: string, name: string): void {
    this.nodes.push({ op: "Identity", inputs: [value], outputs: [name], name });
  }

  /**
   * Encodes the graph with every initializer inline, or with `initializers` given (e.g. laid out
   * in an external data file by models/onnx_external.ts). Opset 17, plus `com.microsoft` 1 when a
   * node uses it.
   */
  encode(graph: {
    name: string;
    inputs: OnnxValueInfo[];
    outputs: OnnxValueInfo[];
    initializers?: OnnxTensor[];
  }): Uint8Array {
    const initializers = graph.initializers ??
      this.inits.map((t) => ({ name: t.name, type: t.type, dims: t.dims, data: t.bytes() }));
    const domains = [...new Set(this.nodes.map((n) => n.domain).filter((d) => d))] as string[];
    return encodeModel({
      opset: 17,
      domains: domains.map((domain) => ({ domain, version: 1 })),
      graph: { ...graph, nodes: this.nodes, initializers },
    });
  }
}
