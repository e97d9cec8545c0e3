/**
 * Heat diffusion of cellpose v4 `masks_to_flows` (`_extend_centers_gpu`), in float64, run mask by
 * mask inside each mask's bounding box padded by 1: since heat never crosses into another label,
 * this equals the reference's whole-image iteration while touching only the boxes.
 *
 * 2D: each iteration adds 1 at the centre, then every mask pixel takes the sum of its 3x3
 * neighbourhood / 9 (neighbours outside the mask count 0). 3D: 7-point stencil (self and the six
 * face neighbours) / 7.
 *
 * @example
 * ```ts
 * import { diffuseHeat2D } from "./heat.ts";
 * const labels = new Uint32Array([1, 1, 1]);
 * const T = diffuseHeat2D(labels, [1, 3], new Uint32Array([1]), 2);
 * console.log(T); // Float64Array [0.1358..., 0.1481..., 0.1358...] (11/81, 12/81, 11/81)
 * ```
 * @module
 */
import { maxLabel } from "../core/labels.ts";
import { boundingBoxes } from "./labels.ts";

/** 2D diffusion; see {@link DynamicsBackend.diffuseHeat}. Returns heat `[Ly, Lx]`. */
export function diffuseHeat2D(
  labels: Uint32Array,
  shape: readonly number[],
  centers: Uint32Array,
  niter: number,
): Float64Array {
  const [ly, lx] = shape;
  const heat = new Float64Array(ly * lx);
  const { lo, hi } = boundingBoxes(labels, shape, maxLabel(labels));
  let cap = 0;
  for (let j = 0; j < centers.length; j++) {
    const b = (labels[centers[j]] - 1) * 2;
    cap = Math.max(cap, (hi[b] - lo[b] + 3) * (hi[b + 1] - lo[b + 1] + 3));
  }
  let T = new Float64Array(cap);
  let N = new Float64Array(cap);
  const pix = new Int32Array(cap); // box indices of the mask's pixels
  for (let j = 0; j < centers.length; j++) {
    const c = centers[j];
    const label = labels[c];
    const b = (label - 1) * 2;
    const y0 = lo[b] - 1, x0 = lo[b + 1] - 1;
    const bh = hi[b] - lo[b] + 3, bw = hi[b + 1] - lo[b + 1] + 3;
    const n = bh * bw;
    T.fill(0, 0, n);
    N.fill(0, 0, n);
    let m = 0;
    for (let y = 1; y < bh - 1; y++) {
      const src = (y0 + y) * lx + x0;
      for (let x = 1; x < bw - 1; x++) if (labels[src + x] === label) pix[m++] = y * bw + x;
    }
    const ci = (Math.floor(c / lx) - y0) * bw + (c % lx) - x0;
    for (let t = 0; t < niter; t++) {
      T[ci] += 1;
      for (let q = 0; q < m; q++) {
        const i = pix[q];
        // the reference's summation order: self, up, down, left, right, then the diagonals
        N[i] = (T[i] + T[i - bw] + T[i + bw] + T[i - 1] + T[i + 1] + T[i - bw - 1] +
          T[i - bw + 1] + T[i + bw - 1] + T[i + bw + 1]) / 9;
      }
      const s = T;
      T = N;
      N = s;
    }
    for (let q = 0; q < m; q++) {
      const i = pix[q];
      heat[(y0 + Math.floor(i / bw)) * lx + x0 + (i % bw)] = T[i];
    }
  }
  return heat;
}

/** 3D diffusion (7-point stencil) of `masks_to_flows_gpu_3d`. Returns heat `[Lz, Ly, Lx]`. */
export function diffuseHeat3D(
  labels: Uint32Array,
  shape: readonly number[],
  centers: Uint32Array,
  niter: number,
): Float64Array {
  const [lz, ly, lx] = shape;
  const heat = new Float64Array(lz * ly * lx);
  const { lo, hi } = boundingBoxes(labels, shape, maxLabel(labels));
  let cap = 0;
  for (let j = 0; j < centers.length; j++) {
    const b = (labels[centers[j]] - 1) * 3;
    cap = Math.max(
      cap,
      (hi[b] - lo[b] + 3) * (hi[b + 1] - lo[b + 1] + 3) * (hi[b + 2] - lo[b + 2] + 3),
    );
  }
  let T = new Float64Array(cap);
  let N = new Float64Array(cap);
  const inside = new Uint8Array(cap);
  for (let j = 0; j < centers.length; j++) {
    const c = centers[j];
    const label = labels[c];
    const b = (label - 1) * 3;
    const z0 = lo[b] - 1, y0 = lo[b + 1] - 1, x0 = lo[b + 2] - 1;
    const bd = hi[b] - lo[b] + 3, bh = hi[b + 1] - lo[b + 1] + 3, bw = hi[b + 2] - lo[b + 2] + 3;
    const plane = bh * bw;
    const n = bd * plane;
    T.fill(0, 0, n);
    N.fill(0, 0, n);
    inside.fill(0, 0, n);
    for (let z = 1; z < bd - 1; z++) {
      for (let y = 1; y < bh - 1; y++) {
        const src = ((z0 + z) * ly + y0 + y) * lx + x0;
        const dst = z * plane + y * bw;
        for (let x = 1; x < bw - 1; x++) inside[dst + x] = labels[src + x] === label ? 1 : 0;
      }
    }
    const cz = Math.floor(c / (ly * lx)), cy = Math.floor(c / lx) % ly, cx = c % lx;
    const ci = (cz - z0) * plane + (cy - y0) * bw + cx - x0;
    for (let t = 0; t < niter; t++) {
      T[ci] += 1;
      for (let z = 1; z < bd - 1; z++) {
        for (let y = 1; y < bh - 1; y++) {
          const r = z * plane + y * bw;
          for (let x = 1; x < bw - 1; x++) {
            const i = r + x;
            N[i] = inside[i]
              ? (T[i] + T[i + plane] + T[i - plane] + T[i + bw] + T[i - bw] + T[i + 1] + T[i - 1]) /
                7
              : 0;
          }
        }
      }
      const s = T;
      T = N;
      N = s;
    }
    for (let z = 1; z < bd - 1; z++) {
      for (let y = 1; y < bh - 1; y++) {
        const src = z * plane + y * bw;
        const dst = ((z0 + z) * ly + y0 + y) * lx + x0;
        for (let x = 1; x < bw - 1; x++) if (inside[src + x]) heat[dst + x] = T[src + x];
      }
    }
  }
  return heat;
}
