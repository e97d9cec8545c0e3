/**
 * Hand-made TIFF bytes for tests that need files no writer makes (hostile headers, claimed sizes,
 * shared strips): one little-endian IFD at offset 8, its entries as given, data after it.
 *
 * @example
 * ```ts
 * import { ifdDataAt, ifdTiff } from "./tiff_ifd.ts";
 * const at = ifdDataAt(2);
 * const { bytes } = ifdTiff([[256, 3, 1, 16], [273, 4, 1, at]], 4);
 * console.log(bytes.length === at + 4); // true
 * ```
 * @module
 */

/** One IFD entry: tag, TIFF type (3 SHORT, 4 LONG), count, value (or offset of the values). */
export type IfdEntry = [tag: number, type: 3 | 4, count: number, value: number];

/** Where the data after an IFD of `nEntries` entries at offset 8 starts. */
export function ifdDataAt(nEntries: number): number {
  return 8 + 2 + 12 * nEntries + 4;
}

/**
 * A TIFF of the header, one IFD of `entries` (in tag order) with `nextIfd` as its next-directory
 * offset (8 = itself), and `dataBytes` zero bytes at `dataAt` for the caller to fill via `view`.
 */
export function ifdTiff(
  entries: IfdEntry[],
  dataBytes: number,
  nextIfd = 0,
): { bytes: Uint8Array; view: DataView; dataAt: number } {
  const dataAt = ifdDataAt(entries.length);
  const bytes = new Uint8Array(dataAt + dataBytes);
  const view = new DataView(bytes.buffer);
  bytes.set([0x49, 0x49, 42, 0]);
  view.setUint32(4, 8, true);
  view.setUint16(8, entries.length, true);
  entries.forEach(([tag, type, count, value], k) => {
    const o = 10 + 12 * k;
    view.setUint16(o, tag, true);
    view.setUint16(o + 2, type, true);
    view.setUint32(o + 4, count, true);
    if (type === 3 && count === 1) view.setUint16(o + 8, value, true);
    else view.setUint32(o + 8, value, true);
  });
  view.setUint32(dataAt - 4, nextIfd, true);
  return { bytes, view, dataAt };
}
