/**
 * JPEG reading through jpeg-js: colour JPEGs give `[H, W, 3]` (`YXC`), single-component (grey)
 * ones `[H, W]` (`YX`), like `cv2.imread(path, -1)`.
 *
 * @example
 * ```ts ignore
 * import { readJpeg } from "./jpeg.ts";
 * const img = readJpeg(await Deno.readFile("photo.jpg"), "photo.jpg");
 * console.log(img.axes, img.image.shape);
 * ```
 * @module
 */
import jpeg from "jpeg-js";
import { CellposeError } from "../core/errors.ts";
import { badFile, DEFAULT_MAX_DECODED_BYTES, type LoadedImage, loadedImage } from "./loaded.ts";

/** True when the bytes start with a JPEG SOI marker. */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** The frame header (SOFn): size and number of colour components; undefined when none. */
export function jpegFrame(
  bytes: Uint8Array,
): { width: number; height: number; components: number } | undefined {
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1];
    const len = (bytes[i + 2] << 8) | bytes[i + 3];
    const sof = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (sof) {
      return {
        height: (bytes[i + 5] << 8) | bytes[i + 6],
        width: (bytes[i + 7] << 8) | bytes[i + 8],
        components: bytes[i + 9],
      };
    }
    i += 2 + len;
  }
  return undefined;
}

/**
 * Every frame header a lenient decoder could act on: each `FF C0`, `FF C1` or `FF C2` (the
 * baseline, extended and progressive frames that geotiff's and jpeg-js's decoders build) anywhere
 * in the bytes, with the size and component count that follow it. Entropy-coded data never holds
 * such a pair (an `FF` there is stuffed as `FF 00`), so a real JPEG yields its own frame; a crafted
 * one cannot hide a second frame, or one reached only by the decoders' resynchronisation, from it.
 */
export function jpegFrameClaims(
  bytes: Uint8Array,
): { width: number; height: number; components: number }[] {
  const out = [];
  for (
    let i = bytes.indexOf(0xff);
    i >= 0 && i + 9 < bytes.length;
    i = bytes.indexOf(0xff, i + 1)
  ) {
    const m = bytes[i + 1];
    if (m < 0xc0 || m > 0xc2) continue;
    out.push({
      height: (bytes[i + 5] << 8) | bytes[i + 6],
      width: (bytes[i + 7] << 8) | bytes[i + 8],
      components: bytes[i + 9],
    });
  }
  return out;
}

/**
 * The fewest bytes Huffman-coded data of a `width` x `height` frame can take: one bit per 8 x 8
 * block of the first component.
 */
export function minJpegBytes(width: number, height: number): number {
  return Math.ceil((Math.ceil(width / 8) * Math.ceil(height / 8)) / 8);
}

/** Limits of {@link readJpeg}. */
export interface JpegReadOptions {
  /** refuse (`TOO_LARGE`) more decoded samples (width x height x components) */
  maxElements?: number;
  /** refuse (`TOO_LARGE`) more decoded bytes (default {@link DEFAULT_MAX_DECODED_BYTES}) */
  maxBytes?: number;
}

/**
 * Checks the frame header before decoding (the decoder allocates the whole image when it reads
 * it): the size against the limits, and against the file's length: Huffman-coded data needs at
 * least one bit per 8 x 8 block of the first component, so a 2 KB file cannot hold 10000 x 10000.
 */
function checkFrame(bytes: Uint8Array, name: string, options: JpegReadOptions): void {
  const f = jpegFrame(bytes);
  if (!f) return; // the decoder says what is missing
  const samples = f.width * f.height * Math.max(3, f.components);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DECODED_BYTES;
  const limit = Math.min(options.maxElements ?? Infinity, maxBytes);
  if (samples > limit) {
    throw new CellposeError(
      "TOO_LARGE",
      `${name} declares ${f.width} x ${f.height} x ${f.components} in its JPEG frame header; ` +
        `the limit is ${limit} values`,
      samples,
    );
  }
  if (bytes.length < minJpegBytes(f.width, f.height)) {
    throw badFile(
      name,
      `truncated JPEG: its header declares ${f.width} x ${f.height} pixels, which need at ` +
        `least ${minJpegBytes(f.width, f.height)} bytes, but the file has ${bytes.length}`,
    );
  }
}

/** Decodes JPEG bytes. Errors are `BAD_FILE` naming `name`. */
export function readJpeg(
  bytes: Uint8Array,
  name: string,
  options: JpegReadOptions = {},
): LoadedImage {
  if (!isJpeg(bytes)) throw badFile(name, "not a JPEG file (no FFD8FF marker)");
  checkFrame(bytes, name, options);
  let img;
  try {
    img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxMemoryUsageInMB: Math.ceil((options.maxBytes ?? DEFAULT_MAX_DECODED_BYTES) / 2 ** 20),
      maxResolutionInMP: Math.ceil((options.maxBytes ?? DEFAULT_MAX_DECODED_BYTES) / 3e6),
    });
  } catch (e) {
    throw badFile(name, `corrupt or truncated JPEG (${(e as Error).message ?? e})`, e);
  }
  const { width: w, height: h, data } = img;
  if (w === 0 || h === 0) throw badFile(name, `zero-size image (${w} x ${h} pixels)`);
  if (jpegFrame(bytes)?.components === 1) {
    const grey = new Uint8Array(w * h);
    for (let i = 0; i < w * h; i++) grey[i] = data[3 * i];
    return loadedImage({ data: grey, shape: [h, w] }, "YX", name);
  }
  return loadedImage(
    { data: new Uint8Array(data.buffer, data.byteOffset, w * h * 3), shape: [h, w, 3] },
    "YXC",
    name,
  );
}
