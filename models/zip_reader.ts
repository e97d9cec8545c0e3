/**
 * Lazy reading of zip archives: parses the central directory (zip64 included) and reads one
 * entry at a time from a byte array or an open file. Written by hand because fflate's `unzipSync`
 * holds the whole archive and every entry in memory at once, twice the size of a 1.2 GB torch
 * checkpoint; torch stores entries uncompressed, so an entry is a plain byte range. Deflated
 * entries are inflated with fflate.
 *
 * @example
 * ```ts
 * import { zipSync } from "fflate";
 * import { bytesSource, readZipEntry, readZipIndex } from "./zip_reader.ts";
 * const src = bytesSource(zipSync({ "a/b.txt": new TextEncoder().encode("hi") }));
 * const index = readZipIndex(src);
 * console.log(new TextDecoder().decode(readZipEntry(src, index.get("a/b.txt")!))); // "hi"
 * ```
 * @module
 */
import { inflateSync } from "fflate";
import { CellposeError } from "../core/errors.ts";

/** Random access to the bytes of an archive. */
export interface ByteSource {
  /** total size in bytes */
  readonly size: number;
  /** `length` bytes from `offset` (the returned array may be a view; do not write to it) */
  read(offset: number, length: number): Uint8Array;
}

/** Where an entry lies in the archive. */
export interface ZipEntry {
  /** path inside the archive */
  name: string;
  /** 0 stored, 8 deflate */
  method: number;
  /** bytes stored */
  compressedSize: number;
  /** bytes after inflating */
  size: number;
  /** offset of the entry's local header */
  headerOffset: number;
}

/** A source over bytes already in memory (no copies). */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read: (offset, length) => bytes.subarray(offset, offset + length),
  };
}

/** A source over an open file, reading each range into a fresh (4-byte aligned) buffer. */
export function fileSource(file: Deno.FsFile): ByteSource {
  const size = file.statSync().size;
  return {
    size,
    read(offset, length) {
      const out = new Uint8Array(length);
      file.seekSync(offset, Deno.SeekMode.Start);
      let done = 0;
      while (done < length) {
        const n = file.readSync(out.subarray(done));
        if (n === null || n === 0) break;
        done += n;
      }
      return out.subarray(0, done);
    },
  };
}

const notZip = (why: string) =>
  new CellposeError(
    "BAD_FILE",
    `not a zip archive or truncated (${why}); a checkpoint written by torch.save is a zip`,
    why,
  );

function readExact(src: ByteSource, offset: number, length: number, what: string): DataView {
  if (offset < 0 || offset + length > src.size) {
    throw new CellposeError(
      "BAD_FILE",
      `zip is truncated: ${what} needs bytes ${offset}..${offset + length}, file has ${src.size}`,
      src.size,
    );
  }
  const b = src.read(offset, length);
  if (b.length < length) throw notZip(`short read of ${what}`);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

const u64 = (v: DataView, o: number) => Number(v.getBigUint64(o, true));

/** Parses the central directory: entry name -> {@link ZipEntry}. */
export function readZipIndex(src: ByteSource): Map<string, ZipEntry> {
  const tailLen = Math.min(src.size, 22 + 0xffff);
  const tail = readExact(src, src.size - tailLen, tailLen, "end record");
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw notZip("no end-of-central-directory record");
  let count = tail.getUint16(eocd + 10, true);
  let cdSize = tail.getUint32(eocd + 12, true);
  let cdOffset = tail.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locAt = eocd - 20;
    if (locAt < 0 || tail.getUint32(locAt, true) !== 0x07064b50) throw notZip("no zip64 locator");
    const rec = readExact(src, u64(tail, locAt + 8), 56, "zip64 end record");
    if (rec.getUint32(0, true) !== 0x06064b50) throw notZip("bad zip64 end record");
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  const cd = readExact(src, cdOffset, cdSize, "central directory");
  const decoder = new TextDecoder();
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cdSize || cd.getUint32(p, true) !== 0x02014b50) {
      throw notZip(`bad central directory entry ${k}`);
    }
    const method = cd.getUint16(p + 10, true);
    let compressedSize = cd.getUint32(p + 20, true);
    let size = cd.getUint32(p + 24, true);
    const nameLen = cd.getUint16(p + 28, true);
    const extraLen = cd.getUint16(p + 30, true);
    const commentLen = cd.getUint16(p + 32, true);
    let headerOffset = cd.getUint32(p + 42, true);
    const name = decoder.decode(
      new Uint8Array(cd.buffer, cd.byteOffset + p + 46, Math.min(nameLen, cdSize - p - 46)),
    );
    // zip64 extra field: the 0xffffffff fields, in order size, compressed size, offset
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
      const id = cd.getUint16(e, true);
      const len = cd.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) (size = u64(cd, q), q += 8);
        if (compressedSize === 0xffffffff) (compressedSize = u64(cd, q), q += 8);
        if (headerOffset === 0xffffffff) headerOffset = u64(cd, q);
      }
      e += 4 + len;
    }
    entries.set(name, { name, method, compressedSize, size, headerOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** The most bytes Deflate can inflate an entry to (at most 1032 : 1, plus a block). */
const maxInflated = (entry: ZipEntry) => entry.compressedSize * 1032 + 1024;

/**
 * Reads (and, if deflated, inflates) one entry's bytes. Sizes are checked against the file
 * before anything is allocated: a stored entry holds as many bytes as it declares, a deflated
 * one at most what Deflate can produce from its compressed bytes (a zip64 entry claiming 2^40
 * bytes from a few is refused).
 */
export function readZipEntry(src: ByteSource, entry: ZipEntry): Uint8Array {
  const h = readExact(src, entry.headerOffset, 30, `local header of ${entry.name}`);
  if (h.getUint32(0, true) !== 0x04034b50) throw notZip(`bad local header of ${entry.name}`);
  const start = entry.headerOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
  readExact(src, start + entry.compressedSize, 0, `data of ${entry.name}`);
  if (
    entry.method === 0 ? entry.size !== entry.compressedSize : entry.size > maxInflated(entry)
  ) {
    throw new CellposeError(
      "BAD_FILE",
      `zip entry ${entry.name} declares ${entry.size} bytes from ${entry.compressedSize} ` +
        (entry.method === 0 ? "stored ones" : "compressed ones: more than Deflate can produce"),
      entry.size,
    );
  }
  const raw = src.read(start, entry.compressedSize);
  if (entry.method === 0) return raw;
  if (entry.method === 8) return inflateSync(raw, { out: new Uint8Array(entry.size) });
  throw new CellposeError(
    "UNSUPPORTED",
    `zip entry ${entry.name} uses compression method ${entry.method}; only stored (0) and ` +
      `deflate (8) are supported`,
    entry.method,
  );
}
