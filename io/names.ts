/**
 * Output file names as cellpose v4 makes them for an input image `<dir>/<base>.<ext>`
 * (`io.save_masks` with its default `suffix="_cp_masks"`): masks
 * `<savedir>/<base><suffix>.tif|.png`, outlines text `<savedir>/<base>_cp_outlines.txt`,
 * overlay `<savedir>/<base>_outlines<suffix>.png`, RGB flow picture
 * `<savedir>/<base>_flows<suffix>.tif`, raw flows `<savedir>/<base>_dP<suffix>.tif`; and beside
 * the image, whatever `savedir` is (as cellpose writes them), `<base>_seg.npy` and the ImageJ
 * `<base>_rois.zip`. Not saved by cellpose but named the same way here: cell probability
 * `_cellprob<suffix>.tif` and the per-mask table `_stats<suffix>.csv`.
 *
 * @example
 * ```ts
 * import { outputNames } from "./names.ts";
 * const n = outputNames("/data/img01.tif", { savedir: "/out" });
 * console.log(n.masksTif, n.seg); // "/out/img01_cp_masks.tif" "/data/img01_seg.npy"
 * ```
 * @module
 */
import { basename, dirname, extname, join } from "node:path";

/** Paths of every output cellpose can write for one image. */
export interface OutputNames {
  /** the image's file name without its extension */
  base: string;
  masksTif: string;
  masksPng: string;
  outlinesTxt: string;
  overlayPng: string;
  flowsTif: string;
  dpTif: string;
  cellprobTif: string;
  statsCsv: string;
  seg: string;
  rois: string;
}

/** Output names for `imagePath`; `savedir` defaults to the image's folder, `suffix` to "_cp_masks". */
export function outputNames(
  imagePath: string,
  options: { savedir?: string; suffix?: string } = {},
): OutputNames {
  const dir = dirname(imagePath);
  const base = basename(imagePath, extname(imagePath));
  const out = options.savedir ?? dir;
  const sfx = options.suffix ?? "_cp_masks";
  const at = (folder: string, tail: string) => join(folder, base + tail);
  return {
    base,
    masksTif: at(out, `${sfx}.tif`),
    masksPng: at(out, `${sfx}.png`),
    outlinesTxt: at(out, "_cp_outlines.txt"),
    overlayPng: at(out, `_outlines${sfx}.png`),
    flowsTif: at(out, `_flows${sfx}.tif`),
    dpTif: at(out, `_dP${sfx}.tif`),
    cellprobTif: at(out, `_cellprob${sfx}.tif`),
    statsCsv: at(out, `_stats${sfx}.csv`),
    seg: at(dir, "_seg.npy"),
    rois: at(dir, "_rois.zip"),
  };
}
