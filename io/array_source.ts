/**
 * An image held in memory as an {@link ImageSource}, read by regions like a lazy TIFF
 * (`tiff_lazy.ts`) or OME-Zarr (`ome_zarr.ts`) source: what `segmentLarge` takes for arrays.
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { ImageSource } from "../core/types.ts";

/**
 * An {@link ImageSource} over an image held in memory, row-major [H, W] or channel-last
 * [H, W, C]: regions are copied out of it. Throws BAD_SHAPE for other shapes.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { arraySource } from "./array_source.ts";
 * const src = arraySource({ data: Uint8Array.from({ length: 12 }, (_, i) => i), shape: [3, 4] });
 * const r = await src.read({ y0: 1, x0: 1, y1: 3, x1: 3 });
 * assertEquals([r.shape, r.data], [[2, 2], new Uint8Array([5, 6, 9, 10])]);
 * ```
 */
export function arraySource(image: NdArray<NumericArray>): ImageSource {
  const [h, w] = image.shape;
  const c = image.shape.length === 3 ? image.shape[2] : 1;
  if (image.shape.length < 2 || image.shape.length > 3 || image.data.length !== h * w * c) {
    throw new CellposeError(
      "BAD_SHAPE",
      `an image source needs [H, W] or [H, W, C] data, got [${image.shape}]`,
      image.shape,
    );
  }
  return {
    height: h,
    width: w,
    channels: c,
    read(r) {
      const rw = r.x1 - r.x0, rh = r.y1 - r.y0;
      const out = new (image.data.constructor as { new (n: number): NumericArray })(rh * rw * c);
      for (let y = 0; y < rh; y++) {
        const from = ((y + r.y0) * w + r.x0) * c;
        out.set(image.data.subarray(from, from + rw * c), y * rw * c);
      }
      return Promise.resolve({ data: out, shape: c === 1 ? [rh, rw] : [rh, rw, c] });
    },
  };
}
