/**
 * A minimal Python pickle writer (protocol 3, what `np.save` uses for object arrays) for plain
 * data: None, bool, int, float, str, list, tuple, dict with string keys, and NumPy arrays (as
 * numpy pickles them: `numpy.core.multiarray._reconstruct` plus a BUILD state holding the raw
 * little-endian bytes), plus globals, calls, persistent ids and OrderedDicts for `torch.save`'s
 * state dicts. No memo. Written by hand because no npm package writes NumPy- or
 * PyTorch-compatible pickles; it is what cellpose's `_seg.npy` dictionary and saved models need.
 *
 * JS values map to: null -> None, boolean -> bool, integer number -> int, other number -> float
 * (wrap with {@link pyFloat} to force a float), string -> str, array -> list, {@link pyTuple} ->
 * tuple, {@link NdArray} -> numpy.ndarray ({@link pyBoolArray}: of bool), other object or Map ->
 * dict.
 *
 * @example
 * ```ts
 * import { pickleDumps, pyFloat } from "./pickle_write.ts";
 * const bytes = pickleDumps({ diameter: pyFloat(30), masks: { data: new Uint16Array(4), shape: [2, 2] } });
 * console.log(bytes[0], bytes[1]); // 128 3 (PROTO 3)
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { descrOf } from "./npy.ts";

const FLOAT = Symbol("pyFloat");
const TUPLE = Symbol("pyTuple");
const BOOLS = Symbol("pyBoolArray");
const GLOBAL = Symbol("pyGlobal");
const CALL = Symbol("pyCall");
const PERSISTENT = Symbol("pyPersistent");
const ORDERED = Symbol("pyOrderedDict");

/** A number pickled as a Python float even when it is integral. */
export interface PyFloat {
  [FLOAT]: number;
}
/** Items pickled as a Python tuple. */
export interface PyTuple {
  [TUPLE]: PyValue[];
}
/** A 0/1 array pickled with numpy dtype bool. */
export interface PyBoolArray {
  [BOOLS]: NdArray<Uint8Array>;
}
/** A module-level Python object (`GLOBAL module name`), e.g. a storage class. */
export interface PyGlobal {
  [GLOBAL]: [string, string];
}
/** `fn(*args)` as pickle's REDUCE builds it. */
export interface PyCall {
  [CALL]: [PyGlobal, PyValue[]];
}
/** A persistent id (BINPERSID): how `torch.save` refers to tensor storages. */
export interface PyPersistent {
  [PERSISTENT]: PyValue;
}
/** A `collections.OrderedDict` with string keys, in this order. */
export interface PyOrderedDict {
  [ORDERED]: [string, PyValue][];
}
/** Values {@link pickleDumps} can write. */
export type PyValue =
  | null
  | boolean
  | number
  | string
  | PyFloat
  | PyTuple
  | PyBoolArray
  | PyGlobal
  | PyCall
  | PyPersistent
  | PyOrderedDict
  | NdArray
  | PyValue[]
  | Map<string, PyValue>
  | { [key: string]: PyValue };

/** Marks `x` to be pickled as a float. */
export function pyFloat(x: number): PyFloat {
  return { [FLOAT]: x };
}

/** Marks `items` to be pickled as a tuple. */
export function pyTuple(items: PyValue[]): PyTuple {
  return { [TUPLE]: items };
}

/** Marks a 0/1 Uint8Array array to be pickled with numpy dtype bool. */
export function pyBoolArray(a: NdArray<Uint8Array>): PyBoolArray {
  return { [BOOLS]: a };
}

/** The Python object `module.name`. */
export function pyGlobal(module: string, name: string): PyGlobal {
  return { [GLOBAL]: [module, name] };
}

/** The call `fn(*args)`. */
export function pyCall(fn: PyGlobal, args: PyValue[]): PyCall {
  return { [CALL]: [fn, args] };
}

/** A persistent id whose value is `id` (unpicklers resolve it with `persistent_load`). */
export function pyPersistent(id: PyValue): PyPersistent {
  return { [PERSISTENT]: id };
}

/** A `collections.OrderedDict` of `entries`. */
export function pyOrderedDict(entries: [string, PyValue][]): PyOrderedDict {
  return { [ORDERED]: entries };
}

/** numpy dtype string (without byte order) and byte-order character of a typed array. */
function isNdArray(v: object): v is NdArray {
  return "data" in v && "shape" in v && ArrayBuffer.isView((v as NdArray).data) &&
    Array.isArray((v as NdArray).shape);
}

/** A growing byte buffer. */
function writer() {
  let buf = new Uint8Array(1024);
  let n = 0;
  const reserve = (k: number) => {
    if (n + k <= buf.length) return;
    const next = new Uint8Array(Math.max(buf.length * 2, n + k));
    next.set(buf.subarray(0, n));
    buf = next;
  };
  const byte = (...bs: number[]) => {
    reserve(bs.length);
    for (const b of bs) buf[n++] = b;
  };
  return {
    byte,
    bytes(b: Uint8Array) {
      reserve(b.length);
      buf.set(b, n);
      n += b.length;
    },
    u32(x: number) {
      byte(x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, (x >>> 24) & 0xff);
    },
    result: () => buf.slice(0, n),
  };
}
type Writer = ReturnType<typeof writer>;

const enc = new TextEncoder();
const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  BUILD: 0x62,
  NONE: 0x4e,
  TRUE: 0x88,
  FALSE: 0x89,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  EMPTY_LIST: 0x5d,
  APPENDS: 0x65,
  EMPTY_DICT: 0x7d,
  SETITEMS: 0x75,
  BINPERSID: 0x51,
};

function writeInt(w: Writer, x: number) {
  if (x >= 0 && x < 256) return w.byte(OP.BININT1, x);
  if (x >= 0 && x < 65536) return w.byte(OP.BININT2, x & 0xff, x >> 8);
  if (x >= -(2 ** 31) && x < 2 ** 31) return w.byte(OP.BININT), w.u32(x >>> 0);
  // LONG1: little-endian two's complement, as few bytes as keep the sign
  let v = BigInt(x);
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0xffn);
    out.push(b);
    v >>= 8n;
    if ((v === 0n && !(b & 0x80)) || (v === -1n && b & 0x80)) break;
  }
  w.byte(OP.LONG1, out.length, ...out);
}

function writeFloat(w: Writer, x: number) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, x); // big endian, as pickle wants
  w.byte(OP.BINFLOAT);
  w.bytes(b);
}

function writeStr(w: Writer, s: string) {
  const b = enc.encode(s);
  w.byte(OP.BINUNICODE);
  w.u32(b.length);
  w.bytes(b);
}

function writeGlobal(w: Writer, module: string, name: string) {
  w.byte(OP.GLOBAL);
  w.bytes(enc.encode(`${module}\n${name}\n`));
}

function writeTuple(w: Writer, items: (() => void)[]) {
  if (items.length === 0) return w.byte(OP.EMPTY_TUPLE);
  if (items.length > 3) w.byte(OP.MARK);
  for (const f of items) f();
  w.byte([0, OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][items.length] ?? OP.TUPLE);
}

/** `numpy.dtype(code)` with its BUILD state, as numpy pickles dtypes. */
function writeDtype(w: Writer, code: string, order: string, flags: number) {
  writeGlobal(w, "numpy", "dtype");
  writeTuple(w, [() => writeStr(w, code), () => w.byte(OP.FALSE), () => w.byte(OP.TRUE)]);
  w.byte(OP.REDUCE);
  w.byte(OP.MARK);
  writeInt(w, 3);
  writeStr(w, order);
  w.byte(OP.NONE, OP.NONE, OP.NONE);
  writeInt(w, -1);
  writeInt(w, -1);
  writeInt(w, flags);
  w.byte(OP.TUPLE, OP.BUILD);
}

/** An ndarray: `_reconstruct(ndarray, (0,), b'b')` then BUILD with (1, shape, dtype, False, data). */
function writeArrayHead(w: Writer, shape: number[]) {
  writeGlobal(w, "numpy.core.multiarray", "_reconstruct");
  writeGlobal(w, "numpy", "ndarray");
  writeTuple(w, [() => writeInt(w, 0)]);
  w.byte(OP.SHORT_BINBYTES, 1, 0x62);
  w.byte(OP.TUPLE3, OP.REDUCE);
  w.byte(OP.MARK);
  writeInt(w, 1);
  writeTuple(w, shape.map((d) => () => writeInt(w, d)));
}

function writeNdArray(w: Writer, a: NdArray, bool = false) {
  const descr = descrOf(a.data);
  const [code, order] = bool ? ["b1", "|"] : [descr.slice(1), descr[0]];
  writeArrayHead(w, a.shape);
  writeDtype(w, code, order, 0);
  w.byte(OP.FALSE);
  w.byte(OP.BINBYTES);
  w.u32(a.data.byteLength);
  w.bytes(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
  w.byte(OP.TUPLE, OP.BUILD);
}

function writeValue(w: Writer, v: PyValue, path: string): void {
  if (v === null) return w.byte(OP.NONE);
  if (typeof v === "boolean") return w.byte(v ? OP.TRUE : OP.FALSE);
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return writeInt(w, v);
    return writeFloat(w, v);
  }
  if (typeof v === "string") return writeStr(w, v);
  if (Array.isArray(v)) {
    w.byte(OP.EMPTY_LIST);
    if (v.length === 0) return;
    w.byte(OP.MARK);
    v.forEach((x, i) => writeValue(w, x, `${path}[${i}]`));
    return w.byte(OP.APPENDS);
  }
  if (typeof v === "object") {
    if (FLOAT in v) return writeFloat(w, v[FLOAT]);
    if (TUPLE in v) {
      return writeTuple(
        w,
        v[TUPLE].map((x, i) => () => writeValue(w, x, `${path}(${i})`)),
      );
    }
    if (BOOLS in v) return writeNdArray(w, v[BOOLS], true);
    if (GLOBAL in v) return writeGlobal(w, ...v[GLOBAL]);
    if (CALL in v) {
      const [fn, args] = v[CALL];
      writeGlobal(w, ...fn[GLOBAL]);
      writeTuple(w, args.map((x, i) => () => writeValue(w, x, `${path}(${i})`)));
      return w.byte(OP.REDUCE);
    }
    if (PERSISTENT in v) {
      writeValue(w, v[PERSISTENT], `${path}<persistent>`);
      return w.byte(OP.BINPERSID);
    }
    if (ORDERED in v) {
      writeGlobal(w, "collections", "OrderedDict");
      w.byte(OP.EMPTY_TUPLE, OP.REDUCE);
      if (v[ORDERED].length === 0) return;
      w.byte(OP.MARK);
      for (const [k, x] of v[ORDERED]) {
        writeStr(w, k);
        writeValue(w, x, `${path}.${k}`);
      }
      return w.byte(OP.SETITEMS);
    }
    if (isNdArray(v)) return writeNdArray(w, v);
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    w.byte(OP.EMPTY_DICT);
    if (entries.length === 0) return;
    w.byte(OP.MARK);
    for (const [k, x] of entries) {
      writeStr(w, k);
      writeValue(w, x, `${path}.${k}`);
    }
    return w.byte(OP.SETITEMS);
  }
  throw new CellposeError("BAD_VALUE", `cannot pickle ${typeof v} at ${path || "top level"}`, v);
}

/** Pickles one value (protocol 3). */
export function pickleDumps(value: PyValue): Uint8Array {
  const w = writer();
  w.byte(0x80, 3);
  writeValue(w, value, "");
  w.byte(OP.STOP);
  return w.result();
}

/**
 * Pickles `value` as the 0-d object array `np.save(path, value)` writes for a non-array value:
 * `np.load(path, allow_pickle=True).item()` gives it back.
 */
export function pickleObjectArray(value: PyValue): Uint8Array {
  const w = writer();
  w.byte(0x80, 3);
  writeArrayHead(w, []);
  writeDtype(w, "O8", "|", 63);
  w.byte(OP.FALSE);
  w.byte(OP.EMPTY_LIST, OP.MARK);
  writeValue(w, value, "");
  w.byte(OP.APPENDS);
  w.byte(OP.TUPLE, OP.BUILD, OP.STOP);
  return w.result();
}
