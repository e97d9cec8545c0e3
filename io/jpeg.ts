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
import { badFile, type LoadedImage, loadedImage } from "./loaded.ts";

/** True when the bytes start with a JPEG SOI marker. */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** Number of colour components in the frame header (SOFn), or 0 when none is found. */
function components(bytes: Uint8Array): number {
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return 0;
    const marker = bytes[i + 1];
    const len = (bytes[i + 2] << 8) | bytes[i + 3];
    const sof = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (sof) return bytes[i + 9];
    i += 2 + len;
  }
  return 0;
}

/** Decodes JPEG bytes. Errors are `BAD_FILE` naming `name`. */
export function readJpeg(bytes: Uint8Array, name: string): LoadedImage {
  if (!isJpeg(bytes)) throw badFile(name, "not a JPEG file (no FFD8FF marker)");
  let img;
  try {
    img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  } catch (e) {
    throw badFile(name, `corrupt or truncated JPEG (${(e as Error).message ?? e})`, e);
  }
  const { width: w, height: h, data } = img;
  if (w === 0 || h === 0) throw badFile(name, `zero-size image (${w} x ${h} pixels)`);
  if (components(bytes) === 1) {
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
