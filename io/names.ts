/**
 * Output file names as cellpose v4 makes them for an input image `<dir>/<base>.<ext>`
 * (`io.save_masks` with its default `suffix="_cp_masks"`): masks
 * `<savedir>/<base><suffix>.tif|.png`, outlines text `<savedir>/<base>_cp_outlines.txt`,
 * overlay `<savedir>/<base>_outlines<suffix>.png`, RGB flow picture
 * `<savedir>/<base>_flows<suffix>.tif`, raw flows `<savedir>/<base>_dP<suffix>.tif`,
 * `<base>_seg.npy` and the ImageJ `<base>_rois.zip` (cellpose writes these two beside the image
 * whatever `savedir` is; here `savedir` takes every output, so that images in read-only folders
 * can be segmented). Not saved by cellpose but named the same way here: cell probability
 * `_cellprob<suffix>.tif` and the per-mask table `_stats<suffix>.csv`. The names come from the
 * output table (`output_formats.ts`) that the server and the panel name their files by.
 *
 * @example
 * ```ts
 * import { outputNames } from "./names.ts";
 * const n = outputNames("/data/img01.tif", { savedir: "/out" });
 * console.log(n.masksTif, n.seg); // "/out/img01_cp_masks.tif" "/out/img01_seg.npy"
 * ```
 * @module
 */
import { dirname, join } from "node:path";
import { imageBase, MASKS_SUFFIX, outputFileName, type OutputKind } from "./output_formats.ts";

/** Paths of every output cellpose can write for one image. */
export interface OutputNames {
  /** the image's file name without its extension */
  base: string;
  /** label image, TIFF */
  masksTif: string;
  /** label image, 16-bit PNG */
  masksPng: string;
  /** outlines as text for ImageJ */
  outlinesTxt: string;
  /** the image with the outlines drawn on it */
  overlayPng: string;
  /** cellpose's RGB flow picture (named here, not written) */
  flowsTif: string;
  /** the network's flows (dY, dX) */
  dpTif: string;
  /** the cell probability */
  cellprobTif: string;
  /** per-mask statistics */
  statsCsv: string;
  /** masks, outlines and flows for the cellpose GUI */
  seg: string;
  /** ImageJ ROI set */
  rois: string;
}

/**
 * Output names for `imagePath` (names from {@link outputFileName}): in `savedir` when given, else
 * beside the image; `suffix` defaults to "_cp_masks".
 */
export function outputNames(
  imagePath: string,
  options: { savedir?: string; suffix?: string } = {},
): OutputNames {
  const out = options.savedir ?? dirname(imagePath);
  const sfx = options.suffix ?? MASKS_SUFFIX;
  const at = (kind: OutputKind) => join(out, outputFileName(kind, imagePath, sfx));
  return {
    base: imageBase(imagePath),
    masksTif: at("masks_tif"),
    masksPng: at("masks_png"),
    outlinesTxt: at("outlines_txt"),
    overlayPng: at("overlay_png"),
    flowsTif: join(out, `${imageBase(imagePath)}_flows${sfx}.tif`),
    dpTif: at("dp_tif"),
    cellprobTif: at("cellprob_tif"),
    statsCsv: at("stats_csv"),
    seg: at("seg"),
    rois: at("rois"),
  };
}
