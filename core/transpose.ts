/**
 * Axis permutation of an {@link NdArray} (numpy's `transpose(axes)` followed by a C-order copy).
 *
 * @example
 * ```ts
 * import { transpose } from "./transpose.ts";
 * const chw = { data: new Uint8Array([1, 2, 3, 4, 5, 6]), shape: [2, 1, 3] };
 * const hwc = transpose(chw, [1, 2, 0]);
 * console.log(hwc.shape, hwc.data); // [1, 3, 2] Uint8Array [1, 4, 2, 5, 3, 6]
 * ```
 * @module
 */
import { CellposeError } from "./errors.ts";
import { type NdArray, size, strides, type TypedArray } from "./ndarray.ts";

/**
 * Returns a new C-ordered array whose axis `i` is axis `axes[i]` of `a` (same element type).
 * Throws BAD_PARAMETER when `axes` is not a permutation of `0..ndim-1`.
 */
export function transpose<T extends TypedArray>(
  a: NdArray<T>,
  axes: readonly number[],
): NdArray<T> {
  const nd = a.shape.length;
  const seen = new Set(axes);
  if (axes.length !== nd || seen.size !== nd || axes.some((x) => !(x >= 0 && x < nd))) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `axes must be a permutation of 0..${nd - 1}, got [${axes}]`,
      axes,
    );
  }
  const shape = axes.map((ax) => a.shape[ax]);
  const inStrides = strides(a.shape);
  const st = axes.map((ax) => inStrides[ax]);
  const n = size(shape);
  const out = new (a.data.constructor as { new (n: number): T })(n);
  if (n === 0) return { data: out, shape };
  const last = nd - 1;
  const idx = new Array<number>(nd).fill(0);
  let src = 0;
  const innerLen = shape[last];
  const innerStride = st[last];
  for (let o = 0; o < n; o += innerLen) {
    for (let k = 0; k < innerLen; k++) out[o + k] = a.data[src + k * innerStride];
    // advance the outer index (all axes but the last)
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      src += st[d];
      if (idx[d] < shape[d]) break;
      src -= st[d] * shape[d];
      idx[d] = 0;
    }
  }
  return { data: out, shape };
}
