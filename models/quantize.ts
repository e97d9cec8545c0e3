/**
 * Symmetric per-column int8 quantisation of a weight matrix, as onnxruntime's `quantize_dynamic`
 * does for `MatMul` weights with `per_channel`: column `n` of `W [rows, cols]` (for `x @ W`) is
 * stored as `round(W[:, n] / s[n])` in [-127, 127] with `s[n] = max |W[:, n]| / 127`. The
 * activations are quantised at run time by `DynamicQuantizeMatMul` (uint8, per tensor).
 *
 * @example
 * ```ts
 * import { quantizeColumns } from "./quantize.ts";
 * const { q, scale } = quantizeColumns(new Float32Array([1, -0.5, -2, 0.25]), 2, 2);
 * if (q.join() !== "64,-127,-127,64" || scale[1] !== Math.fround(0.5 / 127)) throw new Error();
 * ```
 * @module
 */

/** int8 values and per-column scales of `w` (row-major `[rows, cols]`). */
export function quantizeColumns(
  w: Float32Array,
  rows: number,
  cols: number,
): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) scale[c] = Math.max(scale[c], Math.abs(w[r * cols + c]));
  }
  for (let c = 0; c < cols; c++) scale[c] = scale[c] > 0 ? scale[c] / 127 : 1;
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = Math.round(w[r * cols + c] / scale[c]);
      q[r * cols + c] = Math.max(-127, Math.min(127, v));
    }
  }
  return { q, scale };
}
