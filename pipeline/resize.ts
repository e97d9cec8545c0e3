/**
 * OpenCV's `cv2.resize(img, (W, H), interpolation=INTER_LINEAR)` on float32 images, reproduced
 * operation by operation (float32 rounding included):
 * - same size: a copy;
 * - exactly half the size on both axes: OpenCV switches to INTER_AREA, the mean of each 2 x 2
 *   block;
 * - otherwise for output index i the source coordinate is `f = float32((i + 0.5) * scale - 0.5)`
 *   with `scale = 1 / (dst / src)`; the neighbours `floor(f)` and `floor(f) + 1` are mixed with
 *   weights `1 - frac`, `frac`. Along X a coordinate left of 0 reads column 0 and one at or past
 *   the last column reads the last column; along Y the two rows are clamped into the image (the
 *   weights are kept). No antialiasing when shrinking.
 *
 * @example
 * ```ts
 * import { resizeImage } from "./resize.ts";
 * const img = { data: new Float32Array([0, 1, 2, 3]), shape: [2, 2] };
 * console.log(resizeImage(img, 4, 4).data.slice(0, 4)); // Float32Array [0, 0.25, 0.75, 1]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";

const f32 = Math.fround;

/** Per output index: left source index, and the two weights (or a single tap when `w1` is NaN). */
interface Taps {
  i0: Int32Array;
  w0: Float32Array;
  w1: Float32Array;
}

function xTaps(src: number, dst: number): Taps {
  const scale = 1 / (dst / src);
  const i0 = new Int32Array(dst);
  const w0 = new Float32Array(dst);
  const w1 = new Float32Array(dst);
  for (let d = 0; d < dst; d++) {
    let f = f32((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = f32(f - s);
    if (s < 0) {
      s = 0;
      f = 0;
    }
    if (s >= src - 1) {
      // OpenCV's tail: a plain copy of the last column
      i0[d] = src - 1;
      w0[d] = 1;
      w1[d] = NaN;
      continue;
    }
    i0[d] = s;
    w0[d] = f32(1 - f);
    w1[d] = f;
  }
  return { i0, w0, w1 };
}

function yTaps(src: number, dst: number): Taps {
  const scale = 1 / (dst / src);
  const i0 = new Int32Array(dst);
  const w0 = new Float32Array(dst);
  const w1 = new Float32Array(dst);
  for (let d = 0; d < dst; d++) {
    const f = f32((d + 0.5) * scale - 0.5);
    const s = Math.floor(f);
    const frac = f32(f - s);
    i0[d] = s;
    w0[d] = f32(1 - frac);
    w1[d] = frac;
  }
  return { i0, w0, w1 };
}

function checkSize(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new CellposeError("BAD_PARAMETER", `${name} must be a positive integer, got ${v}`, v);
  }
}

/**
 * Resizes a float32 image [H, W] or [H, W, C] to [height, width] (or [height, width, C]) exactly
 * as OpenCV's INTER_LINEAR does (see the module doc).
 *
 * @example
 * ```ts
 * import { resizeImage } from "./resize.ts";
 * const img = { data: new Float32Array(300 * 417 * 3), shape: [300, 417, 3] };
 * console.log(resizeImage(img, 150, 208).shape); // [150, 208, 3]
 * ```
 */
export function resizeImage(
  image: NdArray<Float32Array>,
  height: number,
  width: number,
): NdArray<Float32Array> {
  const nd = image.shape.length;
  if (nd !== 2 && nd !== 3) {
    throw new CellposeError(
      "BAD_SHAPE",
      `resizeImage takes [H, W] or [H, W, C], got [${image.shape}]`,
      image.shape,
    );
  }
  checkSize("height", height);
  checkSize("width", width);
  const [sh, sw] = image.shape;
  const cn = nd === 3 ? image.shape[2] : 1;
  if (sh < 1 || sw < 1 || cn < 1) {
    throw new CellposeError(
      "BAD_SHAPE",
      `cannot resize an empty image [${image.shape}]`,
      image.shape,
    );
  }
  const shape = nd === 3 ? [height, width, cn] : [height, width];
  if (sh === height && sw === width) return { data: image.data.slice(), shape };
  if (sh === 2 * height && sw === 2 * width) {
    return { data: halve(image.data, sh, sw, cn), shape };
  }
  return { data: linear(image.data, sh, sw, cn, height, width), shape };
}

/** INTER_AREA for an exact factor 2: ((a + b) + c + d) * 0.25 in float32. */
function halve(src: Float32Array, sh: number, sw: number, cn: number): Float32Array {
  const h = sh / 2, w = sw / 2;
  const out = new Float32Array(h * w * cn);
  const rowLen = sw * cn;
  for (let y = 0; y < h; y++) {
    const r0 = 2 * y * rowLen, r1 = r0 + rowLen;
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < cn; c++) {
        const o0 = 2 * x * cn + c, o1 = o0 + cn;
        let s = f32(src[r0 + o0] + src[r0 + o1]);
        s = f32(s + src[r1 + o0]);
        s = f32(s + src[r1 + o1]);
        out[(y * w + x) * cn + c] = f32(s * 0.25);
      }
    }
  }
  return out;
}

function linear(
  src: Float32Array,
  sh: number,
  sw: number,
  cn: number,
  dh: number,
  dw: number,
): Float32Array {
  const xt = xTaps(sw, dw);
  const yt = yTaps(sh, dh);
  const rowOut = dw * cn;
  // horizontally resized source rows, kept in a cache of two
  const rowA = new Float32Array(rowOut), rowB = new Float32Array(rowOut);
  let yA = -1, yB = -1;
  const hrow = (sy: number, into: Float32Array) => {
    const base = sy * sw * cn;
    for (let d = 0; d < dw; d++) {
      const s = xt.i0[d], a0 = xt.w0[d], a1 = xt.w1[d];
      for (let c = 0; c < cn; c++) {
        const p = base + s * cn + c;
        into[d * cn + c] = Number.isNaN(a1)
          ? src[p]
          : f32(f32(src[p] * a0) + f32(src[p + cn] * a1));
      }
    }
  };
  /** returns the resized row `sy`, never evicting the row `keep` */
  const getRow = (sy: number, keep: number): Float32Array => {
    if (sy === yA) return rowA;
    if (sy === yB) return rowB;
    if (yA !== keep) {
      hrow(sy, rowA);
      yA = sy;
      return rowA;
    }
    hrow(sy, rowB);
    yB = sy;
    return rowB;
  };
  const out = new Float32Array(dh * rowOut);
  for (let d = 0; d < dh; d++) {
    const s = yt.i0[d];
    const s0 = Math.min(Math.max(s, 0), sh - 1);
    const s1 = Math.min(Math.max(s + 1, 0), sh - 1);
    const r0 = getRow(s0, s1);
    const r1 = getRow(s1, s0);
    const b0 = yt.w0[d], b1 = yt.w1[d];
    const o = d * rowOut;
    for (let k = 0; k < rowOut; k++) out[o + k] = f32(f32(r0[k] * b0) + f32(r1[k] * b1));
  }
  return out;
}
