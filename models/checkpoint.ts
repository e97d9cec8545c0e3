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
  /** elements, as the persistent id declares them */
  numel: number;
}

interface TensorRef {
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

/** The largest `data.pkl` read: cpsam's is ~30 KB; the tensors' bytes are not in it. */
const MAX_PICKLE_BYTES = 64 * 2 ** 20;

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
    !("dtype" in pid[1]) || typeof pid[2] !== "string" || !Number.isSafeInteger(pid[4]) ||
    (pid[4] as number) < 0
  ) {
    throw new CellposeError(
      "BAD_FILE",
      "checkpoint has an unknown persistent id (not ('storage', type, key, location, numel))",
      Array.isArray(pid) ? String(pid[0]).slice(0, 40) : typeof pid,
    );
  }
  return { dtype: (pid[1] as { dtype: Dtype }).dtype, key: pid[2], numel: pid[4] as number };
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

/**
 * The tensor's elements in C order (a view when it is a contiguous run of the storage). Checked
 * before anything is allocated: no negative size or stride, no more elements than its storage
 * (a zero stride would let a 4-byte storage claim 12000 x 12000), every element inside it;
 * `willCopy` is told the elements of a strided view before they are copied.
 */
function materialize(
  t: TensorRef,
  storage: Float32Array,
  key: string,
  willCopy: (elements: number) => void,
): NdArray<Float32Array> {
  if (t.shape.length !== t.stride.length || [...t.shape, ...t.stride].some((d) => d < 0)) {
    throw new CellposeError(
      "BAD_FILE",
      `tensor ${key} has shape [${t.shape.slice(0, 8)}] and stride [${t.stride.slice(0, 8)}]: ` +
        "both must be lists of the same length of sizes >= 0",
      key,
    );
  }
  const n = size(t.shape);
  if (n > storage.length) {
    throw new CellposeError(
      "BAD_FILE",
      `tensor ${key} has ${n} elements (shape [${t.shape.slice(0, 8)}]), more than the ` +
        `${storage.length} of its storage`,
      key,
    );
  }
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
  willCopy(n);
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
      [...index.keys()].slice(0, 5),
    );
  }
  const pklEntry = index.get(pkl)!;
  if (pklEntry.size > MAX_PICKLE_BYTES) {
    throw new CellposeError(
      "BAD_FILE",
      `${pkl} declares ${pklEntry.size} bytes; a state dict's pickle is far below the limit ` +
        `of ${MAX_PICKLE_BYTES}`,
      pklEntry.size,
    );
  }
  const prefix = pkl.slice(0, pkl.length - "data.pkl".length);
  const root = readPickle(readZipEntry(src, pklEntry), { findClass, persistentLoad });
  if (!(root instanceof Map)) {
    throw new CellposeError(
      "BAD_MODEL",
      "checkpoint does not hold a state dict (a dict)",
      Array.isArray(root) ? "list" : typeof root,
    );
  }
  const storages = new Map<string, Float32Array>();
  const storageOf = (ref: StorageRef): Float32Array => {
    let s = storages.get(ref.key);
    if (!s) {
      const entry: ZipEntry | undefined = index.get(`${prefix}data/${ref.key}`);
      if (!entry) {
        throw new CellposeError("BAD_FILE", `checkpoint lacks storage data/${ref.key}`, ref.key);
      }
      const bytes = ref.numel * ITEM_BYTES[ref.dtype];
      if (entry.size !== bytes) {
        throw new CellposeError(
          "BAD_FILE",
          `storage data/${ref.key} holds ${entry.size} bytes, but the pickle declares ` +
            `${ref.numel} ${ref.dtype} elements (${bytes} bytes)`,
          ref.key,
        );
      }
      s = toFloat32(readZipEntry(src, entry), ref.dtype);
      storages.set(ref.key, s);
    }
    return s;
  };
  const sd: StateDict = new Map();
  // strided views are copied: all of them together may not pass the file's own size
  let copied = 0;
  for (const [k, v] of root) {
    if (typeof k !== "string" || !isTensorRef(v)) continue;
    const name = k.startsWith("module.") ? k.slice("module.".length) : k;
    const t = materialize(v, storageOf(v.storage), name, (n) => {
      copied += 4 * n;
      if (copied > 4 * src.size + 2 ** 20) {
        throw new CellposeError(
          "BAD_FILE",
          `strided tensors up to ${name} copy ${copied} bytes, more than 4 x the file's ` +
            `${src.size}`,
          name,
        );
      }
    });
    sd.set(name, t);
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
  return asModelError(() => readFromSource(bytesSource(bytes)), "checkpoint");
}

/**
 * Runs `read`; any failure (a CellposeError of another code, or a RangeError of a hostile
 * file) becomes `BAD_MODEL` naming `name`, with the first error as the cause: the CLI exits 3.
 */
function asModelError<T>(read: () => T, name: string): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof CellposeError && e.code === "BAD_MODEL") throw e;
    const why = e instanceof CellposeError
      ? e.message
      : `${(e as Error)?.name}: ${(e as Error)?.message ?? e}`;
    throw new CellposeError(
      "BAD_MODEL",
      `${name} is not a readable torch.save state dict: ${why.slice(0, 300)}`,
      e instanceof CellposeError ? e.code : (e as Error)?.name,
      { cause: e },
    );
  }
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
  const file = await Deno.open(path, { read: true }).catch((e) => {
    throw new CellposeError("MODEL_NOT_FOUND", `cannot open ${path} (${e.message})`, path, {
      cause: e,
    });
  });
  try {
    return asModelError(() => readFromSource(fileSource(file)), path);
  } finally {
    file.close();
  }
}
