/**
 * Mask outlines as cellpose makes them: for every mask the outer border of its pixels traced as
 * OpenCV's `findContours(RETR_EXTERNAL, CHAIN_APPROX_NONE)` does (Suzuki-Abe border following,
 * 8-connected, pixel centres, starting at the mask's first pixel in raster order and going down
 * its left side first). Like cellpose's `outlines_list`, each mask keeps its longest contour, and
 * contours of 4 points or fewer become empty.
 *
 * Also here: the `_cp_outlines.txt` text (one line `x1,y1,x2,y2,...` per mask) and the outline
 * overlay PNG (outline pixels red on the image, as cellpose's `save_masks(save_outlines=True)`).
 *
 * @example
 * ```ts
 * import { masksToOutlines, outlinesText } from "./outlines.ts";
 * const masks = { data: new Uint16Array(36), shape: [6, 6] };
 * for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) masks.data[y * 6 + x] = 1;
 * console.log(outlinesText(masksToOutlines(masks))); // "1,1,1,2,1,3,2,3,3,3,3,2,3,1,2,1\n"
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { percentiles } from "../core/percentile.ts";
import { encodePng } from "./png.ts";

/** One mask's outline: its label and the polygon as interleaved pixel coordinates x0,y0,x1,y1... */
export interface Outline {
  /** the mask's label */
  label: number;
  /** the polygon: x0, y0, x1, y1, ... */
  xy: Int32Array;
}

// neighbour offsets, clockwise on screen (y down) starting East
const DY = [0, 1, 1, 1, 0, -1, -1, -1];
const DX = [1, 1, 0, -1, -1, -1, 0, 1];

function check2D(masks: NdArray): [number, number] {
  if (masks.shape.length !== 2) {
    throw new CellposeError(
      "BAD_SHAPE",
      `outlines need 2D masks [H, W], got shape [${masks.shape}] (trace each plane of a stack)`,
      masks.shape,
    );
  }
  return [masks.shape[0], masks.shape[1]];
}

/**
 * Traces the outer border of the 8-connected component of `label` that starts at pixel (y0, x0),
 * the component's first pixel in raster order. Returns the visited pixel centres as [y, x] pairs.
 */
function traceBorder(
  m: NumericArray,
  h: number,
  w: number,
  label: number,
  y0: number,
  x0: number,
): number[] {
  const inside = (y: number, x: number) =>
    y >= 0 && y < h && x >= 0 && x < w && m[y * w + x] === label;
  // first foreground neighbour clockwise from West
  let d1 = -1;
  for (let k = 0; k < 8; k++) {
    const d = (4 + k) % 8;
    if (inside(y0 + DY[d], x0 + DX[d])) {
      d1 = d;
      break;
    }
  }
  if (d1 < 0) return [y0, x0];
  const y1 = y0 + DY[d1], x1 = x0 + DX[d1];
  const pts: number[] = [];
  let y3 = y0, x3 = x0, back = d1; // back: direction from the current pixel to the previous one
  for (;;) {
    let d4 = back;
    for (let k = 1; k <= 8; k++) {
      const d = (back - k + 8) % 8; // counter-clockwise after the previous pixel
      if (inside(y3 + DY[d], x3 + DX[d])) {
        d4 = d;
        break;
      }
    }
    pts.push(y3, x3);
    const y4 = y3 + DY[d4], x4 = x3 + DX[d4];
    if (y4 === y0 && x4 === x0 && y3 === y1 && x3 === x1) break;
    y3 = y4, x3 = x4;
    back = (d4 + 4) % 8;
  }
  return pts;
}

/** Bounding boxes (inclusive) of every label present, ascending by label. */
function labelBoxes(masks: NdArray<NumericArray>): Map<number, number[]> {
  const [h, w] = masks.shape;
  const m = masks.data;
  const boxes = new Map<number, number[]>();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = m[y * w + x];
      if (v === 0) continue;
      const b = boxes.get(v);
      if (!b) boxes.set(v, [y, x, y, x]);
      else {
        if (x < b[1]) b[1] = x;
        if (y > b[2]) b[2] = y;
        if (x > b[3]) b[3] = x;
      }
    }
  }
  return new Map([...boxes.entries()].sort((a, b) => a[0] - b[0]));
}

/**
 * All external contours of one label (one per 8-connected component), in raster order of their
 * first pixel; each as [y, x] pairs.
 */
function labelContours(masks: NdArray<NumericArray>, label: number, box: number[]): number[][] {
  const [, w] = masks.shape;
  const h = masks.shape[0];
  const m = masks.data;
  const [by0, bx0, by1, bx1] = box;
  const bw = bx1 - bx0 + 1;
  const seen = new Uint8Array((by1 - by0 + 1) * bw);
  const out: number[][] = [];
  const stack: number[] = [];
  for (let y = by0; y <= by1; y++) {
    for (let x = bx0; x <= bx1; x++) {
      if (m[y * w + x] !== label || seen[(y - by0) * bw + x - bx0]) continue;
      out.push(traceBorder(m, h, w, label, y, x));
      // flood the component so its other pixels do not start new contours
      seen[(y - by0) * bw + x - bx0] = 1;
      stack.push(y, x);
      while (stack.length) {
        const cx = stack.pop()!, cy = stack.pop()!;
        for (let d = 0; d < 8; d++) {
          const ny = cy + DY[d], nx = cx + DX[d];
          if (ny < by0 || ny > by1 || nx < bx0 || nx > bx1) continue;
          const s = (ny - by0) * bw + nx - bx0;
          if (seen[s] || m[ny * w + nx] !== label) continue;
          seen[s] = 1;
          stack.push(ny, nx);
        }
      }
    }
  }
  return out;
}

/**
 * Outlines of a 2D label image, one per label present (ascending), as cellpose's
 * `utils.outlines_list`: the longest external contour (ties: the later-found one, as OpenCV lists
 * contours last-found first), empty when it has 4 points or fewer.
 */
export function masksToOutlines(masks: NdArray<NumericArray>): Outline[] {
  check2D(masks);
  const out: Outline[] = [];
  for (const [label, box] of labelBoxes(masks)) {
    let best: number[] = [];
    for (const c of labelContours(masks, label, box)) if (c.length >= best.length) best = c;
    const n = best.length / 2;
    const xy = new Int32Array(n > 4 ? 2 * n : 0);
    if (n > 4) {
      for (let i = 0; i < n; i++) {
        xy[2 * i] = best[2 * i + 1];
        xy[2 * i + 1] = best[2 * i];
      }
    }
    out.push({ label, xy });
  }
  return out;
}

/** cellpose's `_cp_outlines.txt`: one line per outline, `x1,y1,x2,y2,...` (empty when none). */
export function outlinesText(outlines: Outline[]): string {
  return outlines.map((o) => o.xy.join(",") + "\n").join("");
}

/**
 * cellpose's `utils.masks_to_outlines`: 1 on the pixels of every external contour of every mask
 * (all components, no size filter), 0 elsewhere.
 */
export function outlinePixels(masks: NdArray<NumericArray>): NdArray<Uint8Array> {
  const [h, w] = check2D(masks);
  const out = new Uint8Array(h * w);
  for (const [label, box] of labelBoxes(masks)) {
    for (const c of labelContours(masks, label, box)) {
      for (let i = 0; i < c.length; i += 2) out[c[i] * w + c[i + 1]] = 1;
    }
  }
  return { data: out, shape: [h, w] };
}

/**
 * An RGB PNG of the image with the mask outlines drawn in red, as cellpose's
 * `save_masks(save_outlines=True)`. `image` is `[H, W]` or `[H, W, C]` (or `[C, H, W]` with
 * `channelAxis: 0`). Fewer than 3 channels: their mean scaled from its 1st..99th percentile to
 * 0..255, as grey (cellpose's `image_to_rgb`); 3 or more: the first three as RGB, scaled from
 * the whole image's 1st..99th percentile. (cellpose's own colour branch turns the normalised
 * image into 0/1 bytes, `np.uint8(np.clip(img0 * 255, 0, 1))`, an evident slip not copied.)
 *
 * @example
 * ```ts
 * import { outlineOverlayPng } from "./outlines.ts";
 * const img = { data: new Float32Array(64).map((_, i) => i), shape: [8, 8] };
 * const masks = { data: new Uint16Array(64).fill(1, 18, 22), shape: [8, 8] };
 * const png = outlineOverlayPng(img, masks); // PNG bytes, red outline on grey
 * ```
 */
export function outlineOverlayPng(
  image: NdArray<NumericArray>,
  masks: NdArray<NumericArray>,
  options: { channelAxis?: number } = {},
): Uint8Array {
  const [h, w] = check2D(masks);
  const nd = image.shape.length;
  const cAxis = options.channelAxis ?? (nd === 3 ? 2 : undefined);
  const c = cAxis === undefined ? 1 : image.shape[cAxis];
  const spatial = image.shape.filter((_, i) => i !== cAxis);
  if (
    spatial.length !== 2 || spatial[0] !== h || spatial[1] !== w ||
    (cAxis !== undefined && nd !== 3)
  ) {
    throw new CellposeError(
      "BAD_SHAPE",
      `overlay image [${image.shape}] (channel axis ${cAxis}) must match masks [${masks.shape}]`,
      image.shape,
    );
  }
  const at = (i: number, k: number) => image.data[cAxis === 0 ? k * h * w + i : i * c + k];
  const rgb = new Uint8Array(h * w * 3);
  const byte = (v: number) => Math.max(0, Math.min(255, Math.floor(v)));
  if (c < 3) {
    // cellpose plot.image_to_rgb with channels [0, 0]: channel mean, normalize99, clip, x255
    const grey = new Float32Array(h * w);
    for (let i = 0; i < h * w; i++) {
      let sum = 0;
      for (let k = 0; k < c; k++) sum += at(i, k);
      grey[i] = sum / c;
    }
    let [lo, hi] = percentiles(grey.slice(), [1, 99]);
    if (grey.every((v) => v === grey[0])) lo = 0, hi = 1; // np.ptp == 0: left unscaled
    for (let i = 0; i < h * w; i++) {
      const v = byte(Math.max(0, Math.min(1, (grey[i] - lo) / (hi - lo))) * 255);
      rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v;
    }
  } else {
    // colour: the first three channels, normalize99 over the whole image, clip, x255
    const [lo, hi] = percentiles(Float32Array.from(image.data), [1, 99]);
    for (let i = 0; i < h * w; i++) {
      for (let k = 0; k < 3; k++) {
        rgb[3 * i + k] = byte(Math.max(0, Math.min(1, (at(i, k) - lo) / (hi - lo))) * 255);
      }
    }
  }
  const edge = outlinePixels(masks).data;
  for (let i = 0; i < h * w; i++) {
    if (edge[i]) rgb[3 * i] = 255, rgb[3 * i + 1] = 0, rgb[3 * i + 2] = 0;
  }
  return encodePng({ data: rgb, shape: [h, w, 3] });
}
