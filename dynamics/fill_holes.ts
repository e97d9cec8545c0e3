/**
 * cellpose v4 `utils.fill_holes_and_remove_small_masks`, 2D and 3D: remove masks smaller than
 * `minSize` and renumber; fill the holes of each mask inside its bounding box (background not
 * connected to the box border, 4-connected in 2D, 6-connected in 3D, as `fill_voids.fill`),
 * filled pixels taking the mask's label even where another, enclosed mask was; then remove small
 * masks and renumber again.
 *
 * The size filter removes masks by label value, as cellpose does since 2025-11-10 (commit
 * 2932984, "fixes a bug in fill_holes_and_remove_small_masks that removed the wrong cells"):
 * before, pixel counts were matched to labels by rank among the present values, which after the
 * flow-error QC (that leaves gaps in the labels) removed other masks than the small ones.
 *
 * @example
 * ```ts
 * import { fillHolesAndRemoveSmallMasks } from "./fill_holes.ts";
 * // a 3 x 3 ring with a hole, and a lone pixel
 * const m = new Uint32Array([1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 2]);
 * const n = fillHolesAndRemoveSmallMasks(m, [4, 4], 2);
 * console.log(n, m); // 1 Uint32Array [1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0]
 * ```
 * @module
 */
import { maxLabel } from "../core/labels.ts";
import { boundingBoxes, renumber } from "./labels.ts";

/**
 * Fills holes and removes small masks in place; returns the number of masks (the largest label).
 * @param labels label image, modified in place
 * @param shape `[Ly, Lx]` or `[Lz, Ly, Lx]`
 * @param minSize masks with fewer pixels are removed; <= 0 keeps all (holes are still filled
 *   and labels compacted in label order, as the reference)
 */
export function fillHolesAndRemoveSmallMasks(
  labels: Uint32Array,
  shape: readonly number[],
  minSize: number,
): number {
  if (minSize > 0) {
    removeSmall(labels, minSize);
    renumber(labels);
  }
  const max = maxLabel(labels);
  const { lo, hi } = boundingBoxes(labels, shape, max);
  const ndim = shape.length;
  let j = 0;
  let box = new Uint8Array(0);
  let queue = new Int32Array(0);
  for (let l = 1; l <= max; l++) {
    const b = (l - 1) * ndim;
    if (lo[b] > hi[b]) continue;
    const ext = [];
    for (let k = 0; k < ndim; k++) ext.push(hi[b + k] - lo[b + k] + 1);
    const n = ext.reduce((a, c) => a * c, 1);
    if (box.length < n) (box = new Uint8Array(n)), (queue = new Int32Array(n));
    fillBox(labels, shape, lo.subarray(b, b + ndim), ext, l, ++j, box, queue);
  }
  if (minSize > 0) {
    removeSmall(labels, minSize);
    return renumber(labels);
  }
  return maxLabel(labels);
}

/**
 * Fills the holes of label `l` inside its box and writes `newLabel` on the filled mask.
 * `box` marks: 1 mask, 2 background reached from the border, 0 not yet reached.
 */
function fillBox(
  labels: Uint32Array,
  shape: readonly number[],
  lo: Int32Array,
  ext: number[],
  l: number,
  newLabel: number,
  box: Uint8Array,
  queue: Int32Array,
): void {
  const ndim = shape.length;
  const [ez, ey, ex] = ndim === 3 ? ext : [1, ext[0], ext[1]];
  const [z0, y0, x0] = ndim === 3 ? lo : [0, lo[0], lo[1]];
  const ly = shape[ndim - 2], lx = shape[ndim - 1];
  const plane = ey * ex;
  const n = ez * plane;
  const src = (z: number, y: number) => ((z0 + z) * ly + y0 + y) * lx + x0;
  for (let z = 0; z < ez; z++) {
    for (let y = 0; y < ey; y++) {
      const s = src(z, y), d = z * plane + y * ex;
      for (let x = 0; x < ex; x++) box[d + x] = labels[s + x] === l ? 1 : 0;
    }
  }
  // flood the background from the box border
  let qn = 0;
  for (let i = 0; i < n; i++) {
    if (box[i] !== 0) continue;
    const x = i % ex, y = Math.floor(i / ex) % ey, z = Math.floor(i / plane);
    const border = x === 0 || x === ex - 1 || y === 0 || y === ey - 1 ||
      (ndim === 3 && (z === 0 || z === ez - 1));
    if (border) (box[i] = 2), (queue[qn++] = i);
  }
  for (let q = 0; q < qn; q++) {
    const i = queue[q];
    const x = i % ex, y = Math.floor(i / ex) % ey, z = Math.floor(i / plane);
    if (x > 0 && box[i - 1] === 0) (box[i - 1] = 2), (queue[qn++] = i - 1);
    if (x < ex - 1 && box[i + 1] === 0) (box[i + 1] = 2), (queue[qn++] = i + 1);
    if (y > 0 && box[i - ex] === 0) (box[i - ex] = 2), (queue[qn++] = i - ex);
    if (y < ey - 1 && box[i + ex] === 0) (box[i + ex] = 2), (queue[qn++] = i + ex);
    if (z > 0 && box[i - plane] === 0) (box[i - plane] = 2), (queue[qn++] = i - plane);
    if (z < ez - 1 && box[i + plane] === 0) (box[i + plane] = 2), (queue[qn++] = i + plane);
  }
  for (let z = 0; z < ez; z++) {
    for (let y = 0; y < ey; y++) {
      const s = src(z, y), d = z * plane + y * ex;
      for (let x = 0; x < ex; x++) if (box[d + x] !== 2) labels[s + x] = newLabel;
    }
  }
}

/** Sets the pixels of every label with fewer than `minSize` pixels to 0 (background stays). */
function removeSmall(labels: Uint32Array, minSize: number): void {
  const max = maxLabel(labels);
  const counts = new Float64Array(max + 1);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  const drop = new Uint8Array(max + 1);
  for (let v = 1; v <= max; v++) drop[v] = counts[v] > 0 && counts[v] < minSize ? 1 : 0;
  for (let i = 0; i < labels.length; i++) if (drop[labels[i]]) labels[i] = 0;
}
