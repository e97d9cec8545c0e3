/**
 * Label images for the dynamics: renumbers labels 1..N in order of first appearance
 * (fastremap.renumber) and finds each label's bounding box.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { renumber } from "./labels.ts";
 * const lab = new Uint32Array([0, 7, 7, 3]);
 * assertEquals(renumber(lab), 2);
 * assertEquals(lab, new Uint32Array([0, 1, 1, 2]));
 * ```
 * @module
 */
import { maxLabel } from "../core/labels.ts";

/**
 * Renumbers labels in place to 1..N in order of first appearance in a row-major scan (0 stays 0),
 * as fastremap.renumber does. Returns N.
 */
export function renumber(labels: Uint32Array): number {
  const max = maxLabel(labels);
  let n = 0;
  if (max > labels.length) {
    // sparse huge labels: a map instead of a table the size of the largest label
    const map = new Map<number, number>();
    for (let i = 0; i < labels.length; i++) {
      const v = labels[i];
      if (v === 0) continue;
      let m = map.get(v);
      if (m === undefined) map.set(v, m = ++n);
      labels[i] = m;
    }
    return n;
  }
  const map = new Uint32Array(max + 1);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v === 0) continue;
    let m = map[v];
    if (m === 0) m = map[v] = ++n;
    labels[i] = m;
  }
  return n;
}

/** Bounding boxes of labels 1..max: `lo[(l-1)*ndim + k]`, `hi[...]` (inclusive); lo > hi if absent. */
export function boundingBoxes(
  labels: Uint32Array,
  shape: readonly number[],
  max: number,
): { lo: Int32Array; hi: Int32Array } {
  const ndim = shape.length;
  const lo = new Int32Array(max * ndim).fill(0x7fffffff);
  const hi = new Int32Array(max * ndim).fill(-1);
  const lx = shape[ndim - 1];
  const rows = lx === 0 ? 0 : labels.length / lx;
  const outer = new Int32Array(ndim); // coordinates of the row start (last axis 0)
  for (let r = 0; r < rows; r++) {
    let rem = r;
    for (let k = ndim - 2; k >= 0; k--) {
      outer[k] = rem % shape[k];
      rem = Math.floor(rem / shape[k]);
    }
    const base = r * lx;
    for (let x = 0; x < lx; x++) {
      const v = labels[base + x];
      if (v === 0) continue;
      const b = (v - 1) * ndim;
      outer[ndim - 1] = x;
      for (let k = 0; k < ndim; k++) {
        const c = outer[k];
        if (c < lo[b + k]) lo[b + k] = c;
        if (c > hi[b + k]) hi[b + k] = c;
      }
    }
  }
  return { lo, hi };
}
