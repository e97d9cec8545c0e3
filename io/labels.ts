/**
 * Label images out: uint16 while every label fits (cellpose's default), uint32 past 65535
 * masks, written as Deflate TIFF (`.tif`/`.tiff`), 16-bit PNG (`.png`) or `.npy`, chosen by the
 * path's extension or an explicit format. Stacks `[Z, H, W]` go to TIFF or `.npy` only.
 *
 * @example
 * ```ts
 * import { encodeLabels, labelArray } from "./labels.ts";
 * const masks = { data: new Int32Array([0, 1, 2, 70000]), shape: [2, 2] };
 * console.log(labelArray(masks).data.constructor.name); // "Uint32Array"
 * const tif = encodeLabels(masks, "tif");
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { writeNpy } from "./npy.ts";
import { encodePng } from "./png.ts";
import { encodeTiff } from "./tiff_write.ts";

/** Formats a label image can be written in. */
export type LabelFormat = "tif" | "png" | "npy";

/** The masks as uint16 when the largest label is at most 65535, else uint32. */
export function labelArray(masks: NdArray<NumericArray>): NdArray<Uint16Array | Uint32Array> {
  const d = masks.data;
  const mayBeBad = d instanceof Float32Array || d instanceof Float64Array ||
    d instanceof Int8Array || d instanceof Int16Array || d instanceof Int32Array;
  let max = 0;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (mayBeBad && (v < 0 || !Number.isInteger(v))) {
      throw new CellposeError("BAD_VALUE", `labels must be non-negative integers, found ${v}`, v);
    }
    if (v > max) max = v;
  }
  if (max > 0xffffffff) {
    throw new CellposeError("BAD_VALUE", `label ${max} does not fit in uint32`, max);
  }
  const Ctor = max > 0xffff ? Uint32Array : Uint16Array;
  if (masks.data instanceof Ctor) return masks as NdArray<Uint16Array | Uint32Array>;
  return { data: Ctor.from(masks.data), shape: masks.shape };
}

/** Encodes a label image in `format`. */
export function encodeLabels(masks: NdArray<NumericArray>, format: LabelFormat): Uint8Array {
  const labels = labelArray(masks);
  if (format === "npy") return writeNpy(labels);
  if (format === "tif") return encodeTiff(labels, { compression: "deflate" });
  if (labels.shape.length !== 2) {
    throw new CellposeError(
      "BAD_SHAPE",
      `PNG labels must be 2D, got shape [${labels.shape}]`,
      labels.shape,
    );
  }
  if (labels.data instanceof Uint32Array) {
    throw new CellposeError(
      "BAD_VALUE",
      "more than 65535 masks do not fit in a 16-bit PNG: save as TIFF or .npy",
      labels.data.length,
    );
  }
  return encodePng(labels);
}

/**
 * Writes a label image to `path`, in the format of its extension (`.tif`, `.tiff`, `.png`,
 * `.npy`) unless `options.format` says otherwise.
 *
 * @example
 * ```ts
 * import { writeLabels } from "./labels.ts";
 * await writeLabels({ data: new Uint16Array(16), shape: [4, 4] }, "/tmp/img_cp_masks.tif");
 * ```
 */
export async function writeLabels(
  masks: NdArray<NumericArray>,
  path: string,
  options: { format?: LabelFormat } = {},
): Promise<void> {
  // no node:path here: this module also runs in the browser (the panel's exports)
  const ext = (/\.[^./\\]*$/.exec(path)?.[0] ?? "").toLowerCase();
  const byExt: Record<string, LabelFormat> = {
    ".tif": "tif",
    ".tiff": "tif",
    ".png": "png",
    ".npy": "npy",
  };
  const format = options.format ?? byExt[ext];
  if (!format) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `cannot tell the label format of '${path}': use .tif, .tiff, .png or .npy, or pass a format`,
      path,
    );
  }
  await Deno.writeFile(path, encodeLabels(masks, format));
}
