/**
 * The panel's exports, made in the browser by the same encoders the server uses for its results
 * (server/results.ts over io/): label TIFF, ImageJ ROI zip, cellpose outlines text, per-mask CSV.
 * Edited labels are exported as they are now. A Z-stack result exports whole ([Z, H, W] TIFF,
 * ROIs and CSV rows of every plane), except outlines, which cellpose traces per plane: those of
 * the plane shown, named `..._z<plane>_cp_outlines.txt`.
 * @module
 */
import { encodeResult } from "../../server/results.ts";
import { countMasks } from "./render.ts";

/** What can be exported: a `format` of the server's results. */
export type ExportKind = "tiff" | "roi" | "outlines" | "csv";

/**
 * Bytes (or text), file name and MIME type of one export of a label image of `planes` planes of
 * `height` x `width` (`plane`: the plane whose outlines a stack exports).
 */
export function exportFile(
  kind: ExportKind,
  labels: Uint16Array | Uint32Array,
  width: number,
  height: number,
  name: string,
  planes = 1,
  plane = 0,
): { bytes: Uint8Array | string; name: string; type: string } {
  let masks = { data: labels, shape: planes > 1 ? [planes, height, width] : [height, width] };
  let base = name;
  if (planes > 1 && kind === "outlines") {
    const n = height * width;
    masks = { data: labels.subarray(plane * n, (plane + 1) * n), shape: [height, width] };
    base = `${name.replace(/\.[^.]*$/, "") || "image"}_z${plane}`;
  }
  const r = encodeResult({ masks, nMasks: countMasks(masks.data), timings: {}, name: base }, kind);
  return { bytes: r.body, name: r.filename, type: r.contentType };
}
