/**
 * The panel's exports, made in the browser by the same encoders the server uses for its results
 * (server/results.ts over io/): label TIFF, ImageJ ROI zip, cellpose outlines text, per-mask CSV.
 * Edited labels are exported as they are now.
 * @module
 */
import { encodeResult } from "../../server/results.ts";
import { countMasks } from "./render.ts";

/** What can be exported: a `format` of the server's results. */
export type ExportKind = "tiff" | "roi" | "outlines" | "csv";

/** Bytes (or text), file name and MIME type of one export of a label image. */
export function exportFile(
  kind: ExportKind,
  labels: Uint16Array | Uint32Array,
  width: number,
  height: number,
  name: string,
): { bytes: Uint8Array | string; name: string; type: string } {
  const masks = { data: labels, shape: [height, width] };
  const r = encodeResult({ masks, nMasks: countMasks(labels), timings: {}, name }, kind);
  return { bytes: r.body, name: r.filename, type: r.contentType };
}
