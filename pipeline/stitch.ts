/**
 * Stitching of per-plane 2-D masks into 3-D masks by IoU (cellpose `utils.stitch3D`): plane by
 * plane, each mask of plane z+1 takes the label of the mask of plane z it overlaps best, when
 * that IoU reaches the threshold and no other mask of z+1 overlaps that label better; the
 * others get new labels. Until the first pair of planes that both hold masks, planes keep their
 * own labels (as in cellpose).
 *
 * @example
 * ```ts
 * import { stitchPlanes } from "./stitch.ts";
 * // two 1 x 4 planes: a mask at x 0..1 in both, shifted by one pixel
 * const labels = Uint32Array.from([1, 1, 0, 0, 0, 1, 1, 0]);
 * stitchPlanes(labels, [2, 1, 4], 0.25);
 * console.log(Array.from(labels)); // [1, 1, 0, 0, 0, 1, 1, 0]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { maxLabel } from "../core/labels.ts";
import { iouPairs } from "../metrics/matching.ts";

/**
 * Relabels a stack of 2-D label planes [Z, H, W] in place so that masks overlapping across
 * planes with IoU >= `threshold` share a label (see the module doc). Returns the largest label.
 *
 * @example
 * ```ts
 * import { stitchPlanes } from "./stitch.ts";
 * const labels = Uint32Array.from([1, 0, 0, 2]); // two 1 x 2 planes, masks not overlapping
 * console.log(stitchPlanes(labels, [2, 1, 2], 0.5), labels); // 3 [1, 0, 0, 3]
 * // (every label number of plane 1 up to its maximum gets a new label, as in cellpose)
 * ```
 */
export function stitchPlanes(
  labels: Uint32Array,
  shape: readonly number[],
  threshold: number,
): number {
  if (shape.length !== 3 || labels.length !== shape[0] * shape[1] * shape[2]) {
    throw new CellposeError(
      "BAD_SHAPE",
      `stitchPlanes takes [Z, H, W] labels matching the data, got [${shape}] for ${labels.length}`,
      shape,
    );
  }
  if (!(threshold >= 0 && threshold <= 1)) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `stitchThreshold must be in [0, 1], got ${threshold}`,
      threshold,
    );
  }
  const [nz] = shape;
  const n = shape[1] * shape[2];
  let mmax = maxLabel(labels.subarray(0, n));
  let stitched = false;
  for (let z = 0; z + 1 < nz; z++) {
    const prev = z * n, cur = prev + n;
    const nPrev = maxLabel(labels.subarray(prev, cur)),
      nCur = maxLabel(labels.subarray(cur, cur + n));
    if (nPrev === 0 || nCur === 0) {
      // cellpose: before any stitching the plane keeps its labels, afterwards it gets new ones
      if (!stitched) mmax = nCur;
      else if (nCur > 0) {
        for (let i = cur; i < cur + n; i++) if (labels[i]) labels[i] += mmax;
        mmax += nCur;
      }
      continue;
    }
    // IoU of every mask of plane z+1 (rows) with every mask of plane z (columns)
    const o = iouPairs(
      { data: labels.subarray(cur, cur + n), shape: [n] },
      { data: labels.subarray(prev, cur), shape: [n] },
    );
    const iou = new Float64Array((nCur + 1) * (nPrev + 1));
    for (let k = 0; k < o.a.length; k++) {
      const v = o.iou[k];
      iou[o.a[k] * (nPrev + 1) + o.b[k]] = v < threshold ? 0 : v;
    }
    // keep only the best row of each column
    for (let b = 1; b <= nPrev; b++) {
      let best = 0;
      for (let a = 1; a <= nCur; a++) best = Math.max(best, iou[a * (nPrev + 1) + b]);
      for (let a = 1; a <= nCur; a++) {
        if (iou[a * (nPrev + 1) + b] < best) iou[a * (nPrev + 1) + b] = 0;
      }
    }
    const map = new Uint32Array(nCur + 1);
    for (let a = 1; a <= nCur; a++) {
      let best = 0, bestB = 0;
      for (let b = 1; b <= nPrev; b++) {
        if (iou[a * (nPrev + 1) + b] > best) [best, bestB] = [iou[a * (nPrev + 1) + b], b];
      }
      map[a] = best === 0 ? ++mmax : bestB;
    }
    for (let i = cur; i < cur + n; i++) labels[i] = map[labels[i]];
    stitched = true;
  }
  return maxLabel(labels);
}
