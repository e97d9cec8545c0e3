/**
 * The output flags of `segment` (`--save_tif`, `--save_rois`, `--savedir` ...) and writing the
 * chosen files for one image through the library's `saveOutputs` (named as cellpose names them,
 * as the server names its results).
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
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { SegmentResult } from "../core/types.ts";
import { type OutputKind, saveOutputs } from "../mod.ts";

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

/** The flag of each output kind. */
const FLAG_KINDS: readonly [keyof OutputArgs, string, OutputKind[]][] = [
  ["save_tif", "--save_tif", ["masks_tif"]],
  ["save_png", "--save_png", ["masks_png"]],
  ["save_txt", "--save_txt", ["outlines_txt"]],
  ["save_outlines", "--save_outlines", ["overlay_png"]],
  ["save_rois", "--save_rois", ["rois"]],
  ["save_flows", "--save_flows", ["dp_tif", "cellprob_tif"]],
  ["save_csv", "--save_csv", ["stats_csv"]],
];

/**
 * Writes the outputs that `args` asks for through the library's {@link saveOutputs} (one naming
 * rule with the server). Outputs made for 2D images (PNG labels, outlines) are skipped for
 * stacks, with the reason. (Example: the module doc.)
 */
export async function writeOutputs(
  imagePath: string,
  result: SegmentResult,
  context: OutputContext,
  args: OutputArgs,
): Promise<WrittenOutputs> {
  const kinds: OutputKind[] = args.no_npy ? [] : ["seg"];
  const flagOf = new Map<string, string>([["seg", "--no_npy"]]);
  for (const [key, flag, ks] of FLAG_KINDS) {
    if (!args[key]) continue;
    kinds.push(...ks);
    for (const k of ks) flagOf.set(k, flag);
  }
  const { written, skipped } = await saveOutputs(imagePath, { ...result, ...context }, kinds, {
    savedir: args.savedir,
  });
  // "kind: reason" as the flag the user typed
  const named = skipped.map((s) => {
    const [kind, ...reason] = s.split(": ");
    return `${flagOf.get(kind) ?? kind}: ${reason.join(": ")}`;
  });
  return { written, skipped: named };
}
