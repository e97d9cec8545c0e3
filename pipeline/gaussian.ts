/**
 * `scipy.ndimage.gaussian_filter1d(x, sigma, axis)` with scipy's defaults (truncate 4.0, mode
 * "reflect": `d c b a | a b c d | d c b a`), computed in float64 and stored back in float32 like
 * scipy does for float32 input.
 *
 * @example
 * ```ts
 * import { gaussianFilter1d } from "./gaussian.ts";
 * const x = { data: new Float32Array([0, 0, 1, 0, 0]), shape: [5] };
 * console.log(gaussianFilter1d(x, 1, 0).data[2]); // 0.39905... (the kernel centre)
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { type NdArray, size, strides } from "../core/ndarray.ts";

/** scipy's `_gaussian_kernel1d(sigma, 0, int(4 * sigma + 0.5))`: normalised float64 weights. */
function kernel(sigma: number): Float64Array {
  const radius = Math.trunc(4 * sigma + 0.5);
  const w = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    w[i + radius] = Math.exp((-0.5 / (sigma * sigma)) * i * i);
    sum += w[i + radius];
  }
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}

/** Index into [0, n) of position `i` under half-sample symmetric reflection. */
function reflect(i: number, n: number): number {
  const period = 2 * n;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/**
 * Gaussian smoothing of a float32 array along one axis (returns a new array).
 *
 * @example
 * ```ts
 * import { gaussianFilter1d } from "./gaussian.ts";
 * const img = { data: new Float32Array(12).fill(2), shape: [3, 4] };
 * console.log(gaussianFilter1d(img, 1.5, 1).data[5]); // 2 (constants stay constant)
 * ```
 */
export function gaussianFilter1d(
  x: NdArray<Float32Array>,
  sigma: number,
  axis: number,
): NdArray<Float32Array> {
  if (!(sigma > 0) || !Number.isFinite(sigma)) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `sigma must be a positive number, got ${sigma}`,
      sigma,
    );
  }
  if (!Number.isInteger(axis) || axis < 0 || axis >= x.shape.length) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `axis must be in [0, ${x.shape.length - 1}], got ${axis}`,
      axis,
    );
  }
  const w = kernel(sigma);
  const r = (w.length - 1) / 2;
  const n = x.shape[axis];
  const st = strides(x.shape)[axis];
  const total = size(x.shape);
  const out = new Float32Array(total);
  const line = new Float64Array(n + 2 * r);
  const nLines = n === 0 ? 0 : total / n;
  for (let l = 0; l < nLines; l++) {
    // first element of line l: split l into (outer, inner) around the axis
    const inner = l % st;
    const start = (l - inner) * n + inner;
    for (let i = -r; i < n + r; i++) line[i + r] = x.data[start + reflect(i, n) * st];
    for (let i = 0; i < n; i++) {
      const c = i + r;
      let acc = line[c] * w[r];
      for (let j = 1; j <= r; j++) acc += (line[c + j] + line[c - j]) * w[r + j];
      out[start + i * st] = acc;
    }
  }
  return { data: out, shape: [...x.shape] };
}
