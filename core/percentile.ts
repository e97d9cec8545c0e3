/**
 * `np.percentile(x, q)` (default "linear" method) on float32 data, float32 result, with numpy's
 * rounding: the virtual index `(n - 1) * q / 100` in float64, the two neighbours found by
 * selection (no full sort), and `a + (b - a) * g` in float32 (`b - (b - a) * (1 - g)` when
 * `g >= 0.5`).
 *
 * @example
 * ```ts
 * import { percentile } from "./percentile.ts";
 * console.log(percentile(new Float32Array([4, 1, 3, 2]), 50)); // 2.5
 * ```
 * @module
 */

const f32 = Math.fround;

/** Rearranges `a` so that `a[k]` holds the k-th smallest value (Hoare selection, in place). */
function select(a: Float32Array, k: number): void {
  let lo = 0, hi = a.length - 1;
  while (hi > lo) {
    // median of three as pivot
    const mid = (lo + hi) >>> 1;
    let p = a[mid];
    const x = a[lo], z = a[hi];
    if ((x <= p) !== (x <= z)) p = x;
    else if ((z <= p) !== (z <= x)) p = z;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < p) i++;
      while (a[j] > p) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

/**
 * Percentiles `qs` (each in [0, 100]) of `values`, which is reordered in place (pass a copy to
 * keep it). Values must be finite and `values` non-empty.
 *
 * @example
 * ```ts
 * import { percentiles } from "./percentile.ts";
 * console.log(percentiles(Float32Array.from([0, 10, 20, 30, 40]), [1, 99])); // [0.4, 39.6] (float32)
 * ```
 */
export function percentiles(values: Float32Array, qs: readonly number[]): number[] {
  const n = values.length;
  return qs.map((q) => {
    const vi = (n - 1) * (q / 100);
    let i0 = Math.floor(vi);
    let i1 = i0 + 1;
    if (vi >= n - 1) i0 = i1 = n - 1;
    const g = vi - i0;
    select(values, i0);
    const a = values[i0];
    let b = a;
    if (i1 !== i0) {
      b = Infinity;
      for (let i = i1; i < n; i++) if (values[i] < b) b = values[i];
    }
    const d = f32(b - a);
    return g >= 0.5 ? f32(b - f32(d * f32(1 - g))) : f32(a + f32(d * f32(g)));
  });
}

/**
 * One percentile of `values` (reordered in place).
 *
 * @example
 * ```ts
 * import { percentile } from "./percentile.ts";
 * console.log(percentile(new Float32Array([5, 1, 9]), 99)); // 8.920000076293945
 * ```
 */
export function percentile(values: Float32Array, q: number): number {
  return percentiles(values, [q])[0];
}
