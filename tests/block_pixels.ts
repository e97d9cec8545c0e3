/**
 * Test helper: the full-image pixels of a block, to cut blocks out of fixtures (2-D or 3-D).
 *
 * @example
 * ```ts
 * import { blockPixels } from "./block_pixels.ts";
 * console.log(blockPixels([4, 5], [1, 2], [2, 2])); // Uint32Array [7, 8, 12, 13]
 * ```
 * @module
 */

/** Global linear index of each pixel of the block `bshape` at `origin` in `shape`, row-major. */
export function blockPixels(
  shape: readonly number[],
  origin: readonly number[],
  bshape: readonly number[],
): Uint32Array {
  const n = bshape.reduce((a, b) => a * b, 1);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i, g = 0;
    for (let k = bshape.length - 1, stride = 1; k >= 0; k--) {
      g += (rem % bshape[k] + origin[k]) * stride;
      rem = Math.floor(rem / bshape[k]);
      stride *= shape[k];
    }
    out[i] = g;
  }
  return out;
}
