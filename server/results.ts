/**
 * What the server keeps of a finished segmentation (the label image, mask count, timings and,
 * unless turned off, the flows and cell probabilities for viewers) and how it is sent back in
 * each format of `GET /v1/jobs/:id/result?format=`: the library's output encoders and names
 * (`io/output_formats.ts`), so a result downloaded from the server is the CLI's file, byte for byte.
 *
 * @example
 * ```ts
 * import { encodeResult } from "./results.ts";
 * const stored = { masks: { data: new Uint16Array([0, 1, 1, 0]), shape: [2, 2] }, nMasks: 1,
 *   timings: {}, name: "cells.tif" };
 * const out = encodeResult(stored, "npy");
 * console.log(out.contentType, out.filename); // application/x-npy cells_cp_masks.npy
 * ```
 * @module
 */
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { SegmentResult } from "../core/types.ts";
import { CellposeError } from "../core/errors.ts";
import { ServerError } from "./errors.ts";
import {
  encodeOutput,
  outputFileName,
  type OutputKind,
  type OutputSource,
  resultSummary as summaryOf,
} from "../io/output_formats.ts";

/** The part of a {@link SegmentResult} the server stores. */
export interface StoredResult {
  masks: SegmentResult["masks"];
  nMasks: number;
  timings: Record<string, number>;
  /** the uploaded file's name, for download names */
  name: string;
  flows?: SegmentResult["flows"];
  cellprob?: SegmentResult["cellprob"];
  /** the segmented 2-D image, kept so that its corrected masks can train a model */
  image?: { data: NdArray<NumericArray>; channelAxis?: number };
}

/**
 * Keeps the masks, count and timings of `r`, its flows and cell probabilities if `keepFlows`, and
 * the input `image` when given.
 */
export function storeResult(
  r: SegmentResult,
  name: string,
  keepFlows: boolean,
  image?: StoredResult["image"],
): StoredResult {
  const kept: StoredResult = { masks: r.masks, nMasks: r.nMasks, timings: r.timings, name, image };
  return keepFlows ? { ...kept, flows: r.flows, cellprob: r.cellprob } : kept;
}

/** Bytes a stored result holds. */
export function storedBytes(r: StoredResult): number {
  return r.masks.data.byteLength + (r.flows?.data.byteLength ?? 0) +
    (r.cellprob?.data.byteLength ?? 0) + (r.image?.data.data.byteLength ?? 0);
}

/** Throws NOT_FOUND when the server did not keep `what` (started with keepFlows false). */
function kept<T>(v: T | undefined, what: string): T {
  if (v === undefined) {
    throw new ServerError(
      "NOT_FOUND",
      `this server does not keep ${what} (started with keepFlows false)`,
      { field: "format", got: what },
    );
  }
  return v;
}

/** Summary sent for `format=json` and in job views. */
export function resultSummary(r: StoredResult): Record<string, unknown> {
  return summaryOf(outputSource(r));
}

/** The output kind of each `format` (names and bytes as the CLI's files: `io/output_formats.ts`). */
const FORMATS: Record<string, OutputKind> = {
  json: "summary_json",
  tiff: "masks_tif",
  png: "masks_png",
  npy: "masks_npy",
  roi: "rois",
  csv: "stats_csv",
  outlines: "outlines_txt",
  flows: "dp_npy",
  cellprob: "cellprob_npy",
};

/** The accepted `format` values. */
export const RESULT_FORMATS: readonly string[] = Object.keys(FORMATS);

/** An encoded result ready to send. */
export interface EncodedResult {
  body: Uint8Array | string;
  contentType: string;
  filename: string;
}

/** Throws a `BAD_PARAMETER` naming the `format` field unless `format` is known. */
export function checkFormat(format: string): void {
  if (!(format in FORMATS)) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `format must be one of ${RESULT_FORMATS.join(", ")}, got ${
        JSON.stringify(format.slice(0, 50))
      }`,
      { field: "format", got: format.slice(0, 50) },
    );
  }
}

/** What the output encoders read of a stored result (with its image, when kept). */
function outputSource(r: StoredResult): OutputSource {
  return {
    masks: r.masks,
    flows: r.flows,
    cellprob: r.cellprob,
    nMasks: r.nMasks,
    timings: r.timings,
    image: r.image?.data,
    channelAxis: r.image?.channelAxis,
  };
}

/**
 * Encodes `r` as `format`, named as the CLI names the same file; an unknown format is a
 * `BAD_PARAMETER` naming the field, flows or cell probabilities not kept a `NOT_FOUND`.
 */
export function encodeResult(r: StoredResult, format: string): EncodedResult {
  checkFormat(format);
  const kind = FORMATS[format];
  if (format === "flows" || format === "cellprob") kept(r[format], format);
  const out = encodeOutput(kind, outputSource(r));
  return { body: out.bytes, contentType: out.contentType, filename: outputFileName(kind, r.name) };
}

/** `stored` with its masks replaced by `labels` (same shape, whole non-negative numbers). */
export function editedResult(stored: StoredResult, labels: NdArray<NumericArray>): StoredResult {
  const shape = stored.masks.shape;
  if (labels.shape.join() !== shape.join()) {
    throw new CellposeError(
      "BAD_SHAPE",
      `edited labels have shape [${labels.shape}], the job's masks [${shape}]`,
      { field: "labels", got: labels.shape },
    );
  }
  const masks = new Uint32Array(labels.data.length);
  const ids = new Set<number>();
  let max = 0;
  for (let i = 0; i < masks.length; i++) {
    const v = labels.data[i];
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new CellposeError(
        "BAD_VALUE",
        `edited labels must be whole numbers >= 0, found ${v} at element ${i}`,
        { field: "labels", got: v },
      );
    }
    masks[i] = v;
    if (v) ids.add(v);
    if (v > max) max = v;
  }
  const data = max <= 0xffff ? Uint16Array.from(masks) : masks;
  return { ...stored, masks: { data, shape }, nMasks: ids.size };
}
