/**
 * What every image reader returns: the pixels, their axes as letters (`Y`, `X`, `Z`, `C`, `T`),
 * the channel and Z axis positions derived from those letters, and the file name for messages.
 *
 * @example
 * ```ts
 * import { loadedImage } from "./loaded.ts";
 * const img = loadedImage({ data: new Uint8Array(12), shape: [2, 2, 3] }, "YXC", "rgb.png");
 * console.log(img.channelAxis, img.zAxis); // 2 undefined
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";

/** An image read from a file. */
export interface LoadedImage {
  /** pixels in C order, in the file's own dtype */
  image: NdArray<NumericArray>;
  /** one letter per dimension, e.g. "YX", "YXC", "CYX", "ZYX", "ZCYX" */
  axes: string;
  /** index of `C` in `axes`, if any */
  channelAxis?: number;
  /** index of `Z` in `axes`, if any */
  zAxis?: number;
  /** the file name (or the name given for bytes) */
  name: string;
}

/** Builds a {@link LoadedImage}, deriving `channelAxis` and `zAxis` from `axes`. */
export function loadedImage(image: NdArray<NumericArray>, axes: string, name: string): LoadedImage {
  if (axes.length !== image.shape.length) {
    throw new CellposeError(
      "BAD_SHAPE",
      `${name}: axes '${axes}' do not match shape [${image.shape}]`,
      axes,
    );
  }
  const out: LoadedImage = { image, axes, name };
  if (axes.includes("C")) out.channelAxis = axes.indexOf("C");
  if (axes.includes("Z")) out.zAxis = axes.indexOf("Z");
  return out;
}

/**
 * Decoded bytes an image read whole may have unless the reader is told otherwise (`maxBytes`):
 * 2^31 (2 GiB). The CLI's default (`--max_image_bytes`).
 */
export const DEFAULT_MAX_DECODED_BYTES = 2 ** 31;

/** A region read of a lazy source may decode this many times its own bytes of blocks... */
export const READ_AMPLIFICATION = 16;
/** ...or this many bytes, if more (small regions of a file with large blocks). */
export const MIN_READ_DECODE = 256 * 2 ** 20;

/**
 * Refuses (BAD_FILE naming `path`) a region read of a lazy source (TIFF strips or tiles, Zarr
 * chunks) that would decode `cost` bytes of whole blocks, `layout` describing them: more than
 * {@link READ_AMPLIFICATION} x the region's `regionBytes`, or twice `rowsBytes` (the bytes of the
 * whole image rows the region spans: what any reader of row strips decodes), at least
 * {@link MIN_READ_DECODE}, at most `maxBytes`. So memory is bounded per read, and blocks far
 * larger than the reads that touch them (one strip for the whole image, 512 MiB tiles) are
 * refused instead of decoded again for every block of a pass.
 */
export function checkReadDecode(
  path: string,
  rect: { y0: number; x0: number; y1: number; x1: number },
  cost: { bytes: number; regionBytes: number; rowsBytes: number; maxBytes: number },
  layout: string,
  fix: string,
): void {
  const { bytes, regionBytes, rowsBytes, maxBytes } = cost;
  const allowed = Math.min(
    maxBytes,
    Math.max(MIN_READ_DECODE, READ_AMPLIFICATION * regionBytes, 2 * rowsBytes),
  );
  if (bytes <= allowed) return;
  const { y0, x0, y1, x1 } = rect;
  throw badFile(
    path,
    `reading region [${y0}, ${y1}) x [${x0}, ${x1}) would decode ${bytes} bytes of ${layout}, ` +
      `more than the ${allowed} allowed (${READ_AMPLIFICATION} x the region or 2 x its whole ` +
      `rows, at least ${MIN_READ_DECODE}, at most maxBytes ${maxBytes}); ${fix}`,
  );
}

/** A `BAD_FILE` error that names the file and the reason. */
export function badFile(name: string, reason: string, cause?: unknown): CellposeError {
  return new CellposeError("BAD_FILE", `${name}: ${reason}`, name, cause ? { cause } : undefined);
}
