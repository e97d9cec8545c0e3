/**
 * PNG read and write through fast-png. Reading gives grey images as `YX` and colour ones as `YXC`
 * (RGB; alpha is dropped, palettes are expanded, like cellpose's `cv2.imread` path); 1/2/4-bit
 * grey is widened to 0..255. Writing takes uint8 or uint16 `[H, W]` (grey) or `[H, W, 3|4]`: a
 * uint16 PNG holds label images up to 65535 masks.
 *
 * @example
 * ```ts
 * import { encodePng, readPng } from "./png.ts";
 * const labels = { data: new Uint16Array([0, 1, 2, 300]), shape: [2, 2] };
 * const back = readPng(encodePng(labels), "labels.png");
 * console.log(back.image.data); // Uint16Array [0, 1, 2, 300]
 * ```
 * @module
 */
import { convertIndexedToRgb, decode, encode } from "fast-png";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { badFile, DEFAULT_MAX_DECODED_BYTES, type LoadedImage, loadedImage } from "./loaded.ts";
import { inflateBounded } from "./tiff_decoders.ts";

/** True when the bytes start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  return bytes.length >= 8 && sig.every((b, i) => bytes[i] === b);
}

/** Unpacks 1/2/4-bit grey rows into one byte per pixel scaled to 0..255. */
function unpackGrey(packed: Uint8Array, w: number, h: number, depth: number): Uint8Array {
  const out = new Uint8Array(w * h);
  const rowBytes = Math.ceil((w * depth) / 8);
  const max = (1 << depth) - 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)];
      const v = (byte >> (8 - depth - (bit & 7))) & max;
      out[y * w + x] = Math.round((v * 255) / max);
    }
  }
  return out;
}

/** Drops the last of `from` interleaved channels, keeping `to`. */
function keepChannels<T extends Uint8Array | Uint16Array>(data: T, from: number, to: number): T {
  const n = data.length / from;
  const out = new (data.constructor as { new (n: number): T })(n * to);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < to; c++) out[i * to + c] = data[i * from + c];
  }
  return out;
}

/** Limits of {@link readPng}. */
export interface PngReadOptions {
  /** refuse (`TOO_LARGE`) more decoded samples (width x height x channels) */
  maxElements?: number;
  /** refuse (`TOO_LARGE`) more decoded bytes (default {@link DEFAULT_MAX_DECODED_BYTES}) */
  maxBytes?: number;
}

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Checks the header's size against the limits, then inflates the image data (IDAT) once under
 * the bound its header implies (rows x (1 + row bytes), x 2 for interlaced images), refusing a
 * stream that inflates past it while inflating (fast-png would inflate all of it); the inflated
 * bytes are counted, not kept.
 */
function checkPngBudget(bytes: Uint8Array, name: string, options: PngReadOptions): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33) return; // fast-png says what is missing
  const w = view.getUint32(16), h = view.getUint32(20);
  const depth = bytes[24], channels = PNG_CHANNELS[bytes[25]] ?? 4, interlaced = bytes[28] === 1;
  // a palette image decodes to RGB; its data holds one index per pixel
  const samples = w * h * (bytes[25] === 3 ? 3 : channels);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DECODED_BYTES;
  const rawBytes = h * (1 + Math.ceil((w * channels * depth) / 8));
  const maxElements = options.maxElements ?? Infinity;
  if (samples > maxElements || rawBytes > maxBytes) {
    throw new CellposeError(
      "TOO_LARGE",
      `${name} declares ${w} x ${h} x ${channels} in its PNG header (${samples} values, ` +
        `${rawBytes} bytes of image data); the limit is ` +
        (samples > maxElements ? `${maxElements} values` : `${maxBytes} bytes`),
      samples,
    );
  }
  const idat: Uint8Array[] = [];
  for (let i = 8; i + 8 <= bytes.length;) {
    const len = view.getUint32(i);
    const type = String.fromCharCode(...bytes.subarray(i + 4, i + 8));
    if (type === "IDAT") idat.push(bytes.subarray(i + 8, Math.min(bytes.length, i + 8 + len)));
    i += 12 + len;
  }
  const all = new Uint8Array(idat.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of idat) all.set(c, at), (at += c.length);
  try {
    inflateBounded(all, interlaced ? 2 * rawBytes + 7 * h : rawBytes, () => {});
  } catch (e) {
    throw badFile(name, `corrupt or truncated PNG (its image data ${(e as Error).message})`, e);
  }
}

/** Decodes PNG bytes. Errors are `BAD_FILE` naming `name`. */
export function readPng(
  bytes: Uint8Array,
  name: string,
  options: PngReadOptions = {},
): LoadedImage {
  if (!isPng(bytes)) throw badFile(name, "not a PNG file (no PNG signature)");
  checkPngBudget(bytes, name, options);
  let png;
  try {
    png = decode(bytes);
  } catch (e) {
    throw badFile(name, `corrupt or truncated PNG (${(e as Error).message})`, e);
  }
  const { width: w, height: h, depth } = png;
  if (w === 0 || h === 0) throw badFile(name, `zero-size image (${w} x ${h} pixels)`);
  const raw = png.data;
  let data: Uint8Array | Uint16Array = raw instanceof Uint8ClampedArray
    ? new Uint8Array(raw.buffer, raw.byteOffset, raw.length)
    : raw;
  let channels = png.channels;
  if (png.palette) {
    data = convertIndexedToRgb(png);
    channels = data.length / (w * h);
  } else if (depth < 8) {
    data = unpackGrey(data as Uint8Array, w, h, depth);
  }
  if (data.length !== w * h * channels) {
    throw badFile(name, `corrupt PNG: ${data.length} values for ${w} x ${h} x ${channels}`);
  }
  if (channels === 2) data = keepChannels(data, 2, 1);
  if (channels === 4) data = keepChannels(data, 4, 3);
  const colour = channels >= 3;
  return loadedImage(
    { data, shape: colour ? [h, w, 3] : [h, w] },
    colour ? "YXC" : "YX",
    name,
  );
}

/** Encodes a uint8/uint16 `[H, W]`, `[H, W, 3]` or `[H, W, 4]` array as PNG bytes. */
export function encodePng(arr: NdArray): Uint8Array {
  const { data, shape } = arr;
  const channels = shape.length === 2 ? 1 : shape[2];
  if (shape.length < 2 || shape.length > 3 || ![1, 3, 4].includes(channels)) {
    throw new CellposeError(
      "BAD_SHAPE",
      `PNG needs [H, W], [H, W, 3] or [H, W, 4], got [${shape}]`,
      shape,
    );
  }
  if (
    !(data instanceof Uint8Array || data instanceof Uint8ClampedArray ||
      data instanceof Uint16Array)
  ) {
    throw new CellposeError(
      "BAD_DTYPE",
      `PNG holds uint8 or uint16 values, got ${data.constructor.name}`,
      data.constructor.name,
    );
  }
  const depth = data instanceof Uint16Array ? 16 : 8;
  return encode({ width: shape[1], height: shape[0], data, depth, channels });
}

/**
 * Writes {@link encodePng}'s bytes to `path`.
 *
 * @example
 * ```ts
 * import { writePng } from "./png.ts";
 * await writePng("/tmp/labels.png", { data: new Uint16Array(16), shape: [4, 4] });
 * ```
 */
export async function writePng(path: string, arr: NdArray): Promise<void> {
  await Deno.writeFile(path, encodePng(arr));
}
