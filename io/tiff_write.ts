/**
 * A small TIFF writer for label images, flows and cell probabilities: one grey sample per pixel,
 * uint8/uint16/uint32, int8/int16/int32, float32/float64, 2D or multi-page stacks, strips,
 * optional Deflate (compression 8, zlib stream via fflate), little endian, classic TIFF.
 *
 * Written by hand because geotiff's writer targets GeoTIFF rasters: it has no multi-page output,
 * no compression and no ImageJ metadata. Stacks get an ImageJ hyperstack ImageDescription so
 * ImageJ/Fiji and tifffile open them with their axes; pixel data of all pages is written first
 * and contiguously (what ImageJ expects of uncompressed stacks), then the IFDs.
 *
 * @example
 * ```ts
 * import { encodeTiff } from "./tiff_write.ts";
 * const labels = { data: new Uint16Array([0, 1, 1, 2]), shape: [2, 2] };
 * const bytes = encodeTiff(labels, { compression: "deflate" });
 * console.log(bytes[0] === 0x49 && bytes[1] === 0x49); // true ("II", little endian)
 * ```
 * @module
 */
import { zlibSync } from "fflate";
import { CellposeError } from "../core/errors.ts";
import { type NdArray, type NumericArray, size } from "../core/ndarray.ts";
import { imagejDescription } from "./imagej.ts";

/** Options of {@link encodeTiff}. */
export interface TiffWriteOptions {
  /**
   * Axes of the array, last two `YX`; leading axes a subsequence of `TZC` (ImageJ's page order).
   * Default: `YX`, `ZYX`, `ZCYX` by number of dimensions.
   */
  axes?: string;
  /** ["none"] `deflate`: zlib-compressed strips (TIFF compression 8) */
  compression?: "none" | "deflate";
  /** ImageDescription of the first page instead of the ImageJ one */
  description?: string;
}

// TIFF tags and field types used here (shared with the strip writer, io/tiff_strips.ts)
export const T = {
  width: 256,
  height: 257,
  bits: 258,
  compression: 259,
  photometric: 262,
  description: 270,
  stripOffsets: 273,
  samples: 277,
  rowsPerStrip: 278,
  stripCounts: 279,
  planar: 284,
  sampleFormat: 339,
};
export const SHORT = 3, LONG = 4, ASCII = 2;
export const STRIP_BYTES = 65536;

/** TIFF BitsPerSample and SampleFormat (1 unsigned, 2 signed, 3 float) of a typed array. */
export function sampleInfo(data: NumericArray): { bits: number; format: number } {
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) {
    return { bits: 8, format: 1 };
  }
  if (data instanceof Uint16Array) return { bits: 16, format: 1 };
  if (data instanceof Uint32Array) return { bits: 32, format: 1 };
  if (data instanceof Int8Array) return { bits: 8, format: 2 };
  if (data instanceof Int16Array) return { bits: 16, format: 2 };
  if (data instanceof Int32Array) return { bits: 32, format: 2 };
  if (data instanceof Float32Array) return { bits: 32, format: 3 };
  return { bits: 64, format: 3 };
}

/** ASCII field bytes: the text, a NUL, and one more NUL when needed for an even length. */
function nulTerminated(text: string): Uint8Array {
  const enc = new TextEncoder().encode(text);
  const out = new Uint8Array(enc.length + (enc.length % 2 ? 1 : 2));
  out.set(enc);
  return out;
}

function pageSizes(
  shape: number[],
  axes: string,
): { channels: number; slices: number; frames: number } {
  if (axes.length !== shape.length || !axes.endsWith("YX")) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `TIFF axes '${axes}' must have one letter per dimension of shape [${shape}] and end in YX`,
      axes,
    );
  }
  const lead = axes.slice(0, -2);
  if (!/^T?Z?C?$/.test(lead)) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `TIFF leading axes '${lead}' must be in ImageJ page order T, Z, C (e.g. ZCYX); transpose first`,
      axes,
    );
  }
  const n = (a: string) => (lead.includes(a) ? shape[axes.indexOf(a)] : 1);
  return { channels: n("C"), slices: n("Z"), frames: n("T") };
}

/** Serialises a 2D image or a stack of pages as TIFF bytes. */
export function encodeTiff(arr: NdArray<NumericArray>, options: TiffWriteOptions = {}): Uint8Array {
  const { shape, data } = arr;
  if (shape.length < 2 || data.length !== size(shape)) {
    throw new CellposeError(
      "BAD_SHAPE",
      `TIFF needs a [..., H, W] array whose data matches its shape, got shape [${shape}] with ${data.length} values`,
      shape,
    );
  }
  const axes = options.axes ?? ["YX", "YX", "ZYX", "ZCYX"][shape.length - 1] ?? "";
  const sizes = pageSizes(shape, axes);
  const [h, w] = shape.slice(-2);
  if (h === 0 || w === 0) {
    throw new CellposeError(
      "BAD_SHAPE",
      `TIFF image must not be empty, got shape [${shape}]`,
      shape,
    );
  }
  const pages = size(shape.slice(0, -2));
  const { bits, format } = sampleInfo(data);
  const rowBytes = w * (bits / 8);
  const rowsPerStrip = Math.max(1, Math.min(h, Math.floor(STRIP_BYTES / rowBytes)));
  const stripsPerPage = Math.ceil(h / rowsPerStrip);
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const deflate = options.compression === "deflate";

  // pixel data: all strips of all pages, in order, contiguous
  const strips: Uint8Array[] = [];
  for (let p = 0; p < pages; p++) {
    for (let s = 0; s < stripsPerPage; s++) {
      const r0 = s * rowsPerStrip, r1 = Math.min(h, r0 + rowsPerStrip);
      const start = (p * h + r0) * rowBytes, end = (p * h + r1) * rowBytes;
      const chunk = raw.subarray(start, end);
      strips.push(deflate ? zlibSync(chunk, { level: 6 }) : chunk);
    }
  }
  const description = options.description ??
    (pages > 1 ? imagejDescription(sizes) : undefined);
  const descBytes = description === undefined ? undefined : nulTerminated(description);

  let dataBytes = 0;
  for (const s of strips) dataBytes += s.length;
  const nEntries = descBytes ? 12 : 11;
  const ifdBytes = (withDesc: boolean) =>
    2 + 12 * (withDesc ? 12 : 11) + 4 + (stripsPerPage > 1 ? 8 * stripsPerPage : 0);
  const firstIfd = 8 + dataBytes + (dataBytes % 2);
  const descOffset = firstIfd + ifdBytes(!!descBytes);
  // every block has even length, so IFDs stay word-aligned without padding
  const total = descOffset + (descBytes?.length ?? 0) + (pages - 1) * ifdBytes(false);
  if (total >= 2 ** 32) {
    throw new CellposeError(
      "UNSUPPORTED",
      `TIFF of ${total} bytes needs BigTIFF, which this writer does not produce (limit 4 GiB)`,
      total,
    );
  }
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out[0] = 0x49, out[1] = 0x49;
  v.setUint16(2, 42, true);
  v.setUint32(4, firstIfd, true);
  const stripOffsets: number[] = [];
  let pos = 8;
  for (const s of strips) {
    out.set(s, pos);
    stripOffsets.push(pos);
    pos += s.length;
  }

  let ifd = firstIfd;
  for (let p = 0; p < pages; p++) {
    const withDesc = p === 0 && !!descBytes;
    const entries = withDesc ? nEntries : 11;
    let extra = ifd + 2 + 12 * entries + 4; // out-of-line values follow the IFD
    if (withDesc) extra += descBytes!.length;
    let e = ifd + 2;
    v.setUint16(ifd, entries, true);
    const entry = (tag: number, type: number, count: number, value: number) => {
      v.setUint16(e, tag, true);
      v.setUint16(e + 2, type, true);
      v.setUint32(e + 4, count, true);
      if (type === SHORT && count === 1) v.setUint16(e + 8, value, true);
      else v.setUint32(e + 8, value, true);
      e += 12;
    };
    const longs = (tag: number, values: number[]) => {
      if (values.length === 1) return entry(tag, LONG, 1, values[0]);
      entry(tag, LONG, values.length, extra);
      values.forEach((x, i) => v.setUint32(extra + 4 * i, x, true));
      extra += 4 * values.length;
    };
    const first = p * stripsPerPage;
    const ids = Array.from({ length: stripsPerPage }, (_, i) => first + i);
    entry(T.width, LONG, 1, w);
    entry(T.height, LONG, 1, h);
    entry(T.bits, SHORT, 1, bits);
    entry(T.compression, SHORT, 1, deflate ? 8 : 1);
    entry(T.photometric, SHORT, 1, 1);
    if (withDesc) {
      const at = ifd + 2 + 12 * entries + 4;
      out.set(descBytes!, at);
      entry(T.description, ASCII, descBytes!.length, at);
    }
    longs(T.stripOffsets, ids.map((i) => stripOffsets[i]));
    entry(T.samples, SHORT, 1, 1);
    entry(T.rowsPerStrip, LONG, 1, rowsPerStrip);
    longs(T.stripCounts, ids.map((i) => strips[i].length));
    entry(T.planar, SHORT, 1, 1);
    entry(T.sampleFormat, SHORT, 1, format);
    const next = p + 1 < pages ? extra : 0;
    v.setUint32(ifd + 2 + 12 * entries, next, true);
    ifd = next;
  }
  return out;
}

/**
 * Writes {@link encodeTiff}'s bytes to `path`.
 *
 * @example
 * ```ts
 * import { writeTiff } from "./tiff_write.ts";
 * const flows = { data: new Float32Array(2 * 4 * 4), shape: [2, 4, 4] };
 * await writeTiff("/tmp/flows.tif", flows, { axes: "CYX" });
 * ```
 */
export async function writeTiff(
  path: string,
  arr: NdArray<NumericArray>,
  options: TiffWriteOptions = {},
): Promise<void> {
  await Deno.writeFile(path, encodeTiff(arr, options));
}
