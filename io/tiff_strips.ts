/**
 * A streaming TIFF writer: a 2-D single-sample image written to a file strip by strip as its rows
 * arrive, so that an image larger than memory never exists in one piece. Rows are grouped into
 * strips of about 64 KiB (optionally Deflate-compressed) and written at once; the IFD goes after
 * the pixel data when the writer is closed, and the header is then pointed at it. Tags, sample
 * formats and strip sizing are those of {@link encodeTiff} (io/tiff_write.ts), so both writers
 * produce the same kind of file; little endian, classic TIFF, or BigTIFF (64-bit offsets) when
 * the image may pass 4 GiB (its raw size, with a margin for Deflate's worst case) or when asked.
 *
 * @example
 * ```ts
 * import { TiffStripWriter } from "./tiff_strips.ts";
 * const w = await TiffStripWriter.create("/tmp/labels.tif", 1000, 3, Uint16Array);
 * for (let y = 0; y < 3; y++) await w.write(new Uint16Array(1000).fill(y));
 * await w.close();
 * ```
 * @module
 */
import { zlibSync } from "fflate";
import { CellposeError } from "../core/errors.ts";
import type { NumericArray } from "../core/ndarray.ts";
import { writeAll } from "../core/fs.ts";
import { LONG, sampleInfo, SHORT, STRIP_BYTES, T } from "./tiff_write.ts";

/** TIFF type LONG8 (BigTIFF's 8-byte unsigned integer). */
const LONG8 = 16;

/** A typed-array constructor for the pixel type of the file. */
export type SampleType = { new (n: number): NumericArray; readonly BYTES_PER_ELEMENT: number };

/** Options of {@link TiffStripWriter.create}. */
export interface StripWriterOptions {
  /** ["none"] `deflate`: zlib-compressed strips (TIFF compression 8) */
  compression?: "none" | "deflate";
  /** ["auto"] BigTIFF: `auto` when the pixels (raw, plus 1 %) may reach 4 GiB */
  bigTiff?: boolean | "auto";
}

/** Whether an image of `bytes` raw pixel bytes is written as BigTIFF under {@link StripWriterOptions.bigTiff} `auto`. */
export function needsBigTiff(bytes: number): boolean {
  return bytes * 1.01 + (1 << 20) >= 2 ** 32;
}

/**
 * Writes a `width` x `height` TIFF row by row (see the module doc). Call {@link write} with whole
 * rows in order, then {@link close}; rows must add up to `height` exactly.
 */
export class TiffStripWriter {
  /** image width in pixels */
  readonly width: number;
  /** image height in pixels */
  readonly height: number;
  /** rows in each strip */
  readonly rowsPerStrip: number;
  #file: Deno.FsFile;
  #type: SampleType;
  #deflate: boolean;
  #big: boolean;
  #pending: Uint8Array;
  #pendingRows = 0;
  #rowsDone = 0;
  #pos: number;
  #offsets: number[] = [];
  #counts: number[] = [];

  private constructor(
    file: Deno.FsFile,
    width: number,
    height: number,
    type: SampleType,
    deflate: boolean,
    big: boolean,
  ) {
    this.#file = file;
    this.#big = big;
    this.#pos = big ? 16 : 8;
    this.width = width;
    this.height = height;
    this.#type = type;
    this.#deflate = deflate;
    const rowBytes = width * type.BYTES_PER_ELEMENT;
    this.rowsPerStrip = Math.max(1, Math.min(height, Math.floor(STRIP_BYTES / rowBytes)));
    this.#pending = new Uint8Array(this.rowsPerStrip * rowBytes);
  }

  /**
   * Creates (or truncates) `path` for a `width` x `height` image of `type` pixels (e.g.
   * `Uint16Array`). Throws BAD_SHAPE for an empty or non-integer size.
   *
   * @example
   * ```ts
   * import { TiffStripWriter } from "./tiff_strips.ts";
   * const w = await TiffStripWriter.create("/tmp/big.tif", 20000, 20000, Uint32Array, {
   *   compression: "deflate",
   * });
   * console.log(w.rowsPerStrip); // 1: 80000-byte rows, one per strip
   * w.abort();
   * ```
   */
  static async create(
    path: string,
    width: number,
    height: number,
    type: SampleType,
    options: StripWriterOptions = {},
  ): Promise<TiffStripWriter> {
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
      throw new CellposeError(
        "BAD_SHAPE",
        `TIFF image must be a positive integer size, got ${width} x ${height}`,
        [height, width],
      );
    }
    const big = options.bigTiff === true ||
      ((options.bigTiff ?? "auto") === "auto" &&
        needsBigTiff(width * height * type.BYTES_PER_ELEMENT));
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    // BigTIFF: version 43, 8-byte offsets, the first IFD's offset (8 bytes) filled in on close
    const head = big ? [0x49, 0x49, 43, 0, 8, 0, 0, 0, ...new Array(8).fill(0)] : [
      0x49,
      0x49,
      42,
      0,
      0,
      0,
      0,
      0,
    ];
    await writeAll(file, new Uint8Array(head));
    return new TiffStripWriter(
      file,
      width,
      height,
      type,
      options.compression === "deflate",
      big,
    );
  }

  /** Rows written so far. */
  get rowsWritten(): number {
    return this.#rowsDone + this.#pendingRows;
  }

  /**
   * Appends whole rows (`rows.length` a multiple of `width`, same element type as the file).
   * Throws BAD_SHAPE for a partial row or rows past `height`, BAD_DTYPE for another type.
   */
  async write(rows: NumericArray): Promise<void> {
    if (!(rows instanceof this.#type)) {
      throw new CellposeError(
        "BAD_DTYPE",
        `rows must be a ${this.#type.name} like the file, got ${rows.constructor.name}`,
        rows.constructor.name,
      );
    }
    const n = rows.length / this.width;
    if (!Number.isInteger(n) || this.rowsWritten + n > this.height) {
      throw new CellposeError(
        "BAD_SHAPE",
        `got ${rows.length} values: whole rows of ${this.width} are expected, at most ` +
          `${this.height - this.rowsWritten} more`,
        rows.length,
      );
    }
    const bytes = new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength);
    const rowBytes = this.width * this.#type.BYTES_PER_ELEMENT;
    const out: Uint8Array[] = [];
    let at = 0;
    while (at < bytes.length) {
      const take = Math.min(bytes.length - at, this.#pending.length - this.#pendingRows * rowBytes);
      this.#pending.set(bytes.subarray(at, at + take), this.#pendingRows * rowBytes);
      this.#pendingRows += take / rowBytes;
      at += take;
      if (this.#pendingRows === this.rowsPerStrip || this.rowsWritten === this.height) {
        out.push(this.#strip());
      }
    }
    if (out.length) await this.#append(out);
  }

  /** The pending rows as one strip (compressed when asked); resets the pending buffer. */
  #strip(): Uint8Array {
    const raw = this.#pending.subarray(
      0,
      this.#pendingRows * this.width * this.#type.BYTES_PER_ELEMENT,
    );
    const strip = this.#deflate ? zlibSync(raw, { level: 6 }) : raw.slice();
    this.#rowsDone += this.#pendingRows;
    this.#pendingRows = 0;
    return strip;
  }

  async #append(strips: Uint8Array[]): Promise<void> {
    let total = 0;
    for (const s of strips) total += s.length;
    if (!this.#big && this.#pos + total >= 2 ** 32) {
      throw new CellposeError(
        "UNSUPPORTED",
        "TIFF passed 4 GiB (strips larger than their raw size): create it with bigTiff: true",
        this.#pos + total,
      );
    }
    const buf = new Uint8Array(total);
    let at = 0;
    for (const s of strips) {
      buf.set(s, at);
      this.#offsets.push(this.#pos + at);
      this.#counts.push(s.length);
      at += s.length;
    }
    await writeAll(this.#file, buf);
    this.#pos += total;
  }

  /** Writes the IFD after the last strip and closes the file. Throws BAD_SHAPE if rows are missing. */
  async close(): Promise<void> {
    if (this.rowsWritten !== this.height) {
      this.abort();
      throw new CellposeError(
        "BAD_SHAPE",
        `only ${this.rowsWritten} of ${this.height} rows were written`,
        this.rowsWritten,
      );
    }
    const ifd = this.#pos + (this.#pos % 2);
    const nStrips = this.#offsets.length;
    const entries = 11;
    // classic: 2-byte count, 12-byte entries (4-byte values), 4-byte next offset;
    // BigTIFF: 8-byte count, 20-byte entries (8-byte values), 8-byte next offset
    const big = this.#big, cnt = big ? 8 : 2, size = big ? 20 : 12, word = big ? 8 : 4;
    const extra = ifd + cnt + size * entries + word;
    const tail = new Uint8Array(extra - this.#pos + (nStrips > 1 ? 2 * word * nStrips : 0));
    const v = new DataView(tail.buffer);
    const put = (at: number, x: number) =>
      big ? v.setBigUint64(at, BigInt(x), true) : v.setUint32(at, x, true);
    let e = ifd - this.#pos;
    if (big) v.setBigUint64(e, BigInt(entries), true);
    else v.setUint16(e, entries, true);
    e += cnt;
    let ext = extra;
    const offsetType = big ? LONG8 : LONG;
    const entry = (tag: number, type: number, value: number) => {
      v.setUint16(e, tag, true);
      v.setUint16(e + 2, type, true);
      put(e + 4, 1);
      if (type === SHORT) v.setUint16(e + 4 + word, value, true);
      else if (type === LONG8) v.setBigUint64(e + 4 + word, BigInt(value), true);
      else v.setUint32(e + 4 + word, value, true);
      e += size;
    };
    const offsets = (tag: number, values: number[]) => {
      if (values.length === 1) return entry(tag, offsetType, values[0]);
      v.setUint16(e, tag, true);
      v.setUint16(e + 2, offsetType, true);
      put(e + 4, values.length);
      put(e + 4 + word, ext);
      values.forEach((x, i) => put(ext - this.#pos + word * i, x));
      ext += word * values.length;
      e += size;
    };
    const { bits, format } = sampleInfo(new this.#type(0));
    entry(T.width, LONG, this.width);
    entry(T.height, LONG, this.height);
    entry(T.bits, SHORT, bits);
    entry(T.compression, SHORT, this.#deflate ? 8 : 1);
    entry(T.photometric, SHORT, 1);
    offsets(T.stripOffsets, this.#offsets);
    entry(T.samples, SHORT, 1);
    entry(T.rowsPerStrip, LONG, this.rowsPerStrip);
    offsets(T.stripCounts, this.#counts);
    entry(T.planar, SHORT, 1);
    entry(T.sampleFormat, SHORT, format);
    try {
      await writeAll(this.#file, tail);
      await this.#file.seek(big ? 8 : 4, Deno.SeekMode.Start);
      const head = new Uint8Array(word);
      const h = new DataView(head.buffer);
      if (big) h.setBigUint64(0, BigInt(ifd), true);
      else h.setUint32(0, ifd, true);
      await writeAll(this.#file, head);
    } finally {
      this.#file.close();
    }
  }

  /** Closes the file without finishing it (after an error upstream). */
  abort(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}
