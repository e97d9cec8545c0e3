/**
 * Masks from final pixel positions (cellpose v4 `get_masks_torch`), 2D and 3D.
 *
 * Final positions plus `rpad = 20`, clamped per axis to `[0, L + 19]`, are counted into a
 * histogram of `L + 40` bins per axis. Seeds: bins holding more than 10 points that equal the
 * maximum of the 5-wide box around them, sorted by count ascending (ties: row-major order).
 * Each seed grows in the 11-wide window around it: 5 times, a 3-wide max-pool dilation (clipped
 * to the window) kept only where the histogram holds more than 2 points. Seed k paints label
 * k + 1 into its grown bins (later seeds overwrite earlier ones) and every followed pixel takes
 * the label of its bin. Masks larger than `maxSizeFraction` of the image are removed and labels
 * renumbered 1..N in order of first appearance.
 *
 * Positions outside the image come only from a block's dynamics (`followFlows` with a frame):
 * those within `rpad - 5` (the seed window's radius) of the image are counted in the histogram's
 * padding as they are, farther ones are left out (label 0: their cell lies beyond the block).
 *
 * @example
 * ```ts
 * import { getMasks } from "./get_masks.ts";
 * // 12 pixels of a 4 x 4 image that all ended at (1, 1)
 * const cells = Uint32Array.from({ length: 12 }, (_, i) => i);
 * const final = new Int32Array(24).fill(1);
 * const { labels, nMasks } = getMasks(final, cells, [4, 4], 1);
 * console.log(nMasks, labels.slice(0, 4)); // 1 Uint32Array [1, 1, 1, 1]
 * ```
 * @module
 */
import { renumber } from "./labels.ts";

const RPAD = 20;
const PEAK_RADIUS = 2; // 5-wide box
const MIN_PEAK = 10;
const WIN_RADIUS = 5; // 11-wide window
const WIN = 2 * WIN_RADIUS + 1;
const GROW_ITERS = 5;
const MIN_DENSITY = 2;

/**
 * Labels the followed pixels from their final positions.
 * @param final truncated final positions, `ndim` per cell interleaved (from `followFlows`)
 * @param cells linear indices of the followed pixels
 * @param shape `[Ly, Lx]` or `[Lz, Ly, Lx]`
 * @param maxSizeFraction masks with more pixels than this fraction of the image are removed
 * @param imageSize pixel count the fraction refers to (a block's full image), default `shape`'s
 * @returns label image (0 background, 1..nMasks) and the number of masks
 */
export function getMasks(
  final: Int32Array,
  cells: Uint32Array,
  shape: readonly number[],
  maxSizeFraction: number,
  imageSize = shape.reduce((a, b) => a * b, 1),
): { labels: Uint32Array; nMasks: number } {
  const ndim = shape.length;
  const hs = shape.map((l) => l + 2 * RPAD);
  const hstr = ndim === 2 ? [hs[1], 1] : [hs[1] * hs[2], hs[2], 1];
  const hsize = hs.reduce((a, b) => a * b, 1);
  const npts = cells.length;

  // histogram of final positions (-1: out of reach, see the module doc)
  const h = new Uint32Array(hsize);
  const bins = new Int32Array(npts);
  const reach = RPAD - WIN_RADIUS;
  for (let j = 0; j < npts; j++) {
    let b = 0, inReach = true;
    for (let k = 0; k < ndim; k++) {
      const p = final[j * ndim + k];
      if (p < -reach || p >= shape[k] + reach) inReach = false;
      b += (p + RPAD) * hstr[k];
    }
    bins[j] = inReach ? b : -1;
    if (inReach) h[b]++;
  }

  // seeds: local maxima over the 5-wide box with more than 10 points
  const seeds: number[] = [];
  const seen = new Uint8Array(hsize);
  const coord = new Int32Array(ndim);
  for (let j = 0; j < npts; j++) {
    const b = bins[j];
    if (b < 0 || seen[b] || h[b] <= MIN_PEAK) continue;
    seen[b] = 1;
    if (isBoxMax(h, b, hs, hstr, coord)) seeds.push(b);
  }
  seeds.sort((a, b) => h[a] - h[b] || a - b);

  // grow every seed in its window and paint the histogram-sized label map
  const M = new Uint32Array(hsize);
  const winSize = ndim === 2 ? WIN * WIN : WIN * WIN * WIN;
  const dense = new Uint8Array(winSize);
  let grown = new Uint8Array(winSize);
  let tmp = new Uint8Array(winSize);
  const wstr = ndim === 2 ? [WIN, 1] : [WIN * WIN, WIN, 1];
  const center = (winSize - 1) / 2;
  for (let k = 0; k < seeds.length; k++) {
    const s = seeds[k];
    // window origin (seeds lie >= rpad from the histogram border, so the window fits)
    const origin = s - WIN_RADIUS * hstr.reduce((a, b) => a + b, 0);
    forWindow(ndim, wstr, hstr, (w, o) => (dense[w] = h[origin + o] > MIN_DENSITY ? 1 : 0));
    grown.fill(0);
    grown[center] = 1;
    for (let it = 0; it < GROW_ITERS; it++) {
      for (let axis = 0; axis < ndim; axis++) {
        dilate1D(grown, tmp, ndim, axis);
        const t = grown;
        grown = tmp;
        tmp = t;
      }
      for (let w = 0; w < winSize; w++) grown[w] &= dense[w];
    }
    forWindow(ndim, wstr, hstr, (w, o) => {
      if (grown[w]) M[origin + o] = k + 1;
    });
  }

  // label the pixels, drop oversized masks, renumber
  const labels = new Uint32Array(shape.reduce((a, b) => a * b, 1));
  const counts = new Float64Array(seeds.length + 1);
  for (let j = 0; j < npts; j++) {
    const l = bins[j] < 0 ? 0 : M[bins[j]];
    labels[cells[j]] = l;
    counts[l]++;
  }
  const big = imageSize * maxSizeFraction;
  let anyBig = false;
  for (let l = 1; l <= seeds.length; l++) if (counts[l] > big) anyBig = true;
  if (anyBig) {
    for (let i = 0; i < labels.length; i++) if (counts[labels[i]] > big) labels[i] = 0;
  }
  return { labels, nMasks: renumber(labels) };
}

/** Whether bin `b` equals the maximum of the (clipped) 5-wide box around it. */
function isBoxMax(
  h: Uint32Array,
  b: number,
  hs: readonly number[],
  hstr: readonly number[],
  coord: Int32Array,
): boolean {
  const ndim = hs.length;
  let rem = b;
  for (let k = 0; k < ndim; k++) {
    coord[k] = Math.floor(rem / hstr[k]);
    rem -= coord[k] * hstr[k];
  }
  const v = h[b];
  const lo = (k: number) => Math.max(0, coord[k] - PEAK_RADIUS);
  const hi = (k: number) => Math.min(hs[k] - 1, coord[k] + PEAK_RADIUS);
  if (ndim === 2) {
    for (let y = lo(0); y <= hi(0); y++) {
      for (let x = lo(1); x <= hi(1); x++) if (h[y * hstr[0] + x] > v) return false;
    }
    return true;
  }
  for (let z = lo(0); z <= hi(0); z++) {
    for (let y = lo(1); y <= hi(1); y++) {
      for (let x = lo(2); x <= hi(2); x++) if (h[z * hstr[0] + y * hstr[1] + x] > v) return false;
    }
  }
  return true;
}

/** Calls `fn(windowIndex, histogramOffset)` for every cell of the 11-wide window. */
function forWindow(
  ndim: number,
  wstr: readonly number[],
  hstr: readonly number[],
  fn: (w: number, o: number) => void,
): void {
  if (ndim === 2) {
    for (let y = 0; y < WIN; y++) {
      for (let x = 0; x < WIN; x++) fn(y * wstr[0] + x, y * hstr[0] + x);
    }
    return;
  }
  for (let z = 0; z < WIN; z++) {
    for (let y = 0; y < WIN; y++) {
      for (let x = 0; x < WIN; x++) {
        fn(z * wstr[0] + y * wstr[1] + x, z * hstr[0] + y * hstr[1] + x);
      }
    }
  }
}

/** 3-wide max along one axis of the window, clipped at its edges: `src` -> `dst`. */
function dilate1D(src: Uint8Array, dst: Uint8Array, ndim: number, axis: number): void {
  const stride = axis === ndim - 1 ? 1 : axis === ndim - 2 ? WIN : WIN * WIN;
  for (let w = 0; w < src.length; w++) {
    const c = Math.floor(w / stride) % WIN;
    let m = src[w];
    if (c > 0 && src[w - stride]) m = 1;
    if (c < WIN - 1 && src[w + stride]) m = 1;
    dst[w] = m;
  }
}
