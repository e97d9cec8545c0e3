/**
 * Every output file of a segmentation in one table: its name (cellpose's rule, `io.save_masks`
 * with `suffix="_cp_masks"`), its MIME type, and the encoder that makes its bytes from a result.
 * The CLI's files (`saveOutputs`), the server's `GET /v1/jobs/:id/result?format=` and the panel's
 * exports all encode and name through it, so the same output has the same name and bytes
 * everywhere. No file system here: the browser panel uses it too.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { encodeOutput, outputFileName } from "./output_formats.ts";
 * const masks = { data: new Uint16Array([0, 1, 1, 0]), shape: [2, 2] };
 * assertEquals(outputFileName("masks_tif", "cells.tif"), "cells_cp_masks.tif");
 * assertEquals(encodeOutput("outlines_txt", { masks }).contentType, "text/plain; charset=utf-8");
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { maxLabel } from "../core/labels.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { transpose } from "../core/transpose.ts";
import { encodeLabels } from "./labels.ts";
import { writeNpy } from "./npy.ts";
import { masksToOutlines, outlineOverlayPng, outlinesText } from "./outlines.ts";
import { encodeRoiZip } from "./roi.ts";
import { encodeSegNpy } from "./seg_npy.ts";
import { maskStats, statsCsv } from "./stats.ts";
import { encodeTiff } from "./tiff_write.ts";

/** The outputs one segmentation can have. */
export type OutputKind =
  | "seg"
  | "masks_tif"
  | "masks_png"
  | "masks_npy"
  | "outlines_txt"
  | "overlay_png"
  | "rois"
  | "dp_tif"
  | "cellprob_tif"
  | "dp_npy"
  | "cellprob_npy"
  | "stats_csv"
  | "summary_json";

/** What the outputs are made from: the result, and for some of them the image it came from. */
export interface OutputSource {
  /** the label image, [H, W] or [Z, H, W] */
  masks: NdArray<Uint16Array | Uint32Array>;
  /** network flows: [2, H, W], [3, Z, H, W] or [2, Z, H, W] */
  flows?: NdArray<Float32Array>;
  /** cell probability logits */
  cellprob?: NdArray<Float32Array>;
  /** number of masks (default: the largest label) */
  nMasks?: number;
  /** milliseconds per stage, for the summary */
  timings?: Record<string, number>;
  /** the segmented image as read, for the overlay, the statistics' intensities and `_seg.npy` */
  image?: NdArray<NumericArray>;
  /** its channel axis, when known */
  channelAxis?: number;
  /** the diameter given, stored in `_seg.npy` */
  diameter?: number;
  /** the image's path, stored in `_seg.npy` */
  filename?: string;
}

/** An encoded output. */
export interface EncodedOutput {
  /** the file's bytes (or text) */
  bytes: Uint8Array | string;
  /** its MIME type */
  contentType: string;
}

interface Format {
  /** the end of the file name after the image's base name, for the masks suffix `sfx` */
  tail(sfx: string): string;
  contentType: string;
  /** why this output does not apply to `src`, if it does not */
  skip?(src: OutputSource): string | undefined;
  encode(src: OutputSource): Uint8Array | string;
}

const NPY = "application/x-npy";
const flatOnly = (src: OutputSource) =>
  src.masks.shape.length === 2 ? undefined : `for 2D images only (masks [${src.masks.shape}])`;
const needs = (what: "flows" | "cellprob") => (src: OutputSource) =>
  src[what] ? undefined : `no ${what} in the result`;

/** Flows [2, H, W] as CYX, or [2|3, Z, H, W] moved to Z, C, H, W (the page order of stacks). */
function flowsForTiff(flows: NdArray<Float32Array>): Uint8Array {
  if (flows.shape.length === 3) return encodeTiff(flows, { axes: "CYX", compression: "deflate" });
  return encodeTiff(transpose(flows, [1, 0, 2, 3]), { axes: "ZCYX", compression: "deflate" });
}

/**
 * The image beside its masks: its channel axis (the given one, else the one axis whose removal
 * leaves the masks' shape), if first or last as the overlay and statistics need; `undefined`
 * when the image cannot be laid over the masks.
 */
export function alignedImage(
  src: OutputSource,
): { image: NdArray<NumericArray>; channelAxis?: number } | undefined {
  const { image, masks } = src;
  if (!image) return undefined;
  const nd = masks.shape.length;
  const same = (shape: number[]) => shape.join() === masks.shape.join();
  if (image.shape.length === nd) return same(image.shape) ? { image } : undefined;
  if (image.shape.length !== nd + 1) return undefined;
  const axis = [src.channelAxis ?? nd, 0, nd].find((k) =>
    same(image.shape.filter((_, i) => i !== k))
  );
  return axis === 0 || axis === nd ? { image, channelAxis: axis } : undefined;
}

/** The summary of a result: mask count, shape, label type, timings. */
export function resultSummary(src: OutputSource): Record<string, unknown> {
  return {
    nMasks: src.nMasks ?? maxLabel(src.masks.data),
    shape: src.masks.shape,
    dtype: src.masks.data instanceof Uint32Array ? "uint32" : "uint16",
    timings: src.timings ?? {},
  };
}

const FORMATS: Record<OutputKind, Format> = {
  seg: {
    tail: () => "_seg.npy",
    contentType: NPY,
    encode: (src) => {
      const flat = src.masks.shape.length === 2;
      return encodeSegNpy({
        masks: src.masks,
        filename: src.filename ?? "",
        flows: flat ? src.flows : undefined,
        cellprob: flat ? src.cellprob : undefined,
        diameter: src.diameter,
      });
    },
  },
  masks_tif: {
    tail: (s) => `${s}.tif`,
    contentType: "image/tiff",
    encode: (src) => encodeLabels(src.masks, "tif"),
  },
  masks_png: {
    tail: (s) => `${s}.png`,
    contentType: "image/png",
    skip: flatOnly,
    encode: (src) => encodeLabels(src.masks, "png"),
  },
  masks_npy: {
    tail: (s) => `${s}.npy`,
    contentType: NPY,
    encode: (src) => encodeLabels(src.masks, "npy"),
  },
  outlines_txt: {
    tail: () => "_cp_outlines.txt",
    contentType: "text/plain; charset=utf-8",
    skip: flatOnly,
    encode: (src) => outlinesText(masksToOutlines(src.masks)),
  },
  overlay_png: {
    tail: (s) => `_outlines${s}.png`,
    contentType: "image/png",
    skip: (src) =>
      flatOnly(src) ??
        (alignedImage(src)
          ? undefined
          : `image [${src.image?.shape ?? "none"}] does not match the masks`),
    encode: (src) => {
      const a = alignedImage(src)!;
      return outlineOverlayPng(a.image, src.masks, { channelAxis: a.channelAxis });
    },
  },
  rois: {
    tail: () => "_rois.zip",
    contentType: "application/zip",
    encode: (src) => encodeRoiZip(src.masks),
  },
  dp_tif: {
    tail: (s) => `_dP${s}.tif`,
    contentType: "image/tiff",
    skip: needs("flows"),
    encode: (src) => flowsForTiff(src.flows!),
  },
  cellprob_tif: {
    tail: (s) => `_cellprob${s}.tif`,
    contentType: "image/tiff",
    skip: needs("cellprob"),
    encode: (src) => encodeTiff(src.cellprob!, { compression: "deflate" }),
  },
  dp_npy: {
    tail: (s) => `_dP${s}.npy`,
    contentType: NPY,
    skip: needs("flows"),
    encode: (src) => writeNpy(src.flows!),
  },
  cellprob_npy: {
    tail: (s) => `_cellprob${s}.npy`,
    contentType: NPY,
    skip: needs("cellprob"),
    encode: (src) => writeNpy(src.cellprob!),
  },
  stats_csv: {
    tail: (s) => `_stats${s}.csv`,
    contentType: "text/csv; charset=utf-8",
    encode: (src) => {
      const a = alignedImage(src);
      return statsCsv(maskStats(src.masks, a?.image, { channelAxis: a?.channelAxis }));
    },
  },
  summary_json: {
    tail: (s) => `${s}.json`,
    contentType: "application/json; charset=utf-8",
    encode: (src) => JSON.stringify(resultSummary(src)),
  },
};

/** Every output kind, in the order outputs are written. */
export const OUTPUT_KINDS: readonly OutputKind[] = Object.keys(FORMATS) as OutputKind[];

/** The masks suffix of cellpose's output names. */
export const MASKS_SUFFIX = "_cp_masks";

/** The image's file name without folder and extension ("image" when empty). */
export function imageBase(imageName: string): string {
  const file = imageName.split(/[\\/]/).pop() ?? "";
  return file.replace(/\.[^.]*$/, "") || "image";
}

/** The file name (no folder) of output `kind` for the image `imageName`. */
export function outputFileName(kind: OutputKind, imageName: string, suffix = MASKS_SUFFIX): string {
  return imageBase(imageName) + FORMATS[kind].tail(suffix);
}

/** Why output `kind` does not apply to `src` (e.g. PNG labels of a stack), or `undefined`. */
export function outputSkipReason(kind: OutputKind, src: OutputSource): string | undefined {
  return FORMATS[kind].skip?.(src);
}

/**
 * Encodes output `kind` of `src`; throws `UNSUPPORTED` with the reason when it does not apply
 * (see {@link outputSkipReason}).
 */
export function encodeOutput(kind: OutputKind, src: OutputSource): EncodedOutput {
  const f = FORMATS[kind];
  const reason = f.skip?.(src);
  if (reason) throw new CellposeError("UNSUPPORTED", `${kind}: ${reason}`, kind);
  return { bytes: f.encode(src), contentType: f.contentType };
}
