/**
 * Per-mask measurements and their CSV table: label, area (pixels), centroid, bounding box
 * (start inclusive, end exclusive, as scikit-image's `regionprops`), and the mean image
 * intensity per channel inside the mask. Works on 2D `[H, W]` and 3D `[Z, H, W]` masks.
 *
 * @example
 * ```ts
 * import { maskStats, statsCsv } from "./stats.ts";
 * const masks = { data: new Uint16Array([0, 1, 1, 0, 2, 2]), shape: [2, 3] };
 * const image = { data: new Float32Array([5, 1, 3, 0, 4, 6]), shape: [2, 3] };
 * console.log(statsCsv(maskStats(masks, image)));
 * // label,area,centroid_y,centroid_x,bbox_y0,bbox_x0,bbox_y1,bbox_x1,mean_0
 * // 1,2,0,1.5,0,1,1,3,2
 * // 2,2,1,1.5,1,1,2,3,5
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { type NdArray, type NumericArray, size } from "../core/ndarray.ts";

/** Measurements of one mask; coordinates in axis order (z,) y, x. */
export interface MaskStat {
  /** the mask's label */
  label: number;
  /** pixels in the mask */
  area: number;
  /** mean coordinate per axis */
  centroid: number[];
  /** first index per axis */
  bboxStart: number[];
  /** one past the last index per axis */
  bboxEnd: number[];
  /** mean intensity per channel (empty without an image) */
  mean: number[];
}

/**
 * Measures every mask (ascending label). `image`, when given, has the masks' spatial shape plus
 * optionally a channel axis (`channelAxis`, default: last when the image has one more dimension
 * than the masks).
 */
export function maskStats(
  masks: NdArray<NumericArray>,
  image?: NdArray<NumericArray>,
  options: { channelAxis?: number } = {},
): MaskStat[] {
  const nd = masks.shape.length;
  if (nd !== 2 && nd !== 3) {
    throw new CellposeError(
      "BAD_SHAPE",
      `masks must be [H, W] or [Z, H, W], got [${masks.shape}]`,
      masks.shape,
    );
  }
  const n = size(masks.shape);
  let channels = 0, cStride = 1, pStride = 1;
  if (image) {
    const cAxis = image.shape.length === nd ? undefined : options.channelAxis ?? nd;
    const spatial = image.shape.filter((_, i) => i !== cAxis);
    if (spatial.join() !== masks.shape.join() || image.shape.length - nd > 1) {
      throw new CellposeError(
        "BAD_SHAPE",
        `image [${image.shape}] (channel axis ${cAxis}) must match masks [${masks.shape}]`,
        image.shape,
      );
    }
    channels = cAxis === undefined ? 1 : image.shape[cAxis];
    // element i of channel c sits at i * pStride + c * cStride when C is first or last
    if (cAxis === 0) cStride = n;
    else if (cAxis !== undefined && cAxis === nd) pStride = channels;
    else if (cAxis !== undefined) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `channelAxis must be 0 or ${nd} (first or last), got ${cAxis}`,
        cAxis,
      );
    }
  }
  const acc = new MaskStatsAccumulator(nd, channels);
  acc.add(masks.data, masks.shape, new Array(nd).fill(0), image?.data, pStride, cStride);
  return acc.stats();
}

/**
 * {@link maskStats} piece by piece, for label images met in parts (e.g. row bands of a huge
 * image): {@link add} each box of masks with its origin and image values, then {@link stats}.
 *
 * @example
 * ```ts
 * import { MaskStatsAccumulator } from "./stats.ts";
 * const acc = new MaskStatsAccumulator(2, 0);
 * acc.add(new Uint16Array([0, 1, 1]), [1, 3], [0, 0]); // row 0
 * acc.add(new Uint16Array([0, 1, 0]), [1, 3], [1, 0]); // row 1
 * console.log(acc.stats()[0]); // { label: 1, area: 3, centroid: [1 / 3, 4 / 3], bboxStart: [0, 1], bboxEnd: [2, 3], mean: [] }
 * ```
 */
export class MaskStatsAccumulator {
  readonly #nd: number;
  readonly #channels: number;
  readonly #byLabel = new Map<
    number,
    { sum: number[]; lo: number[]; hi: number[]; area: number; mean: number[] }
  >();

  /** For `nd`-D masks (2 or 3) and `channels` image channels (0: no intensities). */
  constructor(nd: number, channels: number) {
    this.#nd = nd;
    this.#channels = channels;
  }

  /**
   * Adds the masks `data` of a box of shape `dims` whose first element sits at `origin`; the
   * image value of element i, channel c, is `image[i * pStride + c * cStride]`.
   */
  add(
    data: NumericArray,
    dims: number[],
    origin: number[],
    image?: NumericArray,
    pStride = 1,
    cStride = 1,
  ): void {
    const nd = this.#nd, channels = image ? this.#channels : 0, n = size(dims);
    const idx = [...origin], end = dims.map((d, k) => d + origin[k]);
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if (v !== 0) {
        let s = this.#byLabel.get(v);
        if (!s) {
          s = {
            sum: new Array(nd).fill(0),
            lo: [...idx],
            hi: [...idx],
            area: 0,
            mean: new Array(this.#channels).fill(0),
          };
          this.#byLabel.set(v, s);
        }
        s.area++;
        for (let d = 0; d < nd; d++) {
          s.sum[d] += idx[d];
          if (idx[d] < s.lo[d]) s.lo[d] = idx[d];
          if (idx[d] > s.hi[d]) s.hi[d] = idx[d];
        }
        for (let c = 0; c < channels; c++) s.mean[c] += image![i * pStride + c * cStride];
      }
      for (let d = nd - 1; d >= 0; d--) {
        if (++idx[d] < end[d]) break;
        idx[d] = origin[d];
      }
    }
  }

  /** The measurements so far, by ascending label. */
  stats(): MaskStat[] {
    return [...this.#byLabel.entries()].sort((a, b) => a[0] - b[0]).map(([label, s]) => ({
      label,
      area: s.area,
      centroid: s.sum.map((x) => x / s.area),
      bboxStart: s.lo,
      bboxEnd: s.hi.map((x) => x + 1),
      mean: s.mean.map((x) => x / s.area),
    }));
  }
}

/** The measurements as CSV with a header line; 3D stats get z columns first. */
export function statsCsv(stats: MaskStat[]): string {
  const nd = stats[0]?.centroid.length ?? 2;
  const axes = nd === 3 ? ["z", "y", "x"] : ["y", "x"];
  const channels = stats[0]?.mean.length ?? 0;
  const header = [
    "label",
    "area",
    ...axes.map((a) => `centroid_${a}`),
    ...axes.map((a) => `bbox_${a}0`),
    ...axes.map((a) => `bbox_${a}1`),
    ...Array.from({ length: channels }, (_, c) => `mean_${c}`),
  ];
  const num = (x: number) => String(Number.isInteger(x) ? x : Number(x.toPrecision(7)));
  const rows = stats.map((s) =>
    [s.label, s.area, ...s.centroid, ...s.bboxStart, ...s.bboxEnd, ...s.mean].map(num).join(",")
  );
  return [header.join(","), ...rows].join("\n") + "\n";
}
