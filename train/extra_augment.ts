/**
 * Augmentations beyond cellpose's `train_seg`, for training from scratch (the Cellpose-SAM
 * paper's recipe): channel shuffling, intensity jitter, Gaussian blur and Gaussian noise, each
 * drawn per image from its own generator, so that cellpose's own draws (image order, flips,
 * angles, scales) stay those of `train_seg`. All are off by default.
 *
 * @example
 * ```ts
 * import { NumpyRandom } from "../core/random.ts";
 * import { extraAugment } from "./extra_augment.ts";
 * const batch = { data: new Float32Array(3 * 16 * 16).fill(0.5), shape: [1, 3, 16, 16] };
 * extraAugment(batch, new NumpyRandom(1), { noise: 0.2 });
 * if (batch.data.every((v) => v === 0.5)) throw new Error("no noise added");
 * ```
 * @module
 */
import type { NdArray } from "../core/ndarray.ts";
import type { NumpyRandom } from "../core/random.ts";

/** Which extra augmentations to apply (all off by default). */
export interface ExtraAugmentOptions {
  /**
   * probability of keeping one channel of a grayscale image stored as 3 equal channels, as a
   * one-channel file gives it (before the shuffle)
   */
  grayOneChannel?: number;
  /** permute the 3 input channels at random (the model then ignores channel order) */
  channelShuffle?: boolean;
  /** multiply each image by a gain in [1/(1+j), 1+j] and add an offset in [-j/2, j/2] */
  intensity?: number;
  /** Gaussian blur with sigma uniform in [0, blur] pixels, for half of the images */
  blur?: number;
  /** Gaussian noise with sigma uniform in [0, noise], for half of the images */
  noise?: number;
}

/** Separable Gaussian blur of one plane in place (zero-padded edges renormalised). */
function blurPlane(p: Float32Array, H: number, W: number, sigma: number) {
  const r = Math.ceil(3 * sigma);
  const k = new Float64Array(2 * r + 1);
  for (let i = -r; i <= r; i++) k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  const tmp = new Float32Array(p.length);
  const pass = (
    src: Float32Array,
    dst: Float32Array,
    n: number,
    m: number,
    stride: number,
    step: number,
  ) => {
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < m; b++) {
        let s = 0, w = 0;
        for (let i = -r; i <= r; i++) {
          const j = b + i;
          if (j < 0 || j >= m) continue;
          s += k[i + r] * src[a * stride + j * step];
          w += k[i + r];
        }
        dst[a * stride + b * step] = s / w;
      }
    }
  };
  pass(p, tmp, H, W, W, 1);
  pass(tmp, p, W, H, 1, W);
}

/** Applies the extra augmentations to a batch `[B, C, H, W]` in place. */
export function extraAugment(
  batch: NdArray<Float32Array>,
  rng: NumpyRandom,
  opts: ExtraAugmentOptions,
): void {
  const [B, C, H, W] = batch.shape;
  const plane = H * W;
  for (let b = 0; b < B; b++) {
    const img = batch.data.subarray(b * C * plane, (b + 1) * C * plane);
    if (opts.grayOneChannel && C > 1 && rng.random() < opts.grayOneChannel) {
      let gray = true;
      for (let i = 0; i < plane && gray; i++) {
        for (let c = 1; c < C; c++) if (img[c * plane + i] !== img[i]) gray = false;
      }
      if (gray) img.fill(0, plane);
    }
    if (opts.channelShuffle) {
      const perm = rng.permutation(C);
      const copy = img.slice();
      for (let c = 0; c < C; c++) {
        img.set(copy.subarray(perm[c] * plane, (perm[c] + 1) * plane), c * plane);
      }
    }
    // empty channels (a grayscale image's padding) stay empty
    const planes = Array.from({ length: C }, (_, c) => img.subarray(c * plane, (c + 1) * plane))
      .filter((p) => p.some((v) => v !== 0));
    if (opts.intensity) {
      const j = opts.intensity;
      const gain = Math.exp((2 * rng.random() - 1) * Math.log(1 + j));
      const offset = (rng.random() - 0.5) * j;
      for (const p of planes) for (let i = 0; i < p.length; i++) p[i] = p[i] * gain + offset;
    }
    if (opts.blur && rng.random() < 0.5) {
      const sigma = rng.random() * opts.blur;
      if (sigma > 0.3) { for (const p of planes) blurPlane(p, H, W, sigma); }
    }
    if (opts.noise && rng.random() < 0.5) {
      const sigma = rng.random() * opts.noise;
      for (const p of planes) for (let i = 0; i < p.length; i++) p[i] += sigma * rng.normal();
    }
  }
}
