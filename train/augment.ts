/**
 * cellpose's training augmentation, `transforms.random_rotate_and_resize`: per image a random
 * horizontal flip (the X flow negated), a rotation in [0, 2 pi), a scale
 * `(1 - range / 2) + range * u` and a random shift, applied by one affine warp to a
 * `bsize x bsize` crop: bilinear for the image and the flows, nearest for the cell probability,
 * then the flow vectors rotated with the image.
 *
 * The draws come from {@link NumpyRandom} in cellpose's order (flip, theta, scale, then two for
 * the shift), and the warp reproduces OpenCV's `warpAffine` (as in OpenCV 4.6): the inverse map
 * in 1/1024 pixel fixed point, bilinear weights from its 32 x 32 sub-pixel table in float32, and
 * zeros outside the image. The affine matrix follows cellpose's NumPy arithmetic (float64, the
 * points rounded to float32 as `np.float32` does).
 *
 * @example
 * ```ts
 * import { NumpyRandom } from "../core/random.ts";
 * import { randomRotateAndResize } from "./augment.ts";
 * const img = { data: new Float32Array(3 * 300 * 280).fill(1), shape: [3, 300, 280] };
 * const lbl = { data: new Float32Array(3 * 300 * 280), shape: [3, 300, 280] };
 * const out = randomRotateAndResize([img], [lbl], new NumpyRandom(0));
 * if (out.images.shape.join() !== "1,3,256,256") throw new Error("wrong shape");
 * ```
 * @module
 */
import { paramSpec, TRAIN_PARAMS } from "../core/params.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import type { NumpyRandom } from "../core/random.ts";

/** Options of {@link randomRotateAndResize}. */
export interface AugmentOptions {
  /** scale range (cellpose's `scale_range`, default 0.5: scales in [0.75, 1.25)) */
  scaleRange?: number;
  /** crop size [height, width] (default [256, 256]) */
  xy?: [number, number];
  /** random horizontal flips (default true) */
  flip?: boolean;
  /** per-image factor the scale is divided by (cellpose's `rescale`; default none) */
  rescale?: number[];
  /**
   * draw the scale log-uniformly from [lo, hi] instead (beyond cellpose: from-scratch training
   * over a wide range of cell sizes); the same draw is used, so other draws are unchanged
   */
  scaleLog?: [number, number];
}

/** The augmented batch. */
export interface AugmentedBatch {
  /** `[B, C, xy[0], xy[1]]` */
  images: NdArray<Float32Array>;
  /** `[B, 3, xy[0], xy[1]]`: cellprob, flowY, flowX */
  labels: NdArray<Float32Array>;
  /** the scale of each image (float32, as cellpose returns it) */
  scale: number[];
}

const AB_BITS = 10;
const AB_SCALE = 1 << AB_BITS;
const INTER_BITS = 5;
const INTER_TAB = 1 << INTER_BITS;

/** OpenCV's `BilinearTab_f`: float weights per (fy, fx) sub-pixel position. */
const BILINEAR = (() => {
  const t1 = new Float32Array(2 * INTER_TAB);
  const s = Math.fround(1 / INTER_TAB);
  for (let i = 0; i < INTER_TAB; i++) {
    const x = Math.fround(i * s);
    t1[2 * i] = Math.fround(1 - x);
    t1[2 * i + 1] = x;
  }
  const tab = new Float32Array(INTER_TAB * INTER_TAB * 4);
  for (let i = 0; i < INTER_TAB; i++) {
    for (let j = 0; j < INTER_TAB; j++) {
      const o = (i * INTER_TAB + j) * 4;
      for (let k1 = 0; k1 < 2; k1++) {
        for (let k2 = 0; k2 < 2; k2++) {
          tab[o + k1 * 2 + k2] = Math.fround(t1[2 * i + k1] * t1[2 * j + k2]);
        }
      }
    }
  }
  return tab;
})();

/** cvRound: round half to even (lrint). */
function cvRound(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A 2x3 affine matrix, row-major: `[a, b, c, d, e, f]` maps (x, y) to (a x + b y + c, d x + e y + f). */
export type Affine = [number, number, number, number, number, number];

/** OpenCV's `invertAffineTransform`. */
function invertAffine(m: Affine): Affine {
  let D = m[0] * m[4] - m[1] * m[3];
  D = D !== 0 ? 1 / D : 0;
  const a11 = m[4] * D, a22 = m[0] * D, a12 = -m[1] * D, a21 = -m[3] * D;
  return [a11, a12, -a11 * m[2] - a12 * m[5], a21, a22, -a21 * m[2] - a22 * m[5]];
}

/**
 * OpenCV's `warpAffine(src, M, (w, h), flags)` for one float32 plane `[H, W]` with a constant
 * zero border; `nearest` selects INTER_NEAREST, else INTER_LINEAR. `mirror` warps the plane
 * flipped left-right (`src[y, W - 1 - x]`) without copying it: the same samples, weights and
 * sums as flipping first. Writes into `out` (zeros, `dstH * dstW`) when given.
 */
export function warpAffine(
  src: NdArray<Float32Array>,
  m: Affine,
  dstH: number,
  dstW: number,
  nearest: boolean,
  mirror = false,
  out: Float32Array = new Float32Array(dstH * dstW),
): Float32Array {
  const [H, W] = src.shape;
  const s = src.data;
  const M = invertAffine(m);
  const adelta = new Int32Array(dstW), bdelta = new Int32Array(dstW);
  for (let x = 0; x < dstW; x++) {
    adelta[x] = cvRound(M[0] * x * AB_SCALE);
    bdelta[x] = cvRound(M[3] * x * AB_SCALE);
  }
  const roundDelta = nearest ? AB_SCALE / 2 : AB_SCALE / INTER_TAB / 2;
  for (let y = 0; y < dstH; y++) {
    const X0 = cvRound((M[1] * y + M[2]) * AB_SCALE) + roundDelta;
    const Y0 = cvRound((M[4] * y + M[5]) * AB_SCALE) + roundDelta;
    const row = y * dstW;
    for (let x = 0; x < dstW; x++) {
      if (nearest) {
        const X = (X0 + adelta[x]) >> AB_BITS;
        const Y = (Y0 + bdelta[x]) >> AB_BITS;
        out[row + x] = X >= 0 && X < W && Y >= 0 && Y < H ? s[Y * W + (mirror ? W - 1 - X : X)] : 0;
        continue;
      }
      const X = (X0 + adelta[x]) >> (AB_BITS - INTER_BITS);
      const Y = (Y0 + bdelta[x]) >> (AB_BITS - INTER_BITS);
      const sx = X >> INTER_BITS, sy = Y >> INTER_BITS;
      const w = ((Y & (INTER_TAB - 1)) * INTER_TAB + (X & (INTER_TAB - 1))) * 4;
      if (sx >= W || sx + 1 < 0 || sy >= H || sy + 1 < 0) continue; // all four outside: 0
      const in0x = sx >= 0, in1x = sx + 1 < W, in0y = sy >= 0, in1y = sy + 1 < H;
      const c0 = mirror ? W - 1 - sx : sx, c1 = mirror ? c0 - 1 : sx + 1;
      const v0 = in0x && in0y ? s[sy * W + c0] : 0;
      const v1 = in1x && in0y ? s[sy * W + c1] : 0;
      const v2 = in0x && in1y ? s[(sy + 1) * W + c0] : 0;
      const v3 = in1x && in1y ? s[(sy + 1) * W + c1] : 0;
      const f = Math.fround;
      out[row + x] = f(
        f(f(f(v0 * BILINEAR[w]) + f(v1 * BILINEAR[w + 1])) + f(v2 * BILINEAR[w + 2])) +
          f(v3 * BILINEAR[w + 3]),
      );
    }
  }
  return out;
}

/**
 * Augments images `[C, H, W]` and their labels `[3, H, W]` (cellprob, flowY, flowX) into one
 * batch of crops, drawing from `rng` in cellpose's order.
 */
export function randomRotateAndResize(
  images: NdArray<Float32Array>[],
  labels: NdArray<Float32Array>[],
  rng: NumpyRandom,
  opts: AugmentOptions = {},
): AugmentedBatch {
  const range = Math.max(
    0,
    Math.min(2, opts.scaleRange ?? (paramSpec(TRAIN_PARAMS, "scale_range").default as number)),
  );
  const [ly, lx] = opts.xy ?? [256, 256];
  const nimg = images.length;
  if (labels.length !== nimg) {
    throw new CellposeError(
      "BAD_SHAPE",
      `${nimg} images but ${labels.length} labels`,
      labels.length,
    );
  }
  const nchan = images[0].shape[0];
  const nt = labels[0].shape[0];
  const out = new Float32Array(nimg * nchan * ly * lx);
  const lbl = new Float32Array(nimg * nt * ly * lx);
  const scale: number[] = [];
  const plane = ly * lx;
  for (let n = 0; n < nimg; n++) {
    const [, H, W] = images[n].shape;
    if (labels[n].shape[1] !== H || labels[n].shape[2] !== W || images[n].shape[0] !== nchan) {
      throw new CellposeError(
        "BAD_SHAPE",
        `image ${n} is [${images[n].shape}] but its labels are [${labels[n].shape}]`,
        labels[n].shape,
      );
    }
    const flip = rng.random() > 0.5;
    const theta = rng.random() * Math.PI * 2;
    const u = rng.random();
    let sc = Math.fround(
      opts.scaleLog
        ? opts.scaleLog[0] * (opts.scaleLog[1] / opts.scaleLog[0]) ** u
        : 1 - range / 2 + range * u,
    );
    if (opts.rescale) sc = Math.fround(sc * (1 / opts.rescale[n]));
    scale.push(sc);
    const u0 = rng.random(), u1 = rng.random();
    const dx = (u0 - 0.5) * Math.max(0, W * sc - lx);
    const dy = (u1 - 0.5) * Math.max(0, H * sc - ly);
    const cc = [W / 2, H / 2];
    const cc1 = [cc[0] - (W - lx) / 2 + dx, cc[1] - (H - ly) / 2 + dy];
    const f = Math.fround;
    const p0 = [f(cc1[0]), f(cc1[1])];
    const p1 = [f(cc1[0] + sc * Math.cos(theta)), f(cc1[1] + sc * Math.sin(theta))];
    const p2 = [
      f(cc1[0] + sc * Math.cos(Math.PI / 2 + theta)),
      f(cc1[1] + sc * Math.sin(Math.PI / 2 + theta)),
    ];
    const s0 = [f(cc[0]), f(cc[1])];
    // getAffineTransform of (s0, s0 + (1, 0), s0 + (0, 1)) -> (p0, p1, p2)
    const a = p1[0] - p0[0], b = p2[0] - p0[0];
    const c = p1[1] - p0[1], d = p2[1] - p0[1];
    const m: Affine = [a, b, p0[0] - a * s0[0] - b * s0[1], c, d, p0[1] - c * s0[0] - d * s0[1]];

    // flipped: the planes are sampled mirrored, and the X flow negated (after the warp, which
    // is linear: the same values as negating before)
    const mirror = flip && opts.flip !== false;
    const planeOf = (a: NdArray<Float32Array>, k: number) => ({
      data: a.data.subarray(k * H * W, (k + 1) * H * W),
      shape: [H, W],
    });
    for (let k = 0; k < nchan; k++) {
      const o = (n * nchan + k) * plane;
      warpAffine(planeOf(images[n], k), m, ly, lx, false, mirror, out.subarray(o, o + plane));
    }
    for (let k = 0; k < nt; k++) {
      const o = (n * nt + k) * plane, dst = lbl.subarray(o, o + plane);
      warpAffine(planeOf(labels[n], k), m, ly, lx, k === 0, mirror, dst);
      if (mirror && k === 2) { for (let i = 0; i < plane; i++) dst[i] = -dst[i]; }
    }
    if (nt > 1) {
      const yo = (n * nt + 1) * plane, xo = (n * nt + 2) * plane;
      const sn = Math.sin(-theta), cs = Math.cos(-theta);
      for (let i = 0; i < plane; i++) {
        const v1 = lbl[xo + i], v2 = lbl[yo + i];
        lbl[yo + i] = -v1 * sn + v2 * cs;
        lbl[xo + i] = v1 * cs + v2 * sn;
      }
    }
  }
  return {
    images: { data: out, shape: [nimg, nchan, ly, lx] },
    labels: { data: lbl, shape: [nimg, nt, ly, lx] },
    scale,
  };
}
