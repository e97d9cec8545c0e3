/**
 * What the server keeps of a finished segmentation (the label image, mask count, timings and,
 * unless turned off, the flows and cell probabilities for viewers) and how it is sent back in
 * each format of `GET /v1/jobs/:id/result?format=`.
 *
 * @example
 * ```ts
 * import { encodeResult } from "./results.ts";
 * const stored = { masks: { data: new Uint16Array([0, 1, 1, 0]), shape: [2, 2] }, nMasks: 1,
 *   timings: {}, name: "cells.tif" };
 * const out = encodeResult(stored, "npy");
 * console.log(out.contentType, out.filename); // application/x-npy cells_masks.npy
 * ```
 * @module
 */
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { SegmentResult } from "../core/types.ts";
import { CellposeError } from "../core/errors.ts";
import { ServerError } from "./errors.ts";
import { writeNpy } from "../io/npy.ts";
import { encodeLabels } from "../io/labels.ts";
import { encodeRoiZip } from "../io/roi.ts";
import { maskStats, statsCsv } from "../io/stats.ts";
import { masksToOutlines, outlinesText } from "../io/outlines.ts";

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

/** Summary sent for `format=json` and in job views. */
export function resultSummary(r: StoredResult): Record<string, unknown> {
  return {
    nMasks: r.nMasks,
    shape: r.masks.shape,
    dtype: r.masks.data instanceof Uint32Array ? "uint32" : "uint16",
    timings: r.timings,
  };
}

interface Format {
  contentType: string;
  suffix: string;
  encode(r: StoredResult): Uint8Array | string;
}

const NPY = "application/x-npy";

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

const FORMATS: Record<string, Format> = {
  json: {
    contentType: "application/json; charset=utf-8",
    suffix: "_masks.json",
    encode: (r) => JSON.stringify(resultSummary(r)),
  },
  tiff: {
    contentType: "image/tiff",
    suffix: "_masks.tif",
    encode: (r) => encodeLabels(r.masks, "tif"),
  },
  png: {
    contentType: "image/png",
    suffix: "_masks.png",
    encode: (r) => encodeLabels(r.masks, "png"),
  },
  npy: { contentType: NPY, suffix: "_masks.npy", encode: (r) => encodeLabels(r.masks, "npy") },
  roi: {
    contentType: "application/zip",
    suffix: "_rois.zip",
    encode: (r) => encodeRoiZip(r.masks),
  },
  csv: {
    contentType: "text/csv; charset=utf-8",
    suffix: "_stats.csv",
    encode: (r) => statsCsv(maskStats(r.masks)),
  },
  outlines: {
    contentType: "text/plain; charset=utf-8",
    suffix: "_cp_outlines.txt",
    encode: (r) => outlinesText(masksToOutlines(r.masks)),
  },
  flows: {
    contentType: NPY,
    suffix: "_flows.npy",
    encode: (r) => writeNpy(kept(r.flows, "flows")),
  },
  cellprob: {
    contentType: NPY,
    suffix: "_cellprob.npy",
    encode: (r) => writeNpy(kept(r.cellprob, "cellprob")),
  },
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
      `format must be one of ${RESULT_FORMATS.join(", ")}, got ${JSON.stringify(format)}`,
      { field: "format", got: format },
    );
  }
}

/** Encodes `r` as `format`; an unknown format is a `BAD_PARAMETER` naming the field. */
export function encodeResult(r: StoredResult, format: string): EncodedResult {
  checkFormat(format);
  const f = FORMATS[format];
  const base = r.name.replace(/\.[^.]*$/, "") || "image";
  return { body: f.encode(r), contentType: f.contentType, filename: base + f.suffix };
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
