/**
 * The output flags of `segment` (`--save_tif`, `--save_rois`, `--savedir` ...) and writing the
 * chosen files for one image, named as cellpose names them, through the library's writers.
 *
 * @example
 * ```ts ignore
 * import { writeOutputs } from "./outputs.ts";
 * import { loadModel, readImage, segment } from "../mod.ts";
 * const { image } = await readImage("cells.png");
 * const model = await loadModel("cpsam");
 * const result = await segment(image, { model });
 * const { written } = await writeOutputs("cells.png", result, { image }, {
 *   savedir: "out", no_npy: false, save_tif: true, save_png: false, save_txt: false,
 *   save_outlines: false, save_rois: true, save_flows: false, save_csv: false,
 * });
 * console.log(written); // ["out/cells_seg.npy", "out/cells_cp_masks.tif", "out/cells_rois.zip"]
 * ```
 * @module
 */
import { basename, join, resolve } from "node:path";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { transpose } from "../core/transpose.ts";
import { partialPath } from "../io/label_sink.ts";
import type { SegmentResult } from "../core/types.ts";
import {
  encodeLabels,
  encodeRoiZip,
  encodeSegNpy,
  encodeTiff,
  maskStats,
  masksToOutlines,
  outlineOverlayPng,
  outlinesText,
  outputNames,
  statsCsv,
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
    description: "print one JSON line per image on stdout: path, nMasks, outputs, timings " +
      "(ms), or path, error, code",
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

/** Flows [2, H, W] as CYX, or [2|3, Z, H, W] moved to Z, C, H, W (the page order of stacks). */
function flowsForTiff(
  flows: NdArray<Float32Array>,
): { array: NdArray<Float32Array>; axes: string } {
  if (flows.shape.length === 3) return { array: flows, axes: "CYX" };
  return { array: transpose(flows, [1, 0, 2, 3]), axes: "ZCYX" };
}

/**
 * The image beside its masks: its channel axis (the given one, else the one axis whose removal
 * leaves the masks' shape), if first or last as the overlay and statistics need; `undefined`
 * when the image cannot be laid over the masks.
 */
function alignedImage(
  image: NdArray<NumericArray>,
  masks: NdArray,
  channelAxis: number | undefined,
): { image: NdArray<NumericArray>; channelAxis?: number } | undefined {
  const nd = masks.shape.length;
  const same = (shape: number[]) => shape.join() === masks.shape.join();
  if (image.shape.length === nd) return same(image.shape) ? { image } : undefined;
  if (image.shape.length !== nd + 1) return undefined;
  const axis = [channelAxis ?? nd, 0, nd].find((k) => same(image.shape.filter((_, i) => i !== k)));
  return axis === 0 || axis === nd ? { image, channelAxis: axis } : undefined;
}

/**
 * Whether `args` asks for any output at all (`--no_npy` alone does not).
 *
 * @example
 * ```ts
 * import { wantsOutput } from "./outputs.ts";
 * const none = { no_npy: true, save_tif: false, save_png: false, save_txt: false,
 *   save_outlines: false, save_rois: false, save_flows: false, save_csv: false };
 * console.log(wantsOutput(none), wantsOutput({ ...none, save_tif: true })); // false true
 * ```
 */
export function wantsOutput(args: OutputArgs): boolean {
  return !args.no_npy || args.save_tif || args.save_png || args.save_txt || args.save_outlines ||
    args.save_rois || args.save_flows || args.save_csv;
}

/** What {@link writeOutputs} did. */
export interface WrittenOutputs {
  /** paths written, in the order of the flags */
  written: string[];
  /** outputs that do not apply to this image, and why (e.g. PNG labels of a stack) */
  skipped: string[];
}

/** How the image was read and segmented, for the outputs that need more than the masks. */
export interface OutputContext {
  /** the input image as read */
  image: NdArray<NumericArray>;
  /** its channel axis, when known */
  channelAxis?: number;
  /** the diameter given, stored in `_seg.npy` */
  diameter?: number;
}

/**
 * Writes the outputs that `args` asks for. Outputs made for 2D images (PNG labels, outlines) are
 * skipped for stacks, with the reason. Unlike cellpose, `--savedir` also takes `_seg.npy` and the
 * ROI set, so images in read-only folders can be segmented. Each file is written under a hidden
 * temporary name and all are renamed once every one is written: a failure (a full disk, a folder
 * in the way) leaves none of the image's outputs behind. (Example: the module doc.)
 */
export async function writeOutputs(
  imagePath: string,
  result: SegmentResult,
  context: OutputContext,
  args: OutputArgs,
): Promise<WrittenOutputs> {
  if (args.savedir) await Deno.mkdir(args.savedir, { recursive: true });
  const names = outputNames(imagePath, { savedir: args.savedir });
  const inSavedir = (path: string) => args.savedir ? join(args.savedir, basename(path)) : path;
  const { masks } = result;
  const flat = masks.shape.length === 2;
  const written: string[] = [];
  const skipped: string[] = [];
  // each file is written under a hidden temporary name; all are renamed once every one is
  // written, so a failure half-way leaves none of this image's outputs behind
  const staged: [partial: string, path: string][] = [];
  const write = async (path: string, bytes: Uint8Array | string) => {
    const partial = partialPath(path);
    staged.push([partial, path]);
    if (typeof bytes === "string") await Deno.writeTextFile(partial, bytes);
    else await Deno.writeFile(partial, bytes);
  };
  try {
    await writeChosen();
    for (const [partial, path] of staged) {
      await Deno.rename(partial, path);
      written.push(path);
    }
  } catch (e) {
    for (const [partial] of staged) await Deno.remove(partial).catch(() => {});
    for (const path of written) await Deno.remove(path).catch(() => {});
    throw e;
  }
  return { written, skipped };

  async function writeChosen() {
    const flatOnly = (flag: string) => {
      if (!flat) skipped.push(`${flag}: for 2D images only (masks [${masks.shape}])`);
      return flat;
    };
    const aligned = alignedImage(context.image, masks, context.channelAxis);
    if (!args.no_npy) {
      await write(
        inSavedir(names.seg),
        encodeSegNpy({
          masks,
          filename: resolve(imagePath),
          flows: flat ? result.flows : undefined,
          cellprob: flat ? result.cellprob : undefined,
          diameter: context.diameter,
        }),
      );
    }
    if (args.save_tif) await write(names.masksTif, encodeLabels(masks, "tif"));
    if (args.save_png && flatOnly("--save_png")) {
      await write(names.masksPng, encodeLabels(masks, "png"));
    }
    if (args.save_txt && flatOnly("--save_txt")) {
      await write(names.outlinesTxt, outlinesText(masksToOutlines(masks)));
    }
    if (args.save_outlines && flatOnly("--save_outlines")) {
      if (aligned) {
        await write(
          names.overlayPng,
          outlineOverlayPng(aligned.image, masks, { channelAxis: aligned.channelAxis }),
        );
      } else {skipped.push(
          `--save_outlines: image [${context.image.shape}] does not match the masks`,
        );}
    }
    if (args.save_rois) await write(inSavedir(names.rois), encodeRoiZip(masks));
    if (args.save_flows) {
      const { array, axes } = flowsForTiff(result.flows);
      await write(names.dpTif, encodeTiff(array, { axes, compression: "deflate" }));
      await write(names.cellprobTif, encodeTiff(result.cellprob, { compression: "deflate" }));
    }
    if (args.save_csv) {
      const stats = maskStats(masks, aligned?.image, { channelAxis: aligned?.channelAxis });
      await write(names.statsCsv, statsCsv(stats));
    }
  }
}
