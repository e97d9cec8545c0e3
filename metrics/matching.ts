/**
 * Segmentation metrics of cellpose v4 `metrics.py`: the IoU matrix of two label images, true
 * positives at IoU thresholds, average precision `TP / (TP + FP + FN)`, and the paper's error
 * rate `(FP + FN) / (TP + FN)` at IoU 0.5.
 *
 * cellpose finds true positives with `linear_sum_assignment` on
 * `-(iou >= th) - iou / (2 * n_min)`: the optimum always holds a maximum number of pairs with
 * `iou >= th` (the IoU term sums to less than 1/2), so the count equals the size of a maximum
 * bipartite matching between masks over those pairs, which is what is computed here (augmenting
 * paths). As in cellpose, the number of masks of an image is its largest label.
 *
 * @example
 * ```ts
 * import { averagePrecision, errorRate } from "./matching.ts";
 * const gt = { data: new Uint16Array([1, 1, 0, 2, 2, 0]), shape: [2, 3] };
 * const pred = { data: new Uint16Array([1, 1, 0, 0, 0, 0]), shape: [2, 3] };
 * console.log(averagePrecision(gt, pred, [0.5])); // { ap: [0.5], tp: [1], fp: [0], fn: [1] }
 * console.log(errorRate(gt, pred)); // 0.5
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { maxLabel, toLabels } from "../core/labels.ts";

/** Per-threshold counts of {@link averagePrecision}. */
export interface MatchCounts {
  /** average precision `TP / (TP + FP + FN)` (float32, as cellpose) */
  ap: number[];
  /** true positives */
  tp: number[];
  /** false positives: predicted masks left unmatched */
  fp: number[];
  /** false negatives: ground-truth masks left unmatched */
  fn: number[];
}

/** Label images as `Uint32Array`s, checked to have the same shape. */
function pair(gt: NdArray, pred: NdArray): [Uint32Array, Uint32Array] {
  if (gt.shape.length !== pred.shape.length || gt.shape.some((d, k) => d !== pred.shape[k])) {
    throw new CellposeError(
      "BAD_SHAPE",
      `ground truth [${gt.shape}] and prediction [${pred.shape}] must have the same shape`,
      [gt.shape, pred.shape],
    );
  }
  return [toLabels(gt, "ground truth"), toLabels(pred, "prediction")];
}

/**
 * IoU of every ground-truth mask with every predicted mask (cellpose
 * `_intersection_over_union`, background row and column dropped).
 * @returns `[nTrue, nPred]` float64 matrix, `nTrue`/`nPred` the largest labels
 * @example
 * ```ts
 * import { intersectionOverUnion } from "./matching.ts";
 * const iou = intersectionOverUnion(
 *   { data: new Uint8Array([1, 1, 0]), shape: [1, 3] },
 *   { data: new Uint8Array([1, 0, 0]), shape: [1, 3] },
 * );
 * console.log(iou.data); // Float64Array [0.5]
 * ```
 */
export function intersectionOverUnion(gt: NdArray, pred: NdArray): NdArray<Float64Array> {
  const o = iouPairs(gt, pred);
  const iou = new Float64Array(o.nTrue * o.nPred);
  for (let k = 0; k < o.a.length; k++) iou[(o.a[k] - 1) * o.nPred + o.b[k] - 1] = o.iou[k];
  return { data: iou, shape: [o.nTrue, o.nPred] };
}

/** The overlapping mask pairs of two label images and their IoU (sparse). */
export interface IouPairs {
  /** largest ground-truth / predicted label */
  nTrue: number;
  /** largest predicted label */
  nPred: number;
  /** ground-truth label of each overlapping pair */
  a: number[];
  /** predicted label of each pair */
  b: number[];
  /** IoU of each pair (> 0) */
  iou: number[];
}

/**
 * The IoU of every overlapping (ground truth, prediction) pair of masks, without the dense
 * matrix (label images with many masks).
 * @example
 * ```ts
 * import { iouPairs } from "./matching.ts";
 * const p = iouPairs(
 *   { data: new Uint8Array([1, 1, 0]), shape: [1, 3] },
 *   { data: new Uint8Array([0, 1, 1]), shape: [1, 3] },
 * );
 * console.log(p.a, p.b, p.iou); // [1] [1] [0.333...]
 * ```
 */
export function iouPairs(gt: NdArray, pred: NdArray): IouPairs {
  const [t, p] = pair(gt, pred);
  return overlaps(t, p);
}

/** Largest label accepted: cellpose counts masks as the largest label, so labels must be dense. */
const MAX_LABEL = 2 ** 24;

function overlaps(t: Uint32Array, p: Uint32Array): IouPairs {
  const nTrue = maxLabel(t), nPred = maxLabel(p);
  if (nTrue > MAX_LABEL || nPred > MAX_LABEL) {
    throw new CellposeError(
      "BAD_VALUE",
      `labels must be at most ${MAX_LABEL} (masks are counted as the largest label, as in ` +
        `cellpose; renumber them 1..N), got ${Math.max(nTrue, nPred)}`,
      Math.max(nTrue, nPred),
    );
  }
  const areaT = new Float64Array(nTrue + 1), areaP = new Float64Array(nPred + 1);
  const inter = new Map<number, number>();
  const w = nPred + 1;
  for (let i = 0; i < t.length; i++) {
    const a = t[i], b = p[i];
    areaT[a]++;
    areaP[b]++;
    if (a && b) inter.set(a * w + b, (inter.get(a * w + b) ?? 0) + 1);
  }
  const o: IouPairs = { nTrue, nPred, a: [], b: [], iou: [] };
  for (const [key, n] of inter) {
    const a = Math.floor(key / w), b = key % w;
    o.a.push(a);
    o.b.push(b);
    o.iou.push(n / (areaT[a] + areaP[b] - n));
  }
  return o;
}

/** Size of a maximum matching between gt and predicted masks over the pairs with `iou >= th`. */
function truePositives(o: IouPairs, th: number): number {
  // every pair qualifies when th <= 0, including those that do not overlap
  if (th <= 0) return Math.min(o.nTrue, o.nPred);
  const adj: number[][] = Array.from({ length: o.nTrue + 1 }, () => []);
  for (let k = 0; k < o.a.length; k++) if (o.iou[k] >= th) adj[o.a[k]].push(o.b[k]);
  const matchOfPred = new Int32Array(o.nPred + 1).fill(-1);
  const seen = new Int32Array(o.nPred + 1).fill(-1);
  const augment = (a: number, stamp: number): boolean => {
    for (const b of adj[a]) {
      if (seen[b] === stamp) continue;
      seen[b] = stamp;
      if (matchOfPred[b] < 0 || augment(matchOfPred[b], stamp)) {
        matchOfPred[b] = a;
        return true;
      }
    }
    return false;
  };
  let tp = 0;
  for (let a = 1; a <= o.nTrue; a++) if (adj[a].length && augment(a, a)) tp++;
  return tp;
}

/**
 * Average precision, true positives, false positives and false negatives at each IoU threshold
 * (cellpose `metrics.average_precision` on one image).
 * @param gt ground-truth labels (any numeric dtype, non-negative integers)
 * @param pred predicted labels, same shape
 * @param thresholds IoU thresholds, default `[0.5, 0.75, 0.9]`
 * @throws CellposeError BAD_SHAPE if the shapes differ; BAD_VALUE for non-integer labels
 * @example
 * ```ts
 * import { averagePrecision } from "./matching.ts";
 * const m = { data: new Uint8Array([1, 1, 2, 2]), shape: [2, 2] };
 * console.log(averagePrecision(m, m).ap); // [1, 1, 1]
 * ```
 */
export function averagePrecision(
  gt: NdArray,
  pred: NdArray,
  thresholds: number[] = [0.5, 0.75, 0.9],
): MatchCounts {
  const [t, p] = pair(gt, pred);
  const o = overlaps(t, p);
  const nTrue = o.nTrue, nPred = o.nPred;
  const out: MatchCounts = { ap: [], tp: [], fp: [], fn: [] };
  for (const th of thresholds) {
    if (typeof th !== "number" || Number.isNaN(th)) {
      throw new CellposeError("BAD_PARAMETER", `IoU thresholds must be numbers, got ${th}`, th);
    }
    const tp = nPred > 0 ? truePositives(o, th) : 0;
    const fp = nPred - tp, fn = nTrue - tp;
    out.tp.push(tp);
    out.fp.push(fp);
    out.fn.push(fn);
    out.ap.push(Math.fround(tp / (tp + fp + fn)));
  }
  return out;
}

/**
 * The Cellpose paper's error rate of one image: `(FP + FN) / (TP + FN)` at IoU 0.5.
 * @example
 * ```ts
 * import { errorRate } from "./matching.ts";
 * const m = { data: new Uint8Array([1, 1, 2, 2]), shape: [2, 2] };
 * console.log(errorRate(m, m)); // 0
 * ```
 */
export function errorRate(gt: NdArray, pred: NdArray): number {
  const { tp, fp, fn } = averagePrecision(gt, pred, [0.5]);
  return (fp[0] + fn[0]) / (tp[0] + fn[0]);
}
