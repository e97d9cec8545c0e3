/**
 * Walks a TIFF's chain of image file directories (IFDs) before geotiff does, refusing a chain
 * that loops back on itself, leaves the file, or is longer than {@link MAX_DIRECTORIES}: geotiff
 * follows next-IFD offsets without a loop check, so a 402-byte file whose directory points to
 * itself would be read forever. Works on bytes in memory ({@link countDirectories}) and on a file
 * read directory by directory ({@link countFileDirectories}), for the lazy reader.
 *
 * @example
 * ```ts
 * import { countDirectories } from "./tiff_ifd.ts";
 * import { encodeTiff } from "./tiff_write.ts";
 * console.log(countDirectories(encodeTiff({ data: new Uint8Array(4), shape: [2, 2] }))); // 1
 * ```
 * @module
 */

/** The most directories (pages) a TIFF may have. */
export const MAX_DIRECTORIES = 100_000;

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
type ReadAt = (offset: number, length: number) => Uint8Array;

function walk(readAt: ReadAt, fileLength: number, max: number): number {
  const head = readAt(0, 16);
  if (head.length < 8) throw new Error(`the header needs 8 bytes, the file has ${head.length}`);
  const le = head[0] === 0x49;
  const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const big = view(head).getUint16(2, le) === 43;
  if (big && head.length < 16) throw new Error("the BigTIFF header needs 16 bytes");
  const at = (b: Uint8Array, o: number) =>
    big ? Number(view(b).getBigUint64(o, le)) : view(b).getUint32(o, le);
  const seen = new Set<number>();
  const count = big ? 8 : 2, entry = big ? 20 : 12, link = big ? 8 : 4;
  let offset = at(head, big ? 8 : 4);
  while (offset !== 0) {
    if (seen.has(offset)) {
      throw new Error(`the directory chain loops back to byte ${offset} after ${seen.size} pages`);
    }
    if (seen.size >= max) throw new Error(`more than ${max} directories (pages)`);
    if (offset + count > fileLength) {
      throw new Error(`directory ${seen.size} at byte ${offset} is outside the file`);
    }
    seen.add(offset);
    const c = readAt(offset, count);
    const n = big ? Number(view(c).getBigUint64(0, le)) : view(c).getUint16(0, le);
    const end = offset + count + n * entry;
    if (end + link > fileLength) {
      throw new Error(`directory ${seen.size - 1} at byte ${offset} runs past the end of the file`);
    }
    offset = at(readAt(end, link), 0);
  }
  return seen.size;
}

/**
 * Number of directories in the chain of a TIFF in memory; throws an Error describing the
 * problem for a loop, an offset outside the file, or more than `max` directories.
 */
export function countDirectories(bytes: Uint8Array, max = MAX_DIRECTORIES): number {
  return walk((o, n) => bytes.subarray(o, o + n), bytes.length, max);
}

/**
 * {@link countDirectories} of the TIFF file at `path`, reading only its directories' counts and
 * links.
 *
 * @example
 * ```ts
 * import { countFileDirectories } from "./tiff_ifd.ts";
 * import { writeTiff } from "./tiff_write.ts";
 * await writeTiff("/tmp/ifd.tif", { data: new Uint8Array(4), shape: [2, 2] });
 * console.log(countFileDirectories("/tmp/ifd.tif")); // 1
 * ```
 */
export function countFileDirectories(path: string, max = MAX_DIRECTORIES): number {
  using file = Deno.openSync(path);
  const length = file.statSync().size;
  return walk(
    (offset, n) => {
      const out = new Uint8Array(Math.max(0, Math.min(n, length - offset)));
      file.seekSync(offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < out.length) {
        const r = file.readSync(out.subarray(got));
        if (r === null) break;
        got += r;
      }
      return out.subarray(0, got);
    },
    length,
    max,
  );
}
