/**
 * Weight folding for cpsam's inference graph: static work done once at conversion instead of
 * in every tile. The relative-position tables are resized to `2 * grid - 1` rows (as SAM's
 * `get_rel_pos`) and laid out per query row; linear weights are transposed for `x @ W` (with
 * the attention scale folded into the key rows); the readout's 1x1 convolution and the fixed
 * transposed convolution `W2` become one matrix; the one-hot key rows add the decomposed
 * relative-position bias inside the score MatMul. The resize matrix is shared with the training
 * graph, which applies it inside the graph.
 *
 * @example
 * ```ts
 * import { relPosGather } from "./cpsam_fold.ts";
 * // 3 rows resized to 2 * 2 - 1 = 3 (no change), gathered at q - k + 1 for q, k in 0..1
 * const c = relPosGather(3, 2);
 * if (c.join() !== "0,1,0,1,0,0,0,0,1,0,1,0") throw new Error(c.join());
 * ```
 * @module
 */
import type { NdArray } from "../core/ndarray.ts";
import type { StateDict } from "./checkpoint.ts";
import { type CpsamConfig, stateTensor } from "./cpsam_config.ts";

/**
 * Row weights of PyTorch's `F.interpolate(mode="linear", align_corners=False)` from `n` to
 * `L = 2G - 1` rows, gathered at the relative offsets `q - k + G - 1`: a `[G * G, n]` matrix
 * `C` with `C @ rel_pos` = `get_rel_pos(G, G, rel_pos)` as `[(q, k), headDim]`.
 */
export function relPosGather(n: number, G: number): Float32Array {
  const L = 2 * G - 1;
  const interp = new Float64Array(L * n);
  if (n === L) {
    for (let i = 0; i < L; i++) interp[i * n + i] = 1;
  } else {
    const scale = Math.fround(n / L);
    for (let i = 0; i < L; i++) {
      const src = Math.max(0, Math.fround(scale * (i + 0.5) - 0.5));
      const i0 = Math.min(Math.floor(src), n - 1);
      const i1 = Math.min(i0 + 1, n - 1);
      const w = Math.fround(src - i0);
      interp[i * n + i0] += Math.fround(1 - w);
      interp[i * n + i1] += w;
    }
  }
  const out = new Float32Array(G * G * n);
  for (let q = 0; q < G; q++) {
    for (let k = 0; k < G; k++) {
      const r = q - k + G - 1;
      out.set(interp.subarray(r * n, (r + 1) * n), (q * G + k) * n);
    }
  }
  return out;
}

/**
 * `rel_pos` resized to `2 * grid - 1` rows and laid out per query row as
 * `[grid (q), headDim, grid (k)]`: `T[q, c, k] = (C @ rel_pos)[(q, k), c]` with `C` from
 * {@link relPosGather}.
 */
export function relPosTable(rel: NdArray<Float32Array>, grid: number): Float32Array {
  const [n, d] = rel.shape;
  const gather = relPosGather(n, grid);
  const out = new Float32Array(grid * d * grid);
  const row = new Float64Array(d);
  for (let q = 0; q < grid; q++) {
    for (let k = 0; k < grid; k++) {
      row.fill(0);
      const at = (q * grid + k) * n;
      for (let j = 0; j < n; j++) {
        const w = gather[at + j];
        if (w !== 0) { for (let c = 0; c < d; c++) row[c] += w * rel.data[j * d + c]; }
      }
      for (let c = 0; c < d; c++) out[(q * d + c) * grid + k] = row[c];
    }
  }
  return out;
}

/** `[rows, cols]` -> `[cols, rows]` (for `x @ W`), optionally scaling rows `[r0, r1)` by `s`. */
export function transpose2d(
  w: NdArray<Float32Array>,
  scaleRows?: [number, number, number],
): Float32Array {
  const rows = w.shape[0];
  const cols = w.shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const s = scaleRows && r >= scaleRows[0] && r < scaleRows[1] ? scaleRows[2] : 1;
    for (let c = 0; c < cols; c++) out[c * rows + r] = w.data[r * cols + c] * s;
  }
  return out;
}

/** Readout 1x1 conv followed by the transposed conv `W2`, folded into one `[neck, nout*p*p]` matrix. */
export function foldReadout(sd: StateDict, c: CpsamConfig): { w: Float32Array; b: Float32Array } {
  const wo = stateTensor(sd, "out.weight").data;
  const bo = stateTensor(sd, "out.bias").data;
  const w2 = stateTensor(sd, "W2").data;
  const n = c.nout * c.patch ** 2;
  const w = new Float32Array(c.neck * n);
  const b = new Float32Array(n);
  for (let col = 0; col < n; col++) {
    let acc = 0;
    for (let ch = 0; ch < n; ch++) acc += bo[ch] * w2[ch * n + col];
    b[col] = acc;
    for (let k = 0; k < c.neck; k++) {
      let s = 0;
      for (let ch = 0; ch < n; ch++) {
        const m = w2[ch * n + col];
        if (m !== 0) s += wo[ch * c.neck + k] * m;
      }
      w[k * n + col] = s;
    }
  }
  return { w, b };
}

/**
 * Constant key rows `[2G, G*G]` that pick `rel_h[q, k_h]` and `rel_w[q, k_w]` when the query is
 * extended with `[rel_h, rel_w]`: row `k_h` and row `G + k_w` are one at key `k = k_h G + k_w`.
 */
export function relOneHot(G: number): Float32Array {
  const N = G * G;
  const e = new Float32Array(2 * G * N);
  for (let k = 0; k < N; k++) {
    e[Math.floor(k / G) * N + k] = 1;
    e[(G + (k % G)) * N + k] = 1;
  }
  return e;
}
