/**
 * Label images: checks that an array holds non-negative integer labels and converts it to the
 * `Uint32Array` every dynamics and metrics routine works on; renumbers labels 1..N in order of
 * first appearance (fastremap.renumber).
 *
 * @example
 * ```ts
 * import { renumber, toLabels } from "./labels.ts";
 * const lab = toLabels({ data: new Float32Array([0, 7, 7, 3]), shape: [2, 2] }, "labels");
 * console.log(renumber(lab), lab); // 2 Uint32Array [0, 1, 1, 2]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";

/**
 * Checks `a` holds non-negative integers (any numeric dtype) and returns them as a `Uint32Array`
 * (the same buffer when it already is one).
 * @throws CellposeError BAD_DTYPE for bigint arrays, BAD_VALUE for fractions, negatives, NaN or
 *   labels past 2^32 - 1
 */
export function toLabels(a: NdArray, what: string): Uint32Array {
  const d = a.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    throw new CellposeError(
      "BAD_DTYPE",
      `${what} must be an integer label image in a number typed array, got a bigint array`,
      d.constructor.name,
    );
  }
  if (d instanceof Uint32Array) return d;
  if (d instanceof Uint16Array || d instanceof Uint8Array || d instanceof Uint8ClampedArray) {
    return Uint32Array.from(d);
  }
  const out = new Uint32Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (!(v >= 0 && v <= 0xffffffff && Math.floor(v) === v)) {
      throw new CellposeError(
        "BAD_VALUE",
        `${what} must hold non-negative integer labels, got ${v} at flat index ${i}`,
        v,
      );
    }
    out[i] = v;
  }
  return out;
}

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

/** Largest label. */
export function maxLabel(labels: Uint16Array | Uint32Array): number {
  let max = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] > max) max = labels[i];
  return max;
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
