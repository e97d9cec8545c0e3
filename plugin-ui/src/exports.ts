/**
 * The panel's exports, made in the browser by the library's output encoders and names
 * (`io/output_formats.ts`, the same the CLI and the server use): label TIFF, ImageJ ROI zip,
 * cellpose outlines text, per-mask CSV. Edited labels are exported as they are now. A Z-stack
 * result exports whole ([Z, H, W] TIFF, ROIs and CSV rows of every plane), except outlines,
 * which cellpose traces per plane: those of the plane shown, named `..._z<plane>_cp_outlines.txt`.
 * @module
 */
import {
  encodeOutput,
  imageBase,
  outputFileName,
  type OutputKind,
} from "../../io/output_formats.ts";
import { countMasks } from "./render.ts";

/** What can be exported (the server's `format` names). */
export type ExportKind = "tiff" | "roi" | "outlines" | "csv";

const KINDS: Record<ExportKind, OutputKind> = {
  tiff: "masks_tif",
  roi: "rois",
  outlines: "outlines_txt",
  csv: "stats_csv",
};

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
    base = `${imageBase(name)}_z${plane}.`;
  }
  const out = encodeOutput(KINDS[kind], { masks, nMasks: countMasks(masks.data) });
  return { bytes: out.bytes, name: outputFileName(KINDS[kind], base), type: out.contentType };
}
