/**
 * Pure pixel functions behind the panel's views: label colours, mask overlay with outlines, the
 * flow field as colour (cellpose's `dx_to_circ`), cell probability as grey, and label edits.
 * All work on plain typed arrays so they are tested in Deno and run unchanged in the browser.
 *
 * @example
 * ```ts
 * import { overlay } from "./render.ts";
 * const rgba = overlay(new Uint8ClampedArray(4 * 4), new Uint16Array([0, 1, 1, 0]), 2, 2, { opacity: 0.5 });
 * ```
 * @module
 */
import { flowsToRgb } from "../../io/seg_npy.ts";

/** A stable, well spread colour for a label (0 is transparent). */
export function labelColor(label: number): [number, number, number] {
  // golden-ratio hue steps with a hashed lightness, so neighbours rarely look alike
  const h = (label * 0.618033988749895) % 1;
  const l = 0.5 + 0.15 * (((label * 2654435761) >>> 0) % 3 - 1);
  const s = 0.85;
  const f = (n: number) => {
    const k = (n + h * 12) % 12;
    const a = s * Math.min(l, 1 - l);
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/** Options of {@link overlay}. */
export interface OverlayOptions {
  /** mask fill opacity 0..1 */
  opacity?: number;
  /** draw mask outlines */
  outlines?: boolean;
  /** outline colour */
  outlineColor?: [number, number, number];
}

/**
 * Blends coloured masks (and their outlines) over an RGBA image of `w x h`; returns a new RGBA array.
 */
export function overlay(
  rgba: Uint8ClampedArray,
  labels: Uint16Array | Uint32Array,
  w: number,
  h: number,
  options: OverlayOptions = {},
): Uint8ClampedArray {
  const { opacity = 0.4, outlines = true, outlineColor = [255, 255, 0] } = options;
  const out = new Uint8ClampedArray(rgba);
  const cache = new Map<number, [number, number, number]>();
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i++) {
      const l = labels[i];
      if (l === 0) continue;
      const edge = outlines && (
        (x > 0 && labels[i - 1] !== l) || (x < w - 1 && labels[i + 1] !== l) ||
        (y > 0 && labels[i - w] !== l) || (y < h - 1 && labels[i + w] !== l)
      );
      let c = cache.get(l);
      if (!c) cache.set(l, c = labelColor(l));
      const o = 4 * i;
      if (edge) {
        out[o] = outlineColor[0];
        out[o + 1] = outlineColor[1];
        out[o + 2] = outlineColor[2];
      } else {
        out[o] = out[o] * (1 - opacity) + c[0] * opacity;
        out[o + 1] = out[o + 1] * (1 - opacity) + c[1] * opacity;
        out[o + 2] = out[o + 2] * (1 - opacity) + c[2] * opacity;
      }
      out[o + 3] = 255;
    }
  }
  return out;
}

/** Flows [2, h, w] (dY, dX) as RGBA colour: cellpose's dx_to_circ, as in `_seg.npy` (io/seg_npy.ts). */
export function flowsToRgba(flows: Float32Array, w: number, h: number): Uint8ClampedArray {
  const rgb = flowsToRgb({ data: flows, shape: [2, h, w] }).data;
  const out = new Uint8ClampedArray(4 * w * h);
  for (let i = 0; i < w * h; i++) {
    out.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
    out[4 * i + 3] = 255;
  }
  return out;
}

/** Cell probability logits as grey RGBA through a sigmoid (0.5 at logit 0). */
export function cellprobToRgba(cellprob: Float32Array): Uint8ClampedArray {
  const out = new Uint8ClampedArray(4 * cellprob.length);
  for (let i = 0; i < cellprob.length; i++) {
    const v = 255 / (1 + Math.exp(-cellprob[i]));
    out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = v;
    out[4 * i + 3] = 255;
  }
  return out;
}

/** Removes one mask (sets its pixels to 0) and returns how many pixels it had. */
export function deleteMask(labels: Uint16Array | Uint32Array, label: number): number {
  if (label === 0) return 0;
  let n = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === label) {
      labels[i] = 0;
      n++;
    }
  }
  return n;
}

/**
 * Paints a disc of `radius` at (x, y) with `label` (0 erases). Pixels of other masks are kept
 * unless `overwrite` is set. Returns the number of pixels changed.
 */
export function paintDisc(
  labels: Uint16Array | Uint32Array,
  w: number,
  h: number,
  x: number,
  y: number,
  radius: number,
  label: number,
  overwrite = false,
): number {
  let n = 0;
  const r2 = radius * radius;
  for (
    let yy = Math.max(0, Math.floor(y - radius));
    yy <= Math.min(h - 1, Math.ceil(y + radius));
    yy++
  ) {
    for (
      let xx = Math.max(0, Math.floor(x - radius));
      xx <= Math.min(w - 1, Math.ceil(x + radius));
      xx++
    ) {
      if ((xx - x) ** 2 + (yy - y) ** 2 > r2) continue;
      const i = yy * w + xx;
      const cur = labels[i];
      if (cur === label || (label !== 0 && cur !== 0 && !overwrite)) continue;
      labels[i] = label;
      n++;
    }
  }
  return n;
}

/** Number of distinct non-zero labels. */
export function countMasks(labels: Uint16Array | Uint32Array): number {
  const seen = new Set<number>();
  for (let i = 0; i < labels.length; i++) if (labels[i]) seen.add(labels[i]);
  return seen.size;
}
