/**
 * Output file names as cellpose v4 makes them for an input image `<dir>/<base>.<ext>`:
 * masks `<savedir>/<base>_cp_masks<suffix>.tif|.png`, outlines text
 * `<savedir>/<base>_cp_outlines.txt`, overlay `<savedir>/<base>_outlines<suffix>.png`, flows
 * `<savedir>/<base>_flows<suffix>.tif`, and beside the image (cellpose writes these next to the
 * input whatever `savedir` is) the `_seg.npy` and the ImageJ `_rois.zip`. Cell probability is
 * not saved by cellpose's CLI; `<base>_cellprob<suffix>.tif` follows the same pattern.
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
  cellprobTif: string;
  seg: string;
  rois: string;
  statsCsv: string;
}

/** Output names for `imagePath`; `savedir` defaults to the image's folder, `suffix` to "". */
export function outputNames(
  imagePath: string,
  options: { savedir?: string; suffix?: string } = {},
): OutputNames {
  const dir = dirname(imagePath);
  const base = basename(imagePath, extname(imagePath));
  const out = options.savedir ?? dir;
  const sfx = options.suffix ?? "";
  const at = (folder: string, tail: string) => join(folder, base + tail);
  return {
    base,
    masksTif: at(out, `_cp_masks${sfx}.tif`),
    masksPng: at(out, `_cp_masks${sfx}.png`),
    outlinesTxt: at(out, "_cp_outlines.txt"),
    overlayPng: at(out, `_outlines${sfx}.png`),
    flowsTif: at(out, `_flows${sfx}.tif`),
    cellprobTif: at(out, `_cellprob${sfx}.tif`),
    seg: at(dir, "_seg.npy"),
    rois: at(dir, "_rois.zip"),
    statsCsv: at(out, `_cp_stats${sfx}.csv`),
  };
}
