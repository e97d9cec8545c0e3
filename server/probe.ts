/**
 * How many elements an uploaded PNG says it has, read from its header before anything is
 * decoded, so a small compressed file claiming a huge image (a decompression bomb) is refused
 * without allocating it: the IHDR size x channels. TIFFs are checked by the reader itself
 * (`readImage`'s `maxElements`, from the directories it parses anyway); other formats (NPY holds
 * its pixels uncompressed, JPEG is bounded by its decoder) return `undefined`.
 *
 * @example
 * ```ts
 * import { declaredElements } from "./probe.ts";
 * import { encodePng } from "../io/png.ts";
 * const png = encodePng({ data: new Uint8Array(6), shape: [2, 3] });
 * console.log(declaredElements(png)); // 6
 * ```
 * @module
 */
import { isPng } from "../io/png.ts";

/** PNG colour type -> channels. */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };

/** Elements the header declares, or undefined when unknown (unread format or broken header). */
export function declaredElements(bytes: Uint8Array): number | undefined {
  if (isPng(bytes) && bytes.length >= 26) {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return v.getUint32(16) * v.getUint32(20) * (PNG_CHANNELS[bytes[25]] ?? 4);
  }
  return undefined;
}
