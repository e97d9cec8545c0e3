/**
 * Reads a PyTorch checkpoint (`torch.save` zip of a state dict) without Python: the pickle in
 * `<name>/data.pkl` describes each tensor (`_rebuild_tensor_v2(storage, offset, size, stride,
 * ...)`), and the storages are raw little-endian arrays at `<name>/data/<key>`. Every tensor is
 * returned as float32 (half and bfloat16 widened); a `module.` key prefix (DataParallel) is
 * removed. Storages are read one at a time, so a file checkpoint costs about its own size in
 * memory.
 *
 * @example
 * ```ts
 * import { readCheckpointFile } from "./checkpoint.ts";
 * const sd = await readCheckpointFile("../shared/fixtures/tiny-cpsam.pt");
 * console.log(sd.get("encoder.pos_embed")!.shape); // [1, 32, 32, 64]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { type NdArray, size, strides } from "../core/ndarray.ts";
import { readPickle } from "./pickle.ts";
import {
  type ByteSource,
  bytesSource,
  fileSource,
  readZipEntry,
  readZipIndex,
  type ZipEntry,
} from "./zip_reader.ts";

/** Parameter name -> float32 tensor, in checkpoint order. */
export type StateDict = Map<string, NdArray<Float32Array>>;

type Dtype = "f64" | "f32" | "f16" | "bf16" | "i64" | "i32" | "i16" | "i8" | "u8" | "bool";

const STORAGE_TYPES: Record<string, Dtype> = {
  DoubleStorage: "f64",
  FloatStorage: "f32",
  HalfStorage: "f16",
  BFloat16Storage: "bf16",
  LongStorage: "i64",
  IntStorage: "i32",
  ShortStorage: "i16",
  CharStorage: "i8",
  ByteStorage: "u8",
  BoolStorage: "bool",
};

const ITEM_BYTES: Record<Dtype, number> = {
  f64: 8,
  f32: 4,
  f16: 2,
  bf16: 2,
  i64: 8,
  i32: 4,
  i16: 2,
  i8: 1,
  u8: 1,
  bool: 1,
};

interface StorageRef {
  dtype: Dtype;
  key: string;
}

interface TensorRef {
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

const isTensorRef = (v: unknown): v is TensorRef =>
  typeof v === "object" && v !== null && "storage" in v && "stride" in v;

function rebuildTensor(storage: unknown, offset: unknown, shape: unknown, stride: unknown) {
  const ints = (v: unknown) => Array.isArray(v) && v.every((x) => Number.isInteger(x));
  if (
    typeof storage !== "object" || storage === null || !("dtype" in storage) ||
    !Number.isInteger(offset) || !ints(shape) || !ints(stride)
  ) {
    throw new CellposeError(
      "BAD_FILE",
      "checkpoint has a malformed _rebuild_tensor_v2 call",
      shape,
    );
  }
  return {
    storage: storage as StorageRef,
    offset: offset as number,
    shape: shape as number[],
    stride: stride as number[],
  };
}

function findClass(module: string, name: string): unknown {
  const qual = `${module}.${name}`;
  if (qual === "collections.OrderedDict") return () => new Map();
  if (qual === "torch._utils._rebuild_tensor_v2") return rebuildTensor;
  if (qual === "torch._utils._rebuild_parameter") return (t: unknown) => t;
  if (module === "torch" && name in STORAGE_TYPES) return { dtype: STORAGE_TYPES[name] };
  throw new CellposeError(
    "BAD_MODEL",
    `checkpoint refers to ${qual}, which a plain state dict of float tensors does not use`,
    qual,
  );
}

function persistentLoad(pid: unknown): StorageRef {
  if (
    !Array.isArray(pid) || pid[0] !== "storage" || typeof pid[1] !== "object" || !pid[1] ||
    !("dtype" in pid[1]) || typeof pid[2] !== "string"
  ) {
    throw new CellposeError("BAD_FILE", `checkpoint has an unknown persistent id`, pid);
  }
  return { dtype: (pid[1] as { dtype: Dtype }).dtype, key: pid[2] };
}

/** Widens raw little-endian storage bytes to float32. */
function toFloat32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  const n = bytes.length / ITEM_BYTES[dtype];
  const aligned = bytes.byteOffset % ITEM_BYTES[dtype] === 0 ? bytes : bytes.slice();
  const buf = aligned.buffer;
  const off = aligned.byteOffset;
  switch (dtype) {
    case "f32":
      return new Float32Array(buf, off, n);
    case "f64":
      return Float32Array.from(new Float64Array(buf, off, n));
    case "f16":
      return Float32Array.from(new Float16Array(buf, off, n));
    case "bf16": {
      const out = new Uint32Array(n);
      const src = new Uint16Array(buf, off, n);
      for (let i = 0; i < n; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    case "i64":
      return Float32Array.from(new BigInt64Array(buf, off, n), Number);
    case "i32":
      return Float32Array.from(new Int32Array(buf, off, n));
    case "i16":
      return Float32Array.from(new Int16Array(buf, off, n));
    case "i8":
      return Float32Array.from(new Int8Array(buf, off, n));
    default:
      return Float32Array.from(aligned);
  }
}

/** The tensor's elements in C order (a view when it is a contiguous run of the storage). */
function materialize(t: TensorRef, storage: Float32Array, key: string): NdArray<Float32Array> {
  const n = size(t.shape);
  const contiguous = t.shape.every((d, i) => d === 1 || t.stride[i] === strides(t.shape)[i]);
  let last = t.offset;
  for (let i = 0; i < t.shape.length; i++) {
    if (t.shape[i] > 0) last += (t.shape[i] - 1) * t.stride[i];
  }
  if (n > 0 && (t.offset < 0 || last >= storage.length)) {
    throw new CellposeError(
      "BAD_FILE",
      `tensor ${key} reads past its storage (${storage.length} elements): checkpoint truncated?`,
      key,
    );
  }
  if (contiguous) return { data: storage.subarray(t.offset, t.offset + n), shape: t.shape };
  const out = new Float32Array(n);
  const idx = new Array(t.shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = t.offset;
    for (let d = 0; d < idx.length; d++) src += idx[d] * t.stride[d];
    out[i] = storage[src];
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d] < t.shape[d]) break;
      idx[d] = 0;
    }
  }
  return { data: out, shape: t.shape };
}

function readFromSource(src: ByteSource): StateDict {
  if (src.size >= 2 && src.read(0, 2)[0] === 0x80) {
    throw new CellposeError(
      "UNSUPPORTED",
      "checkpoint uses the legacy (pre-1.6) torch.save format; re-save it with a current PyTorch",
      "legacy",
    );
  }
  const index = readZipIndex(src);
  const pkl = [...index.keys()].find((n) => n === "data.pkl" || n.endsWith("/data.pkl"));
  if (!pkl) {
    throw new CellposeError(
      "BAD_FILE",
      `zip has no data.pkl (entries: ${
        [...index.keys()].slice(0, 5).join(", ")
      }): not a torch.save file`,
      [...index.keys()],
    );
  }
  const prefix = pkl.slice(0, pkl.length - "data.pkl".length);
  const root = readPickle(readZipEntry(src, index.get(pkl)!), { findClass, persistentLoad });
  if (!(root instanceof Map)) {
    throw new CellposeError("BAD_MODEL", "checkpoint does not hold a state dict (a dict)", root);
  }
  const storages = new Map<string, Float32Array>();
  const storageOf = (ref: StorageRef): Float32Array => {
    let s = storages.get(ref.key);
    if (!s) {
      const entry: ZipEntry | undefined = index.get(`${prefix}data/${ref.key}`);
      if (!entry) {
        throw new CellposeError("BAD_FILE", `checkpoint lacks storage data/${ref.key}`, ref.key);
      }
      s = toFloat32(readZipEntry(src, entry), ref.dtype);
      storages.set(ref.key, s);
    }
    return s;
  };
  const sd: StateDict = new Map();
  for (const [k, v] of root) {
    if (typeof k !== "string" || !isTensorRef(v)) continue;
    const name = k.startsWith("module.") ? k.slice("module.".length) : k;
    sd.set(name, materialize(v, storageOf(v.storage), name));
  }
  return sd;
}

/**
 * Reads a `torch.save` state dict held in memory. Tensors may be views into `bytes`.
 *
 * @example
 * ```ts
 * import { readCheckpoint } from "./checkpoint.ts";
 * const sd = readCheckpoint(await Deno.readFile("../shared/fixtures/tiny-cpsam.pt"));
 * console.log(sd.size); // 42
 * ```
 */
export function readCheckpoint(bytes: Uint8Array): StateDict {
  return readFromSource(bytesSource(bytes));
}

/**
 * Reads a `torch.save` state dict from a file, one storage at a time (no second copy of the
 * archive in memory).
 *
 * @example
 * ```ts
 * import { readCheckpointFile } from "./checkpoint.ts";
 * const sd = await readCheckpointFile("../shared/fixtures/tiny-cpsam.pt");
 * console.log(sd.get("out.weight")!.shape); // [192, 256, 1, 1]
 * ```
 */
export async function readCheckpointFile(path: string): Promise<StateDict> {
  const file = await Deno.open(path, { read: true });
  try {
    return readFromSource(fileSource(file));
  } finally {
    file.close();
  }
}
