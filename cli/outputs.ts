/**
 * The output flags of `segment` (`--save_tif`, `--save_rois`, `--savedir` ...) and writing the
 * chosen files for one image, named as cellpose names them, through the library's writers.
 *
 * @example
 * ```ts
 * import { writeOutputs } from "./outputs.ts";
 * import { readImage, segment, loadModel } from "../mod.ts";
 * const read = await readImage("cells.png");
 * const model = await loadModel("cpsam");
 * const result = await segment(read.image, { model });
 * const written = await writeOutputs("cells.png", read, result, {
 *   savedir: "out", no_npy: false, save_tif: true, save_png: false, save_txt: false,
 *   save_outlines: false, save_rois: true, save_flows: false, save_csv: false,
 * });
 * console.log(written); // ["out/cells_seg.npy", "out/cells_cp_masks.tif", "out/cells_rois.zip"]
 * ```
 * @module
 */
import { basename, join, resolve } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { transpose } from "../core/transpose.ts";
import type { SegmentResult } from "../core/types.ts";
import {
  type LoadedImage,
  maskStats,
  masksToOutlines,
  outlineOverlayPng,
  outlinesText,
  outputNames,
  statsCsv,
  writeLabels,
  writeRoiZip,
  writeSegNpy,
  writeTiff,
} from "../mod.ts";

/** The output flags. */
export const outputOptions = {
  savedir: {
    kind: "string",
    placeholder: "FOLDER",
    description: "write all outputs into this folder (created if needed). Default: next to " +
      "each image",
    group: "Output",
  },
  no_npy: {
    kind: "boolean",
    description: "do not write <name>_seg.npy (masks, outlines and flows for the cellpose GUI, " +
      "written by default)",
    group: "Output",
  },
  save_tif: {
    kind: "boolean",
    description: "write the label image <name>_cp_masks.tif",
    group: "Output",
  },
  save_png: {
    kind: "boolean",
    description: "write the label image <name>_cp_masks.png (16-bit, 2D only)",
    group: "Output",
  },
  save_txt: {
    kind: "boolean",
    description: "write outlines <name>_cp_outlines.txt (one cell per line: x1,y1,x2,y2,...; " +
      "2D only)",
    group: "Output",
  },
  save_outlines: {
    kind: "boolean",
    description: "write <name>_outlines_cp_masks.png: the image with the cell outlines drawn " +
      "on it (2D only)",
    group: "Output",
  },
  save_rois: {
    kind: "boolean",
    description: "write <name>_rois.zip, an ImageJ/Fiji ROI set (open with the ROI Manager)",
    group: "Output",
  },
  save_flows: {
    kind: "boolean",
    description: "write the network outputs: flows <name>_dP_cp_masks.tif (dY, dX) and cell " +
      "probability <name>_cellprob_cp_masks.tif",
    group: "Output",
  },
  save_csv: {
    kind: "boolean",
    description: "write <name>_stats_cp_masks.csv: label, area, centroid, bounding box and " +
      "mean intensity per cell",
    group: "Output",
  },
  json: {
    kind: "boolean",
    description: "print one JSON line per image on stdout (path, nMasks, outputs, timings)",
    group: "Output",
  },
} as const;

/** The parsed output flags that {@link writeOutputs} reads. */
export interface OutputArgs {
  savedir?: string;
  no_npy: boolean;
  save_tif: boolean;
  save_png: boolean;
  save_txt: boolean;
  save_outlines: boolean;
  save_rois: boolean;
  save_flows: boolean;
  save_csv: boolean;
}

function only2D(what: string, masks: NdArray): void {
  if (masks.shape.length !== 2) {
    throw new CellposeError(
      "UNSUPPORTED",
      `${what} is for 2D images; these masks have shape [${masks.shape}] (use --save_tif or ` +
        "--save_rois for stacks)",
      masks.shape,
    );
  }
}

/** Flows [2, H, W] as CYX, or [3, Z, H, W] moved to Z, C, H, W (the page order of stacks). */
function flowsForTiff(
  flows: NdArray<Float32Array>,
): { array: NdArray<Float32Array>; axes: string } {
  if (flows.shape.length === 3) return { array: flows, axes: "CYX" };
  return { array: transpose(flows, [1, 0, 2, 3]), axes: "ZCYX" };
}

/** The image for intensity statistics, when its channels are first or last (else none). */
function statsImage(read: LoadedImage, masks: NdArray): NdArray<NumericArray> | undefined {
  const { image, channelAxis } = read;
  const nd = masks.shape.length;
  if (image.shape.length === nd) return image;
  if (image.shape.length === nd + 1 && (channelAxis === 0 || channelAxis === nd)) return image;
  return undefined;
}

/** Whether `args` asks for any output at all. */
export function wantsOutput(args: OutputArgs): boolean {
  return !args.no_npy || args.save_tif || args.save_png || args.save_txt || args.save_outlines ||
    args.save_rois || args.save_flows || args.save_csv;
}

/**
 * Writes the outputs that `args` asks for and returns their paths. Unlike cellpose, `--savedir`
 * also takes `_seg.npy` and the ROI set, so images in read-only folders can be segmented.
 */
export async function writeOutputs(
  imagePath: string,
  read: LoadedImage,
  result: SegmentResult,
  args: OutputArgs & { diameter?: number },
): Promise<string[]> {
  if (args.savedir) await Deno.mkdir(args.savedir, { recursive: true });
  const names = outputNames(imagePath, { savedir: args.savedir });
  const inSavedir = (path: string) => args.savedir ? join(args.savedir, basename(path)) : path;
  const { masks } = result;
  const written: string[] = [];
  if (!args.no_npy) {
    const seg = inSavedir(names.seg);
    const flat = masks.shape.length === 2;
    await writeSegNpy(seg, {
      masks,
      filename: resolve(imagePath),
      flows: flat ? result.flows : undefined,
      cellprob: flat ? result.cellprob : undefined,
      diameter: args.diameter,
    });
    written.push(seg);
  }
  if (args.save_tif) {
    await writeLabels(masks, names.masksTif);
    written.push(names.masksTif);
  }
  if (args.save_png) {
    only2D("--save_png", masks);
    await writeLabels(masks, names.masksPng);
    written.push(names.masksPng);
  }
  if (args.save_txt) {
    only2D("--save_txt", masks);
    await Deno.writeTextFile(names.outlinesTxt, outlinesText(masksToOutlines(masks)));
    written.push(names.outlinesTxt);
  }
  if (args.save_outlines) {
    only2D("--save_outlines", masks);
    const png = outlineOverlayPng(read.image, masks, { channelAxis: read.channelAxis });
    await Deno.writeFile(names.overlayPng, png);
    written.push(names.overlayPng);
  }
  if (args.save_rois) {
    const rois = inSavedir(names.rois);
    await writeRoiZip(rois, masks);
    written.push(rois);
  }
  if (args.save_flows) {
    const { array, axes } = flowsForTiff(result.flows);
    await writeTiff(names.dpTif, array, { axes, compression: "deflate" });
    await writeTiff(names.cellprobTif, result.cellprob, { compression: "deflate" });
    written.push(names.dpTif, names.cellprobTif);
  }
  if (args.save_csv) {
    const stats = maskStats(masks, statsImage(read, masks), { channelAxis: read.channelAxis });
    await Deno.writeTextFile(names.statsCsv, statsCsv(stats));
    written.push(names.statsCsv);
  }
  return written;
}
