/**
 * How many elements an uploaded image says it has, read from its header before anything is
 * decoded, so a small compressed file claiming a huge image (a decompression bomb) is refused
 * without allocating it. TIFF: every page's width x height x samples (geotiff parses only the
 * directories); PNG: the IHDR size x channels. Other formats (NPY holds its pixels uncompressed,
 * JPEG is bounded by its decoder) return `undefined`.
 *
 * @example
 * ```ts
 * import { declaredElements } from "./probe.ts";
 * import { encodePng } from "../io/png.ts";
 * const png = encodePng({ data: new Uint8Array(6), shape: [2, 3] });
 * console.log(await declaredElements(png)); // 6
 * ```
 * @module
 */
import { fromArrayBuffer } from "geotiff";
import { isPng } from "../io/png.ts";
import { isTiff } from "../io/tiff_read.ts";

/** PNG colour type -> channels. */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };

/** Elements the header declares, or undefined when unknown (unread format or broken header). */
export async function declaredElements(bytes: Uint8Array): Promise<number | undefined> {
  if (isPng(bytes) && bytes.length >= 26) {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return v.getUint32(16) * v.getUint32(20) * (PNG_CHANNELS[bytes[25]] ?? 4);
  }
  if (!isTiff(bytes)) return undefined;
  try {
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const tiff = await fromArrayBuffer(buffer as ArrayBuffer);
    const pages = await tiff.getImageCount();
    let total = 0;
    for (let i = 0; i < pages; i++) {
      const img = await tiff.getImage(i);
      total += img.getWidth() * img.getHeight() * img.getSamplesPerPixel();
    }
    return total;
  } catch {
    return undefined; // the reader reports the damage with its own message
  }
}
