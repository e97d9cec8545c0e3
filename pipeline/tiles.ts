/**
 * Tiling of an image for the network and recombination of the tile outputs (cellpose v4
 * `core.run_net` with `augment=False`, pipeline.md section 4):
 * - padding per axis: a size `n >= bsize` is padded to the next multiple of 16 plus 16
 *   (`Lpad = 16 * ceil(n / 16) - n`), a smaller one by `Lpad = max(0, bsize - n - 16)` plus 16
 *   (so to `bsize` when `n <= bsize - 16`); half before (`8 + Lpad // 2`), half after
 *   (`8 + Lpad - Lpad // 2`), zeros. (Some cellpose versions pad small sizes to `bsize + 16`
 *   instead; the reference fixtures were made with this rule.)
 * - tiles per axis: 1 if the padded size `L <= bsize`, else `ceil((1 + 2 * overlap) * L / bsize)`
 *   (overlap clamped to [0.05, 0.5]); starts `linspace(0, L - tile, n)` truncated; tile size
 *   `min(bsize, L)`;
 * - recombination: every tile output times the taper `m(y) * m(x)` summed into the padded image,
 *   divided by the summed taper, padding cut off.
 *
 * Tiles are cut on demand from the unpadded image ({@link extractTile}), and outputs are summed
 * as they come ({@link TileAccumulator}), so no list of all tiles is ever held.
 *
 * @example
 * ```ts
 * import { planTiles } from "./tiles.ts";
 * const plan = planTiles(300, 417);
 * console.log(plan.padY, plan.padX, plan.ys, plan.xs); // [10, 10] [15, 16] [0, 64] [0, 96, 192]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";

/** How an H x W image is padded and cut into tiles. */
export interface TilePlan {
  /** image size */
  height: number;
  width: number;
  /** zeros added [before, after] along Y and X */
  padY: [number, number];
  padX: [number, number];
  /** padded size */
  paddedHeight: number;
  paddedWidth: number;
  /** tile size along Y and X: `min(bsize, padded size)` */
  tileHeight: number;
  tileWidth: number;
  /** tile starts in padded coordinates */
  ys: number[];
  xs: number[];
}

/** Options of {@link planTiles}. */
export interface TileOptions {
  /** [256] tile size of the network */
  bsize?: number;
  /** [0.1] overlap fraction, used clamped to [0.05, 0.5] like cellpose */
  tileOverlap?: number;
}

/**
 * Padding [before, after] of an axis of size `n` (see the module doc).
 *
 * @example
 * ```ts
 * import { padAmounts } from "./tiles.ts";
 * console.log(padAmounts(300, 256), padAmounts(150, 256)); // [10, 10] [53, 53]
 * ```
 */
export function padAmounts(n: number, bsize = 256): [number, number] {
  const lpad = n >= bsize ? 16 * Math.ceil(n / 16) - n : Math.max(0, bsize - n - 16);
  const half = Math.floor(lpad / 2);
  return [8 + half, 8 + lpad - half];
}

/**
 * `np.linspace(0, span, n).astype(int)`: n starts from 0 to `span` (both included when n > 1).
 *
 * @example
 * ```ts
 * import { tileStarts } from "./tiles.ts";
 * console.log(tileStarts(192, 3)); // [0, 96, 192]
 * ```
 */
export function tileStarts(span: number, n: number): number[] {
  if (n === 1) return [0];
  const step = span / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? span : Math.trunc(i * step)));
}

/**
 * Number of tiles along an axis of padded size `L`.
 *
 * @example
 * ```ts
 * import { tileCount } from "./tiles.ts";
 * console.log(tileCount(448, 256, 0.1)); // 3
 * ```
 */
export function tileCount(L: number, bsize = 256, tileOverlap = 0.1): number {
  const ov = Math.min(0.5, Math.max(0.05, tileOverlap));
  return L <= bsize ? 1 : Math.ceil((1 + 2 * ov) * L / bsize);
}

/**
 * The padding and tiles of an H x W image.
 *
 * @example
 * ```ts
 * import { planTiles } from "./tiles.ts";
 * const plan = planTiles(100, 300); // 100 is padded to 256 (one tile), 300 to 320 (two)
 * console.log(plan.paddedHeight, plan.ys, plan.xs); // 256 [0] [0, 64]
 * ```
 */
export function planTiles(height: number, width: number, options: TileOptions = {}): TilePlan {
  const bsize = options.bsize ?? 256;
  const ov = options.tileOverlap ?? 0.1;
  for (const [name, v] of [["height", height], ["width", width], ["bsize", bsize]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new CellposeError("BAD_PARAMETER", `${name} must be a positive integer, got ${v}`, v);
    }
  }
  const padY = padAmounts(height, bsize), padX = padAmounts(width, bsize);
  const paddedHeight = height + padY[0] + padY[1], paddedWidth = width + padX[0] + padX[1];
  const tileHeight = Math.min(bsize, paddedHeight), tileWidth = Math.min(bsize, paddedWidth);
  return {
    height,
    width,
    padY,
    padX,
    paddedHeight,
    paddedWidth,
    tileHeight,
    tileWidth,
    ys: tileStarts(paddedHeight - tileHeight, tileCount(paddedHeight, bsize, ov)),
    xs: tileStarts(paddedWidth - tileWidth, tileCount(paddedWidth, bsize, ov)),
  };
}

/** cellpose's 1-D taper `1 / (1 + exp((|i - c| - (B/2 - 20)) / 7.5))` over B samples (float64). */
function taper1d(B: number): Float64Array {
  const c = (B - 1) / 2;
  const m = new Float64Array(B);
  for (let i = 0; i < B; i++) m[i] = 1 / (1 + Math.exp((Math.abs(i - c) - (B / 2 - 20)) / 7.5));
  return m;
}

/**
 * The taper `m(y) * m(x)` of a tile [ly, lx] (cellpose `_taper_mask`), float64, row-major.
 *
 * @example
 * ```ts
 * import { taperMask } from "./tiles.ts";
 * const m = taperMask(256, 256);
 * console.log(m[128 * 256 + 128] > 0.99, m[0] < 1e-6); // true true
 * ```
 */
export function taperMask(ly: number, lx: number): Float64Array {
  // cellpose crops both axes from the square mask of side max(224, ly, lx)
  const B = Math.max(224, ly, lx);
  const full = taper1d(B);
  const oy = Math.floor(B / 2) - Math.floor(ly / 2), ox = Math.floor(B / 2) - Math.floor(lx / 2);
  const m = new Float64Array(ly * lx);
  for (let y = 0; y < ly; y++) {
    for (let x = 0; x < lx; x++) m[y * lx + x] = full[oy + y] * full[ox + x];
  }
  return m;
}

/**
 * Writes tile (ty, tx) of a channel-last float32 image [H, W, C] into `out` channel-first
 * [C, tileHeight, tileWidth] at `offset`, reading zeros where the tile covers padding.
 *
 * @example
 * ```ts
 * import { extractTile, planTiles } from "./tiles.ts";
 * const img = { data: new Float32Array(300 * 417 * 3).fill(1), shape: [300, 417, 3] };
 * const plan = planTiles(300, 417);
 * const out = new Float32Array(3 * 256 * 256);
 * extractTile(img, plan, 0, 0, out, 0);
 * console.log(out[0], out[10 * 256 + 15]); // 0 1  (padding, then the first pixel)
 * ```
 */
export function extractTile(
  image: NdArray<Float32Array>,
  plan: TilePlan,
  ty: number,
  tx: number,
  out: Float32Array,
  offset: number,
): void {
  const [h, w, nc] = image.shape;
  const th = plan.tileHeight, tw = plan.tileWidth;
  const y0 = plan.ys[ty] - plan.padY[0], x0 = plan.xs[tx] - plan.padX[0];
  out.fill(0, offset, offset + nc * th * tw);
  const xa = Math.max(0, -x0), xb = Math.min(tw, w - x0);
  for (let y = 0; y < th; y++) {
    const sy = y0 + y;
    if (sy < 0 || sy >= h) continue;
    for (let x = xa; x < xb; x++) {
      const p = (sy * w + x0 + x) * nc;
      for (let c = 0; c < nc; c++) out[offset + (c * th + y) * tw + x] = image.data[p + c];
    }
  }
}

/**
 * Sums tapered tile outputs into the padded image and returns their weighted average without the
 * padding (cellpose `average_tiles`: float32 sums, float64 weights).
 *
 * @example
 * ```ts
 * import { planTiles, TileAccumulator } from "./tiles.ts";
 * const plan = planTiles(300, 417);
 * const acc = new TileAccumulator(plan, 3);
 * const tile = new Float32Array(3 * 256 * 256).fill(2);
 * for (let j = 0; j < plan.ys.length; j++) {
 *   for (let i = 0; i < plan.xs.length; i++) acc.add(tile, 0, j, i);
 * }
 * console.log(acc.result().data[0]); // 2
 * ```
 */
export class TileAccumulator {
  readonly plan: TilePlan;
  readonly channels: number;
  readonly #sums: Float32Array;
  readonly #weights: Float64Array;
  readonly #taper: Float64Array;

  constructor(plan: TilePlan, channels: number) {
    this.plan = plan;
    this.channels = channels;
    this.#sums = new Float32Array(channels * plan.paddedHeight * plan.paddedWidth);
    this.#weights = new Float64Array(plan.paddedHeight * plan.paddedWidth);
    this.#taper = taperMask(plan.tileHeight, plan.tileWidth);
  }

  /** Adds the output of tile (ty, tx), channel-first [channels, tileHeight, tileWidth] at `offset`. */
  add(output: Float32Array, offset: number, ty: number, tx: number): void {
    const { paddedHeight: L, paddedWidth: W, tileHeight: th, tileWidth: tw } = this.plan;
    const y0 = this.plan.ys[ty], x0 = this.plan.xs[tx];
    const sums = this.#sums, weights = this.#weights, taper = this.#taper;
    for (let c = 0; c < this.channels; c++) {
      for (let y = 0; y < th; y++) {
        const s = (c * L + y0 + y) * W + x0, o = offset + (c * th + y) * tw, m = y * tw;
        for (let x = 0; x < tw; x++) sums[s + x] += output[o + x] * taper[m + x];
      }
    }
    for (let y = 0; y < th; y++) {
      const s = (y0 + y) * W + x0, m = y * tw;
      for (let x = 0; x < tw; x++) weights[s + x] += taper[m + x];
    }
  }

  /** The averaged outputs [channels, height, width] with the padding cut off. */
  result(): NdArray<Float32Array> {
    const { height: h, width: w, paddedHeight: L, paddedWidth: W, padY, padX } = this.plan;
    const out = new Float32Array(this.channels * h * w);
    for (let c = 0; c < this.channels; c++) {
      for (let y = 0; y < h; y++) {
        const s = (c * L + y + padY[0]) * W + padX[0], ws = (y + padY[0]) * W + padX[0];
        const o = (c * h + y) * w;
        for (let x = 0; x < w; x++) out[o + x] = this.#sums[s + x] / this.#weights[ws + x];
      }
    }
    return { data: out, shape: [this.channels, h, w] };
  }
}
