/**
 * Turns an opened file into what the panel draws: the image is read with the project's own
 * readers (io/image.ts), converted to H x W x 3 like the pipeline does (pipeline/channels.ts),
 * and each plane is scaled to 8 bits per channel between its 1st and 99th percentiles.
 *
 * @example
 * ```ts
 * import { displayPlane, openImage } from "./display.ts";
 * const img = await openImage(bytes, "cells.png");
 * const { rgba, width, height } = displayPlane(img, 0);
 * ```
 * @module
 */
import { readImage } from "../../io/image.ts";
import { convertImage } from "../../pipeline/channels.ts";
import { percentiles } from "../../core/percentile.ts";
import type { NdArray, NumericArray } from "../../core/ndarray.ts";

/** An opened image, ready to show plane by plane. */
export interface Displayable {
  name: string;
  /** shape and axes as read from the file */
  shape: number[];
  axes: string;
  zAxis?: number;
  /** channels in the file (1 for grey) */
  channels: number;
  /** Z planes (1 for 2D) */
  planes: number;
  /** converted pixels: [Z, H, W, 3] */
  hwc: NdArray<NumericArray>;
  cache: Map<number, { width: number; height: number; rgba: Uint8ClampedArray }>;
}

/** Reads an image file's bytes (TIFF, PNG, JPEG, .npy) for display. */
export async function openImage(bytes: Uint8Array, name: string): Promise<Displayable> {
  const img = await readImage(bytes, name);
  const conv = convertImage(img.image, { channelAxis: img.channelAxis, zAxis: img.zAxis });
  const hwc = conv.shape.length === 3 ? { data: conv.data, shape: [1, ...conv.shape] } : conv;
  return {
    name,
    shape: img.image.shape,
    axes: img.axes,
    zAxis: img.zAxis,
    channels: img.channelAxis === undefined ? 1 : img.image.shape[img.channelAxis],
    planes: hwc.shape[0],
    hwc,
    cache: new Map(),
  };
}

/** One Z plane as RGBA, each channel stretched between its 1st and 99th percentile; grey if one channel. */
export function displayPlane(
  img: Displayable,
  plane: number,
): { width: number; height: number; rgba: Uint8ClampedArray } {
  const hit = img.cache.get(plane);
  if (hit) return hit;
  const [, height, width] = img.hwc.shape;
  const n = width * height;
  const base = plane * n * 3;
  const rgba = new Uint8ClampedArray(4 * n);
  const used = Math.min(3, img.channels);
  for (let c = 0; c < used; c++) {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = img.hwc.data[base + 3 * i + c];
    const [lo, hi] = percentiles(v.slice(), [1, 99]);
    const s = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0; i < n; i++) {
      const x = (v[i] - lo) * s;
      if (used === 1) rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = x;
      else rgba[4 * i + c] = x;
    }
  }
  for (let i = 0; i < n; i++) rgba[4 * i + 3] = 255;
  const out = { width, height, rgba };
  img.cache.set(plane, out);
  return out;
}
