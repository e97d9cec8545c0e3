/**
 * One entry point for reading images: TIFF (incl. OME-TIFF, ImageJ stacks, BigTIFF), PNG, JPEG
 * and NumPy `.npy`, chosen by the file's magic bytes, never its extension.
 *
 * `.npy` arrays carry no axis names, so they are guessed from the shape: 2D `YX`; 3D by cellpose's
 * rule (`CYX` when `shape[0] < shape[2]`, else `YXC`; pass a Z axis to segment a stack); 4D `ZYXC` when the last is at most 4, else `ZCYX`.
 *
 * @example
 * ```ts ignore
 * import { readImage } from "./image.ts";
 * const { image, axes, channelAxis } = await readImage("cells.tif");
 * console.log(image.shape, axes, channelAxis);
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NumericArray } from "../core/ndarray.ts";
import { isJpeg, readJpeg } from "./jpeg.ts";
import { badFile, type LoadedImage, loadedImage } from "./loaded.ts";
import { readNpy } from "./npy.ts";
import { isPng, readPng } from "./png.ts";
import { isTiff, type ReadOptions, readTiff } from "./tiff_read.ts";

export type { LoadedImage } from "./loaded.ts";
export { DEFAULT_MAX_DECODED_BYTES } from "./loaded.ts";

function npyAxes(shape: number[]): string {
  const small = shape[shape.length - 1] <= 4;
  if (shape.length === 2) return "YX";
  // cellpose's own rule for 3-D arrays without a stated axis: channels first if shape[0] < shape[2]
  if (shape.length === 3) return shape[0] < shape[2] ? "CYX" : "YXC";
  if (shape.length === 4) return small ? "ZYXC" : "ZCYX";
  return "";
}

function readNpyImage(bytes: Uint8Array, name: string): LoadedImage {
  let arr;
  try {
    arr = readNpy(bytes);
  } catch (e) {
    if (e instanceof CellposeError) throw badFile(name, e.message, e);
    throw e;
  }
  const axes = npyAxes(arr.shape);
  if (!axes) {
    throw badFile(name, `.npy image must have 2 to 4 dimensions, got shape [${arr.shape}]`);
  }
  if (arr.data instanceof BigInt64Array || arr.data instanceof BigUint64Array) {
    throw badFile(name, "64-bit integer .npy images are not supported (convert to int32 or float)");
  }
  if (arr.shape.some((d) => d === 0)) {
    throw badFile(name, `zero-size image (shape [${arr.shape}])`);
  }
  return loadedImage({ data: arr.data as NumericArray, shape: arr.shape }, axes, name);
}

/**
 * Reads an image from a path or from bytes (`name` then labels errors; default "image").
 * Unknown, empty, truncated or corrupt files give a {@link CellposeError} `BAD_FILE` that names
 * the file and the reason. `options.maxElements` and `options.maxBytes` (default
 * {@link DEFAULT_MAX_DECODED_BYTES}) refuse a TIFF, PNG or JPEG whose header declares more
 * elements or decoded bytes, before decoding it (`TOO_LARGE`); compressed data that inflates past
 * what its header declares is refused while it inflates (`BAD_FILE`).
 */
export async function readImage(
  src: string | Uint8Array,
  name?: string,
  options: ReadOptions = {},
): Promise<LoadedImage> {
  let bytes: Uint8Array;
  let label: string;
  if (typeof src === "string") {
    label = name ?? src.split(/[\\/]/).pop()!;
    try {
      bytes = await Deno.readFile(src);
    } catch (e) {
      throw badFile(src, `cannot read file (${(e as Error).message})`, e);
    }
  } else {
    bytes = src;
    label = name ?? "image";
  }
  if (bytes.length === 0) throw badFile(label, "empty file (0 bytes)");
  if (isTiff(bytes)) return await readTiff(bytes, label, options);
  if (isPng(bytes)) return readPng(bytes, label, options);
  if (isJpeg(bytes)) return readJpeg(bytes, label, options);
  if (
    bytes.length >= 6 && bytes[0] === 0x93 &&
    String.fromCharCode(...bytes.subarray(1, 6)) === "NUMPY"
  ) {
    return readNpyImage(bytes, label);
  }
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw badFile(
    label,
    `unrecognised image format (first bytes ${head}); TIFF, PNG, JPEG and .npy are supported`,
  );
}
