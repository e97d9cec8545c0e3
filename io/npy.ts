/**
 * NumPy `.npy` read and write: format versions 1, 2 and 3, byte orders `<`, `>` and `|`, dtypes
 * bool, u1, i1, u2, i2, u4, i4, i8, u8, f2, f4, f8, C and Fortran order. Arrays are returned in
 * C order whatever order the file used. Object (pickled) arrays and unknown dtypes are rejected
 * with a {@link CellposeError} naming the dtype.
 *
 * @example
 * ```ts
 * import { readNpy, writeNpy } from "./npy.ts";
 * const bytes = writeNpy({ data: new Float32Array([1, 2, 3, 4]), shape: [2, 2] });
 * const back = readNpy(bytes);
 * console.log(back.shape, back.data); // [2, 2] Float32Array [1, 2, 3, 4]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { type NdArray, size, strides, type TypedArray } from "../core/ndarray.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

type Ctor = { new (n: number): TypedArray; BYTES_PER_ELEMENT: number };

interface DtypeInfo {
  ctor: Ctor;
  bytes: number;
  /** reads element i (little or big endian) from a DataView */
  read: (v: DataView, off: number, le: boolean) => number | bigint;
  write: (v: DataView, off: number, x: number | bigint, le: boolean) => void;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const DTYPES: Record<string, DtypeInfo> = {
  b1: {
    ctor: Uint8Array,
    bytes: 1,
    read: (v, o) => (v.getUint8(o) ? 1 : 0),
    write: (v, o, x) => v.setUint8(o, x ? 1 : 0),
  },
  u1: {
    ctor: Uint8Array,
    bytes: 1,
    read: (v, o) => v.getUint8(o),
    write: (v, o, x) => v.setUint8(o, Number(x)),
  },
  i1: {
    ctor: Int8Array,
    bytes: 1,
    read: (v, o) => v.getInt8(o),
    write: (v, o, x) => v.setInt8(o, Number(x)),
  },
  u2: {
    ctor: Uint16Array,
    bytes: 2,
    read: (v, o, le) => v.getUint16(o, le),
    write: (v, o, x, le) => v.setUint16(o, Number(x), le),
  },
  i2: {
    ctor: Int16Array,
    bytes: 2,
    read: (v, o, le) => v.getInt16(o, le),
    write: (v, o, x, le) => v.setInt16(o, Number(x), le),
  },
  u4: {
    ctor: Uint32Array,
    bytes: 4,
    read: (v, o, le) => v.getUint32(o, le),
    write: (v, o, x, le) => v.setUint32(o, Number(x), le),
  },
  i4: {
    ctor: Int32Array,
    bytes: 4,
    read: (v, o, le) => v.getInt32(o, le),
    write: (v, o, x, le) => v.setInt32(o, Number(x), le),
  },
  u8: {
    ctor: BigUint64Array,
    bytes: 8,
    read: (v, o, le) => v.getBigUint64(o, le),
    write: (v, o, x, le) => v.setBigUint64(o, BigInt(x), le),
  },
  i8: {
    ctor: BigInt64Array,
    bytes: 8,
    read: (v, o, le) => v.getBigInt64(o, le),
    write: (v, o, x, le) => v.setBigInt64(o, BigInt(x), le),
  },
  // float16 is widened to float32 on read (JS has no portable half-precision array)
  f2: {
    ctor: Float32Array,
    bytes: 2,
    read: (v, o, le) => halfToFloat(v.getUint16(o, le)),
    write: () => {
      throw new CellposeError("UNSUPPORTED", "writing float16 .npy is not supported", "f2");
    },
  },
  f4: {
    ctor: Float32Array,
    bytes: 4,
    read: (v, o, le) => v.getFloat32(o, le),
    write: (v, o, x, le) => v.setFloat32(o, Number(x), le),
  },
  f8: {
    ctor: Float64Array,
    bytes: 8,
    read: (v, o, le) => v.getFloat64(o, le),
    write: (v, o, x, le) => v.setFloat64(o, Number(x), le),
  },
};

interface Header {
  descr: string;
  fortran: boolean;
  shape: number[];
}

function parseHeader(text: string): Header {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr) {
    // structured dtypes are written as a list: "'descr': [('a', '<i4'), ...]"
    const list = /'descr'\s*:\s*(\[[^\]]*\])/.exec(text);
    throw new CellposeError(
      "BAD_DTYPE",
      `.npy dtype ${list ? list[1] : "(missing)"} is not supported: only plain numeric dtypes`,
      list?.[1],
    );
  }
  if (!fortran || !shape) {
    throw new CellposeError("BAD_FILE", `.npy header is malformed: ${text.trim()}`, text);
  }
  const dims = shape[1].split(",").map((s) => s.trim()).filter((s) => s.length > 0).map((s) =>
    Number(s.replace(/L$/, ""))
  );
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new CellposeError(
      "BAD_FILE",
      `.npy shape (${shape[1]}) is not a tuple of integers`,
      shape[1],
    );
  }
  return { descr: descr[1], fortran: fortran[1] === "True", shape: dims };
}

function dtypeOf(descr: string): { info: DtypeInfo; le: boolean } {
  const order = descr[0];
  let code = descr.slice(1);
  if (!"<>|=".includes(order)) {
    throw new CellposeError("BAD_DTYPE", `.npy dtype '${descr}' is not supported`, descr);
  }
  if (code === "?") code = "b1";
  const info = DTYPES[code];
  if (!info) {
    const what = code.startsWith("O") ? " (object arrays need pickle, which is not supported)" : "";
    throw new CellposeError("BAD_DTYPE", `.npy dtype '${descr}' is not supported${what}`, descr);
  }
  return { info, le: order !== ">" };
}

/** Parses the bytes of a `.npy` file into a C-ordered {@link NdArray}. */
export function readNpy(bytes: Uint8Array): NdArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new CellposeError("BAD_FILE", "not a .npy file (missing \\x93NUMPY magic)", bytes.length);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) {
      throw new CellposeError("BAD_FILE", ".npy file truncated in its header", bytes.length);
    }
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new CellposeError(
      "UNSUPPORTED",
      `.npy format version ${major} is not supported (1, 2, 3 are)`,
      major,
    );
  }
  if (start + headerLen > bytes.length) {
    throw new CellposeError("BAD_FILE", ".npy file truncated in its header", bytes.length);
  }
  const decoder = new TextDecoder(major === 3 ? "utf-8" : "latin1");
  const header = parseHeader(decoder.decode(bytes.subarray(start, start + headerLen)));
  const { info, le } = dtypeOf(header.descr);
  const n = size(header.shape);
  const dataStart = start + headerLen;
  if (bytes.length - dataStart < n * info.bytes) {
    throw new CellposeError(
      "BAD_FILE",
      `.npy data truncated: shape [${header.shape}] of '${header.descr}' needs ${
        n * info.bytes
      } bytes, file has ${bytes.length - dataStart}`,
      bytes.length,
    );
  }
  const out = new info.ctor(n);
  const nativeLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const sameLayout = info.ctor.BYTES_PER_ELEMENT === info.bytes &&
    (le === nativeLE || info.bytes === 1) &&
    header.descr.slice(1) !== "?" && header.descr.slice(1) !== "b1";
  if (sameLayout) {
    new Uint8Array(out.buffer).set(bytes.subarray(dataStart, dataStart + n * info.bytes));
  } else {
    for (let i = 0; i < n; i++) {
      (out as unknown as (number | bigint)[])[i] = info.read(view, dataStart + i * info.bytes, le);
    }
  }
  if (header.fortran && header.shape.length > 1) {
    return { data: fortranToC(out, header.shape), shape: header.shape };
  }
  return { data: out, shape: header.shape };
}

function fortranToC<T extends TypedArray>(src: T, shape: number[]): T {
  const n = src.length;
  const dst = new (src.constructor as { new (n: number): T })(n);
  const fStr = strides([...shape].reverse()).reverse();
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  for (let c = 0; c < n; c++) {
    let f = 0;
    for (let d = 0; d < nd; d++) f += idx[d] * fStr[d];
    (dst as unknown as (number | bigint)[])[c] = (src as unknown as (number | bigint)[])[f];
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return dst;
}

/** The numpy dtype string (`<f4`, `|u1`, ...) of a typed array. */
export function descrOf(data: TypedArray): string {
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return "|u1";
  if (data instanceof Int8Array) return "|i1";
  if (data instanceof Uint16Array) return "<u2";
  if (data instanceof Int16Array) return "<i2";
  if (data instanceof Uint32Array) return "<u4";
  if (data instanceof Int32Array) return "<i4";
  if (data instanceof Float32Array) return "<f4";
  if (data instanceof Float64Array) return "<f8";
  if (data instanceof BigInt64Array) return "<i8";
  return "<u8";
}

/**
 * The magic, version-1 header and padding of a `.npy` holding `descr` (e.g. `<u2`, `|O`) of the
 * given shape in C order; the data follows it.
 */
export function npyHeader(descr: string, shape: number[]): Uint8Array {
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  return out;
}

/**
 * Serialises an {@link NdArray} as a version-1 `.npy` (C order, little endian). Pass
 * `{ bool: true }` to store a 0/1 Uint8Array as numpy `bool`.
 */
export function writeNpy(arr: NdArray, options: { bool?: boolean } = {}): Uint8Array {
  if (arr.data.length !== size(arr.shape)) {
    throw new CellposeError(
      "BAD_SHAPE",
      `data length ${arr.data.length} does not match shape [${arr.shape}]`,
      arr.shape,
    );
  }
  const descr = options.bool ? "|b1" : descrOf(arr.data);
  const head = npyHeader(descr, arr.shape);
  const out = new Uint8Array(head.length + arr.data.byteLength);
  out.set(head, 0);
  const nativeLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const raw = new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
  if (nativeLE) {
    out.set(raw, head.length);
  } else {
    const info = DTYPES[descr.slice(1)];
    const v = new DataView(out.buffer);
    for (let i = 0; i < arr.data.length; i++) {
      info.write(
        v,
        head.length + i * info.bytes,
        (arr.data as unknown as (number | bigint)[])[i],
        true,
      );
    }
  }
  return out;
}

/** Reads a `.npy` file from disk. Errors name the file. */
export async function readNpyFile(path: string): Promise<NdArray> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new CellposeError("BAD_FILE", `cannot read ${path}: ${(e as Error).message}`, path, {
      cause: e,
    });
  }
  try {
    return readNpy(bytes);
  } catch (e) {
    if (e instanceof CellposeError) {
      throw new CellposeError(e.code, `${path}: ${e.message}`, e.value, { cause: e });
    }
    throw e;
  }
}
