/**
 * A minimal ONNX protobuf writer: ModelProto with one GraphProto of nodes, initializers (inline
 * or in an external data file) and typed inputs/outputs. Hand-written (about 150 lines) instead
 * of an npm protobuf runtime because only encoding of six message types is needed, and because
 * large weights must be passed through as byte chunks without being copied into intermediate
 * message objects. Field numbers follow onnx/onnx.proto.
 *
 * @example
 * ```ts
 * import { encodeModel } from "./onnx_proto.ts";
 * const bytes = encodeModel({
 *   opset: 17,
 *   graph: {
 *     name: "relu",
 *     nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"] }],
 *     initializers: [],
 *     inputs: [{ name: "x", type: "float32", shape: ["N", 4] }],
 *     outputs: [{ name: "y", type: "float32", shape: ["N", 4] }],
 *   },
 * });
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */

/** Element types used here, with their ONNX TensorProto.DataType codes. */
const ONNX_TYPES = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, float16: 10 } as const;
/** An element type name. */
export type OnnxType = keyof typeof ONNX_TYPES;

/** A node attribute: exactly one of the fields. */
export type OnnxAttr =
  | { i: number }
  | { f: number }
  | { ints: number[] }
  | { floats: number[] }
  | { s: string };

/** One operator application. */
export interface OnnxNode {
  /** operator type, e.g. "MatMul" */
  op: string;
  /** operator set domain (default: the ONNX domain), e.g. "com.microsoft" */
  domain?: string;
  /** input value names ("" for an omitted optional input) */
  inputs: string[];
  /** output value names */
  outputs: string[];
  /** node name (optional, for diagnostics) */
  name?: string;
  /** attributes by name */
  attrs?: Record<string, OnnxAttr>;
}

/** A constant tensor: inline `data`, or a range of the external data file. */
export interface OnnxTensor {
  /** initializer name, as nodes refer to it */
  name: string;
  /** element type */
  type: OnnxType;
  /** shape */
  dims: number[];
  /** little-endian element bytes (omit when `external` is set) */
  data?: Uint8Array;
  /** where the bytes lie in the external data file (path relative to the model) */
  external?: { location: string; offset: number; length: number };
}

/** A graph input or output with a shape of sizes or symbolic names. */
export interface OnnxValueInfo {
  /** value name */
  name: string;
  /** element type */
  type: OnnxType;
  /** sizes, or names for symbolic (dynamic) sizes */
  shape: (number | string)[];
}

/** The graph of a model. */
export interface OnnxGraph {
  /** graph name */
  name: string;
  /** nodes in topological order */
  nodes: OnnxNode[];
  /** constant tensors */
  initializers: OnnxTensor[];
  /** graph inputs */
  inputs: OnnxValueInfo[];
  /** graph outputs */
  outputs: OnnxValueInfo[];
}

/** Protobuf message under construction: a list of byte chunks (large payloads are not copied). */
class Message {
  readonly parts: Uint8Array[] = [];
  length = 0;
  private push(b: Uint8Array) {
    this.parts.push(b);
    this.length += b.length;
  }
  private varint(v: number | bigint) {
    let x = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    this.push(new Uint8Array(out));
  }
  private tag(field: number, wire: number) {
    this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    this.tag(field, 0);
    this.varint(v);
    return this;
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2);
    this.varint(b.length);
    this.push(b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, m: Message): this {
    this.tag(field, 2);
    this.varint(m.length);
    for (const p of m.parts) this.push(p);
    return this;
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) (out.set(p, o), o += p.length);
    return out;
  }
}

function tensorProto(t: OnnxTensor): Message {
  const m = new Message();
  for (const d of t.dims) m.int(1, d);
  m.int(2, ONNX_TYPES[t.type]).string(8, t.name);
  if (t.external) {
    const entry = (k: string, v: string) => new Message().string(1, k).string(2, v);
    m.message(13, entry("location", t.external.location));
    m.message(13, entry("offset", String(t.external.offset)));
    m.message(13, entry("length", String(t.external.length)));
    m.int(14, 1);
  } else {
    m.bytes(9, t.data ?? new Uint8Array());
  }
  return m;
}

function attrProto(name: string, a: OnnxAttr): Message {
  const m = new Message().string(1, name);
  if ("i" in a) m.int(3, a.i).int(20, 2);
  else if ("f" in a) m.float(2, a.f).int(20, 1);
  else if ("s" in a) m.string(4, a.s).int(20, 3);
  else if ("ints" in a) (a.ints.forEach((v) => m.int(8, v)), m.int(20, 7));
  else (a.floats.forEach((v) => m.float(7, v)), m.int(20, 6));
  return m;
}

function nodeProto(n: OnnxNode): Message {
  const m = new Message();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  if (n.name) m.string(3, n.name);
  m.string(4, n.op);
  if (n.domain) m.string(7, n.domain);
  for (const [k, a] of Object.entries(n.attrs ?? {})) m.message(5, attrProto(k, a));
  return m;
}

function valueInfoProto(v: OnnxValueInfo): Message {
  const shape = new Message();
  for (const d of v.shape) {
    shape.message(1, typeof d === "number" ? new Message().int(1, d) : new Message().string(2, d));
  }
  const tensorType = new Message().int(1, ONNX_TYPES[v.type]).message(2, shape);
  return new Message().string(1, v.name).message(2, new Message().message(1, tensorType));
}

/**
 * Encodes a model (IR version 8, default-domain opset `opset`, plus the operator set `domains`
 * its nodes use) to ONNX protobuf bytes.
 *
 * @example
 * ```ts
 * import { encodeModel } from "./onnx_proto.ts";
 * const m = encodeModel({ opset: 17, graph: { name: "g", nodes: [], initializers: [],
 *   inputs: [], outputs: [] } });
 * console.log(m[0]); // 8: field 1 (ir_version), varint
 * ```
 */
export function encodeModel(
  model: {
    opset: number;
    graph: OnnxGraph;
    producer?: string;
    domains?: { domain: string; version: number }[];
  },
): Uint8Array {
  const g = new Message();
  for (const n of model.graph.nodes) g.message(1, nodeProto(n));
  g.string(2, model.graph.name);
  for (const t of model.graph.initializers) g.message(5, tensorProto(t));
  for (const v of model.graph.inputs) g.message(11, valueInfoProto(v));
  for (const v of model.graph.outputs) g.message(12, valueInfoProto(v));
  const m = new Message().int(1, 8).string(2, model.producer ?? "cellpose-deno");
  m.message(7, g).message(8, new Message().string(1, "").int(2, model.opset));
  for (const d of model.domains ?? []) {
    m.message(8, new Message().string(1, d.domain).int(2, d.version));
  }
  return m.concat();
}
