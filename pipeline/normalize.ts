/**
 * Per-channel intensity normalisation, cellpose v4's `transforms.normalize_img` (pipeline.md
 * section 2), on channel-last float32 data [H, W, C] or [Z, H, W, C]:
 * - default: `x = (x - p_low) / (p_high - p_low)` with the 1st and 99th percentiles (numpy linear
 *   interpolation, float32 arithmetic). A channel whose percentile range is at most 1e-3 becomes
 *   0; a constant channel is left out and then set to 0. Percentiles of a channel with more than
 *   224^3 values are taken on a strided subsample (stride `max(1, dim // 224)` per axis, Z stride
 *   `max(1, Z // 50)`).
 * - `lowhigh`: fixed [low, high] instead of percentiles, shared or one pair per channel.
 * - `tileNormBlocksize` > 0: percentiles per overlapping block, smoothed and bilinearly spread
 *   over the image (cellpose's `normalize99_tile`, including its smoothing along Z and block rows
 *   only).
 * - `invert`: `1 - x` on the channels that were normalised.
 * - `norm3D` (default true): one normalisation for the whole stack; false: per Z plane.
 *
 * @example
 * ```ts
 * import { normalizeImage } from "./normalize.ts";
 * const img = { data: Uint16Array.from({ length: 300 }, (_, i) => i), shape: [10, 10, 3] };
 * const out = normalizeImage(img);
 * console.log(out.data.constructor.name, out.shape); // Float32Array [10, 10, 3]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { ImageSource, NormalizeOptions } from "../core/types.ts";
import { badParameter, excerpt } from "../core/check.ts";
import type { BlockPlan } from "./blocks.ts";
import { percentiles } from "../core/percentile.ts";
import { NORM_PERCENTILE } from "../core/params.ts";
import { gaussianFilter1d } from "./gaussian.ts";
import { resizeImage } from "./resize.ts";
import { tileStarts } from "./tiles.ts";

const f32 = Math.fround;
/** cellpose's threshold of the percentile range (compared in float32) */
export const MIN_RANGE = f32(1e-3);
/** above this many values per channel, percentiles use a strided subsample */
const SUBSAMPLE_ABOVE = 224 ** 3;

/** A stack view: Z planes of H x W pixels with C interleaved channels. */
interface Dims {
  z: number;
  h: number;
  w: number;
  c: number;
}

function dims(shape: number[]): Dims {
  if (shape.length === 3) return { z: 1, h: shape[0], w: shape[1], c: shape[2] };
  if (shape.length === 4) return { z: shape[0], h: shape[1], w: shape[2], c: shape[3] };
  throw new CellposeError(
    "BAD_SHAPE",
    `normalizeImage takes channel-last [H, W, C] or [Z, H, W, C], got [${shape}]`,
    shape,
  );
}

/**
 * Throws BAD_VALUE naming NaN (or infinity) and its flat index when float data holds a value that
 * is not finite; integer data always passes.
 *
 * @example
 * ```ts
 * import { checkFinite } from "./normalize.ts";
 * checkFinite(new Float32Array([0, 1])); // fine
 * try {
 *   checkFinite(new Float32Array([0, NaN]));
 * } catch (e) {
 *   console.log((e as Error).message); // "image contains NaN at flat index 1: ..."
 * }
 * ```
 */
export function checkFinite(data: NumericArray): void {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new CellposeError(
        "BAD_VALUE",
        `image contains ${Number.isNaN(data[i]) ? "NaN" : "an infinite value"} at flat index ${i}` +
          `: every pixel must be a finite number`,
        data[i],
      );
    }
  }
}

function checkOptions(o: NormalizeOptions, nchan: number): void {
  const p = o.percentile;
  if (p !== undefined) {
    if (!Array.isArray(p) || p.length !== 2 || !(0 <= p[0] && p[0] < p[1] && p[1] <= 100)) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `percentile must be [low, high] with 0 <= low < high <= 100, got ${excerpt(p)}`,
        { field: "normalize.percentile", got: excerpt(p) },
      );
    }
  }
  const b = o.tileNormBlocksize;
  if (b !== undefined && !(b >= 0 && Number.isFinite(b))) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `tileNormBlocksize must be a number >= 0 (0: off), got ${b}`,
      b,
    );
  }
  if (o.lowhigh !== undefined) lowHighPairs(o.lowhigh, nchan);
}

/** `lowhigh` as one finite [low, high] pair per channel. */
function lowHighPairs(lh: NormalizeOptions["lowhigh"], nchan: number): [number, number][] {
  const isPair = (x: unknown): x is [number, number] =>
    Array.isArray(x) && x.length === 2 && x.every((v) => typeof v === "number" && isFinite(v));
  if (isPair(lh)) return Array.from({ length: nchan }, () => lh);
  if (Array.isArray(lh) && lh.length === nchan && lh.every(isPair)) return lh as [number, number][];
  throw new CellposeError(
    "BAD_PARAMETER",
    `lowhigh must be [low, high] or ${nchan} such pairs (one per channel), got ${excerpt(lh)}`,
    { field: "normalize.lowhigh", got: excerpt(lh) },
  );
}

/**
 * cellpose's subsampling strides [z, y, x] for the percentiles of an nz x h x w channel: every
 * value up to `SUBSAMPLE_ABOVE` values, else strides `max(1, Z // 50)` and `max(1, dim // 224)`.
 */
export function sampleStrides(nz: number, h: number, w: number): [number, number, number] {
  if (nz * h * w <= SUBSAMPLE_ABOVE) return [1, 1, 1];
  return [
    Math.max(1, Math.trunc(nz / 50)),
    Math.max(1, Math.trunc(h / 224)),
    Math.max(1, Math.trunc(w / 224)),
  ];
}

/** Values of channel `c` of planes [z0, z1), subsampled by cellpose's rule when large. */
function channelSample(x: Float32Array, d: Dims, c: number, z0: number, z1: number): Float32Array {
  const nz = z1 - z0;
  const [sz, sy, sx] = sampleStrides(nz, d.h, d.w);
  const cz = Math.ceil(nz / sz), cy = Math.ceil(d.h / sy), cx = Math.ceil(d.w / sx);
  const out = new Float32Array(cz * cy * cx);
  let k = 0;
  for (let z = z0; z < z1; z += sz) {
    for (let y = 0; y < d.h; y += sy) {
      let p = ((z * d.h + y) * d.w) * d.c + c;
      for (let xx = 0; xx < d.w; xx += sx, p += sx * d.c) out[k++] = x[p];
    }
  }
  return out;
}

/** Applies `v = (v - lo) / (hi - lo)` in float32 to channel c of planes [z0, z1). */
function scaleChannel(
  x: Float32Array,
  d: Dims,
  c: number,
  z0: number,
  z1: number,
  lo: number,
  hi: number,
): void {
  const lo32 = f32(lo), range = f32(f32(hi) - lo32);
  const end = z1 * d.h * d.w * d.c;
  for (let p = z0 * d.h * d.w * d.c + c; p < end; p += d.c) x[p] = f32(f32(x[p] - lo32) / range);
}

/** Percentile normalisation of channel c over planes [z0, z1); returns whether it was normalised. */
function normalizePercentile(
  x: Float32Array,
  d: Dims,
  c: number,
  z0: number,
  z1: number,
  q: readonly [number, number],
): boolean {
  let mn = Infinity, mx = -Infinity;
  const end = z1 * d.h * d.w * d.c;
  for (let p = z0 * d.h * d.w * d.c + c; p < end; p += d.c) {
    const v = x[p];
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  if (!(mx > mn)) return false;
  const [lo, hi] = percentiles(channelSample(x, d, c, z0, z1), q);
  if (f32(hi - lo) > MIN_RANGE) scaleChannel(x, d, c, z0, z1, lo, hi);
  else for (let p = z0 * d.h * d.w * d.c + c; p < end; p += d.c) x[p] = 0;
  return true;
}

/**
 * Normalises a channel-last image [H, W, C] or stack [Z, H, W, C] (any numeric type) to float32
 * (see the module doc for the rules and options). The input is not modified.
 *
 * Throws BAD_VALUE naming NaN (or infinity) when a pixel is not finite, and BAD_PARAMETER for
 * options out of range (`percentile`, `lowhigh`, `tileNormBlocksize`).
 *
 * @example
 * ```ts
 * import { normalizeImage } from "./normalize.ts";
 * const img = { data: new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]), shape: [2, 4, 1] };
 * console.log(normalizeImage(img, { lowhigh: [0, 8] }).data[4]); // 0.5
 * ```
 */
export function normalizeImage(
  image: NdArray<NumericArray>,
  options: NormalizeOptions = {},
): NdArray<Float32Array> {
  const d = dims(image.shape);
  checkFinite(image.data);
  checkOptions(options, d.c);
  const x = Float32Array.from(image.data);
  const q: readonly [number, number] = options.percentile ?? NORM_PERCENTILE;
  const norm3D = options.norm3D ?? true;
  const good = new Array<boolean>(d.c).fill(false);
  if (options.lowhigh !== undefined) {
    lowHighPairs(options.lowhigh, d.c).forEach(([lo, hi], c) => {
      scaleChannel(x, d, c, 0, d.z, lo, hi);
      good[c] = true;
    });
  } else if ((options.tileNormBlocksize ?? 0) > 0) {
    tileNormalize(x, d, options.tileNormBlocksize!, q, norm3D);
    good.fill(true);
  } else if (norm3D || d.z === 1) {
    for (let c = 0; c < d.c; c++) good[c] = normalizePercentile(x, d, c, 0, d.z, q);
  } else {
    for (let z = 0; z < d.z; z++) {
      for (let c = 0; c < d.c; c++) good[c] = normalizePercentile(x, d, c, z, z + 1, q) || good[c];
    }
  }
  for (let c = 0; c < d.c; c++) {
    for (let p = c; p < x.length; p += d.c) {
      x[p] = !good[c] ? 0 : options.invert ? f32(1 - x[p]) : x[p];
    }
  }
  return { data: x, shape: [...image.shape] };
}

/**
 * cellpose's `normalize99_tile` with `tile_overlap` 0.1: percentiles per block and channel, blocks
 * with a range below 1e-3 take their nearest valid block's values, the block grid is smoothed
 * (sigma 1 along Z and block rows; once more along block rows when `norm3D`, as in cellpose),
 * averaged over Z (norm3D) and resized to the image with INTER_LINEAR.
 */
function tileNormalize(
  x: Float32Array,
  d: Dims,
  blocksize: number,
  q: readonly [number, number],
  norm3D: boolean,
): void {
  const by = Math.trunc(Math.min(blocksize, d.h)), bx = Math.trunc(Math.min(blocksize, d.w));
  const ny = d.h <= blocksize ? 1 : Math.ceil((1 + 2 * 0.1) * d.h / blocksize);
  const nx = d.w <= blocksize ? 1 : Math.ceil((1 + 2 * 0.1) * d.w / blocksize);
  const ys = tileStarts(d.h - by, ny), xs = tileStarts(d.w - bx, nx);
  const grid = d.z * ny * nx * d.c;
  const lo = { data: new Float32Array(grid), shape: [d.z, ny, nx, d.c] };
  const hi = { data: new Float32Array(grid), shape: [d.z, ny, nx, d.c] };
  const block = new Float32Array(by * bx);
  for (let z = 0; z < d.z; z++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        for (let c = 0; c < d.c; c++) {
          let k = 0;
          for (let y = ys[j]; y < ys[j] + by; y++) {
            let p = ((z * d.h + y) * d.w + xs[i]) * d.c + c;
            for (let xx = 0; xx < bx; xx++, p += d.c) block[k++] = x[p];
          }
          const [a, b] = percentiles(block, q);
          const g = ((z * ny + j) * nx + i) * d.c + c;
          lo.data[g] = a;
          hi.data[g] = b;
        }
      }
    }
    fillFlatBlocks(lo.data, hi.data, z, ny, nx, d.c);
  }
  let lo1 = gaussianFilter1d(gaussianFilter1d(lo, 1, 0), 1, 1);
  let hi1 = gaussianFilter1d(gaussianFilter1d(hi, 1, 0), 1, 1);
  if (norm3D) {
    lo1 = gaussianFilter1d(lo1, 1, 1);
    hi1 = gaussianFilter1d(hi1, 1, 1);
  }
  const planeGrid = ny * nx * d.c, plane = d.h * d.w * d.c;
  const spread = (g: Float32Array, z0: number, z1: number) => {
    const m = new Float32Array(planeGrid);
    for (let z = z0; z < z1; z++) {
      for (let k = 0; k < planeGrid; k++) m[k] = m[k] + g[z * planeGrid + k];
    }
    for (let k = 0; k < planeGrid; k++) m[k] = f32(m[k] / (z1 - z0));
    return resizeImage({ data: m, shape: [ny, nx, d.c] }, d.h, d.w).data;
  };
  const apply = (z0: number, z1: number, zs: number, ze: number) => {
    const l = spread(lo1.data, z0, z1), h = spread(hi1.data, z0, z1);
    for (let z = zs; z < ze; z++) {
      for (let k = 0; k < plane; k++) {
        const p = z * plane + k;
        x[p] = f32(f32(x[p] - l[k]) / f32(h[k] - l[k]));
      }
    }
  };
  if (norm3D) apply(0, d.z, 0, d.z);
  else for (let z = 0; z < d.z; z++) apply(z, z + 1, z, z + 1);
}

/** Blocks of plane z whose range is below 1e-3 copy their nearest valid block (per channel). */
function fillFlatBlocks(
  lo: Float32Array,
  hi: Float32Array,
  z: number,
  ny: number,
  nx: number,
  nc: number,
): void {
  const at = (j: number, i: number, c: number) => ((z * ny + j) * nx + i) * nc + c;
  for (let c = 0; c < nc; c++) {
    const flat: [number, number][] = [], ok: [number, number][] = [];
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        (f32(hi[at(j, i, c)] - lo[at(j, i, c)]) < MIN_RANGE ? flat : ok).push([j, i]);
      }
    }
    if (flat.length === 0) continue;
    if (ok.length === 0) {
      for (const [j, i] of flat) {
        lo[at(j, i, c)] = 0;
        hi[at(j, i, c)] = 1;
      }
      continue;
    }
    for (const [j, i] of flat) {
      let best = 0, bestD = Infinity;
      ok.forEach(([oj, oi], k) => {
        const dd = (j - oj) ** 2 + (i - oi) ** 2;
        if (dd < bestD) {
          bestD = dd;
          best = k;
        }
      });
      const [oj, oi] = ok[best];
      lo[at(j, i, c)] = lo[at(oj, oi, c)];
      hi[at(j, i, c)] = hi[at(oj, oi, c)];
    }
  }
}

/**
 * The normalisation a single pass over the whole image would use, as fixed per-block options:
 * `lowhigh` per channel (cellpose's percentiles of the whole image, with its subsampling rule)
 * and the channels to zero (constant in the image, or with a percentile range <= 1e-3). One read
 * pass over the blocks' cores. `normalize: false` and given `lowhigh` pass through unchanged;
 * `tileNormBlocksize` is refused (BAD_PARAMETER): it is not a whole-image normalisation.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { arraySource } from "../io/array_source.ts";
 * import { planBlocks } from "./blocks.ts";
 * import { imageNormalization } from "./normalize.ts";
 * const data = Uint8Array.from({ length: 100 * 80 }, (_, i) => i % 200);
 * const source = arraySource({ data, shape: [100, 80] });
 * const n = await imageNormalization(source, planBlocks(100, 80, { blockSize: 32 }), {});
 * // the percentiles are float32, as cellpose's
 * const f = Math.fround;
 * assertEquals(n.normalize, { lowhigh: [[f(1.99), f(197.01)], [0, 1], [0, 1]], invert: false });
 * ```
 */
export async function imageNormalization(
  source: ImageSource,
  plan: BlockPlan,
  options: { normalize?: boolean | NormalizeOptions; invert?: boolean },
): Promise<{ normalize: false | NormalizeOptions; zeroChannels: number[] }> {
  if (options.normalize === false) return { normalize: false, zeroChannels: [] };
  const given: NormalizeOptions = typeof options.normalize === "object" ? options.normalize : {};
  if ((given.tileNormBlocksize ?? 0) > 0) {
    throw badParameter(
      "normalize.tileNormBlocksize",
      "0 for segmentLarge (tile normalisation is per block)",
      given,
    );
  }
  const invert = given.invert ?? options.invert ?? false;
  if (given.lowhigh !== undefined) {
    return { normalize: { lowhigh: given.lowhigh, invert }, zeroChannels: [] };
  }
  const q = given.percentile ?? NORM_PERCENTILE;
  const { height: h, width: w } = source;
  const nc = Math.min(3, source.channels);
  const [, sy, sx] = sampleStrides(1, h, w);
  const cy = Math.ceil(h / sy), cx = Math.ceil(w / sx);
  const samples = Array.from({ length: nc }, () => new Float32Array(cy * cx));
  const mn = new Array<number>(nc).fill(Infinity), mx = new Array<number>(nc).fill(-Infinity);
  for (const b of plan.blocks) {
    const r = b.core;
    const region = await source.read(r);
    checkFinite(region.data);
    const rw = r.x1 - r.x0, sc = source.channels;
    for (let y = r.y0; y < r.y1; y++) {
      for (let x = r.x0; x < r.x1; x++) {
        const p = ((y - r.y0) * rw + x - r.x0) * sc;
        const onGrid = y % sy === 0 && x % sx === 0;
        for (let c = 0; c < nc; c++) {
          const v = f32(region.data[p + c]);
          if (v < mn[c]) mn[c] = v;
          if (v > mx[c]) mx[c] = v;
          if (onGrid) samples[c][(y / sy) * cx + x / sx] = v;
        }
      }
    }
  }
  // constant channels (and the empty ones of a 1- or 2-channel image) end as 0 after inversion
  const empty: [number, number] = invert ? [1, 0] : [0, 1];
  const lowhigh: [number, number][] = [];
  const zeroChannels: number[] = [];
  for (let c = 0; c < 3; c++) {
    if (c >= nc || !(mx[c] > mn[c])) {
      lowhigh.push(empty);
      zeroChannels.push(c);
      continue;
    }
    const [lo, hi] = percentiles(samples[c], q);
    if (f32(hi - lo) > MIN_RANGE) lowhigh.push([lo, hi]);
    else {
      // the reference sets such a channel to 0 and still inverts it
      lowhigh.push([0, 1]);
      zeroChannels.push(c);
    }
  }
  return { normalize: { lowhigh, invert }, zeroChannels: zeroChannels.filter((c) => c < nc) };
}
