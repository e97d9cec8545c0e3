/**
 * Label images, shared by dynamics, metrics, stitching, training and the panel: checks that an
 * array holds non-negative integer labels and converts it to the `Uint32Array` every dynamics
 * and metrics routine works on; the largest label.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { maxLabel, toLabels } from "./labels.ts";
 * const lab = toLabels({ data: new Float32Array([0, 7, 7, 3]), shape: [2, 2] }, "labels");
 * assertEquals(lab, new Uint32Array([0, 7, 7, 3]));
 * assertEquals(maxLabel(lab), 7);
 * assertEquals(maxLabel(new Uint16Array(0)), 0);
 * ```
 * @module
 */
import { CellposeError } from "./errors.ts";
import type { NdArray } from "./ndarray.ts";

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

/** Largest label (0 for an empty or all-background image). */
export function maxLabel(labels: Uint16Array | Uint32Array): number {
  let max = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] > max) max = labels[i];
  return max;
}
