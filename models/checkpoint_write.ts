/**
 * Writes a state dict as `torch.save` does (the zip layout PyTorch has used since 1.6): an
 * uncompressed zip holding `archive/data.pkl` (an `OrderedDict` of
 * `torch._utils._rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict())`, each
 * storage a persistent id `("storage", torch.FloatStorage, key, "cpu", numel)`),
 * `archive/data/<key>` (the little-endian elements), `archive/byteorder` and `archive/version`;
 * record data aligned to 64 bytes as PyTorch aligns it. cellpose, PyTorch (`torch.load`, also
 * with `weights_only=True`) and {@link readCheckpointFile} read it. Tensors are written
 * contiguous, in float32 or float16 (`HalfStorage`), in the state dict's key order. The file is
 * written under a temporary name and renamed, so a crash never leaves half a model.
 *
 * @example
 * ```ts
 * import { writeCheckpoint } from "./checkpoint_write.ts";
 * import { readCheckpointFile } from "./checkpoint.ts";
 * const sd = new Map([["w", { data: new Float32Array([1, 2, 3, 4]), shape: [2, 2] }]]);
 * const path = await Deno.makeTempFile({ suffix: ".pt" });
 * await writeCheckpoint(sd, path);
 * const back = await readCheckpointFile(path);
 * if (back.get("w")!.data[3] !== 4) throw new Error("not read back");
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import { writeAll } from "../core/fs.ts";
import {
  pickleDumps,
  pyCall,
  pyGlobal,
  pyOrderedDict,
  pyPersistent,
  pyTuple,
  type PyValue,
} from "../io/pickle_write.ts";
import type { StateDict } from "./checkpoint.ts";

/** Options of {@link writeCheckpoint}. */
export interface WriteCheckpointOptions {
  /** storage precision (default `fp32`; `fp16` halves the file) */
  precision?: "fp32" | "fp16";
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const ALIGN = 64;
const enc = new TextEncoder();

interface Entry {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

/** A STORE-only zip written sequentially to a file. */
class ZipWriter {
  private at = 0;
  private readonly entries: Entry[] = [];
  constructor(private readonly file: Deno.FsFile) {}

  private async write(b: Uint8Array) {
    await writeAll(this.file, b);
    this.at += b.length;
  }

  async add(name: string, data: Uint8Array) {
    const nb = enc.encode(name);
    if (this.at + data.length > 0xffffffff - 1024) {
      throw new CellposeError("TOO_LARGE", "checkpoints past 4 GB are not written", name);
    }
    // pad the extra field ("FB" + 'Z's) so that the data starts on a 64-byte boundary
    const headerEnd = this.at + 30 + nb.length;
    let pad = (ALIGN - ((headerEnd + 4) % ALIGN)) % ALIGN;
    const extra = new Uint8Array(4 + pad);
    extra.set([0x46, 0x42, pad & 0xff, pad >> 8]);
    extra.fill(0x5a, 4);
    pad = extra.length;
    const crc = crc32(data);
    const h = new DataView(new ArrayBuffer(30));
    h.setUint32(0, 0x04034b50, true);
    h.setUint16(4, 20, true); // version needed
    h.setUint16(6, 0x0800, true); // UTF-8 names
    h.setUint16(8, 0, true); // stored
    h.setUint32(14, crc, true);
    h.setUint32(18, data.length, true);
    h.setUint32(22, data.length, true);
    h.setUint16(26, nb.length, true);
    h.setUint16(28, extra.length, true);
    this.entries.push({ name: nb, crc, size: data.length, offset: this.at });
    await this.write(new Uint8Array(h.buffer));
    await this.write(nb);
    await this.write(extra);
    await this.write(data);
  }

  async finish() {
    const start = this.at;
    for (const e of this.entries) {
      const c = new DataView(new ArrayBuffer(46));
      c.setUint32(0, 0x02014b50, true);
      c.setUint16(4, 20, true);
      c.setUint16(6, 20, true);
      c.setUint16(8, 0x0800, true);
      c.setUint32(16, e.crc, true);
      c.setUint32(20, e.size, true);
      c.setUint32(24, e.size, true);
      c.setUint16(28, e.name.length, true);
      c.setUint32(42, e.offset, true);
      await this.write(new Uint8Array(c.buffer));
      await this.write(e.name);
    }
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    end.setUint16(8, this.entries.length, true);
    end.setUint16(10, this.entries.length, true);
    end.setUint32(12, this.at - start, true);
    end.setUint32(16, start, true);
    await this.write(new Uint8Array(end.buffer));
  }
}

function strides(shape: readonly number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/**
 * Writes `sd` to `path` as `torch.save(state_dict, path)` would (see the module doc). Throws
 * `BAD_FILE` naming the path when it cannot be written (a full disk included); nothing is left
 * at `path` then.
 */
export async function writeCheckpoint(
  sd: StateDict,
  path: string,
  opts: WriteCheckpointOptions = {},
): Promise<void> {
  const half = opts.precision === "fp16";
  const storage = pyGlobal("torch", half ? "HalfStorage" : "FloatStorage");
  const entries: [string, PyValue][] = [];
  let key = 0;
  for (const [name, t] of sd) {
    entries.push([
      name,
      pyCall(pyGlobal("torch._utils", "_rebuild_tensor_v2"), [
        pyPersistent(pyTuple(["storage", storage, String(key++), "cpu", t.data.length])),
        0,
        pyTuple(t.shape),
        pyTuple(strides(t.shape)),
        false,
        pyOrderedDict([]),
      ]),
    ]);
  }
  const tmp = join(dirname(path), `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.part`);
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    const zip = new ZipWriter(file);
    await zip.add("archive/data.pkl", pickleDumps(pyOrderedDict(entries)));
    await zip.add("archive/byteorder", enc.encode("little"));
    key = 0;
    for (const t of sd.values()) {
      const data = half ? new Float16Array(t.data) : t.data;
      await zip.add(
        `archive/data/${key++}`,
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      );
    }
    await zip.add("archive/version", enc.encode("3\n"));
    await zip.finish();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    file?.close();
    await Deno.remove(tmp).catch(() => {});
    if (e instanceof CellposeError) throw e;
    throw new CellposeError(
      "BAD_FILE",
      `cannot write the model to ${path}: ${(e as Error).message}`,
      path,
      { cause: e },
    );
  }
}
