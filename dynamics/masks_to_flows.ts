/**
 * Masks -> flows (cellpose v4 `masks_to_flows`, `masks_to_flows_gpu` / `masks_to_flows_gpu_3d`):
 * heat diffusion from each mask's centre, flows = normalised central differences of the heat.
 *
 * Centre of a mask: the mask pixel closest to the mean of its coordinates rounded half to even
 * (first such pixel in row-major order on ties). Iterations: 2D `2 * max(h + w + 2)`, 3D
 * `6 * max(d + h + w + 3)` over the masks' bounding boxes. Flows are `T[+1] - T[-1]` per axis
 * (reading any label's heat, 0 outside the image), divided by `1e-60 + norm`, 0 on background.
 *
 * @example
 * ```ts
 * import { masksToFlows } from "./masks_to_flows.ts";
 * const labels = { data: new Uint16Array([0, 1, 1, 0, 1, 1, 0, 0, 0]), shape: [3, 3] };
 * const flows = masksToFlows(labels);
 * console.log(flows.shape); // [2, 3, 3]: (dY, dX)
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { type NdArray, size } from "../core/ndarray.ts";
import { diffuseHeat2D, diffuseHeat3D } from "./heat.ts";
import { maxLabel, toLabels } from "../core/labels.ts";
import { boundingBoxes, renumber } from "./labels.ts";

/** Round half to even, as numpy's `np.round`. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Centre pixel (linear index) of every present label, in label order, and the reference's
 * number of diffusion iterations.
 */
export function maskCenters(
  labels: Uint32Array,
  shape: readonly number[],
): { centers: Uint32Array; niter: number } {
  const ndim = shape.length;
  const max = maxLabel(labels);
  const { lo, hi } = boundingBoxes(labels, shape, max);
  const sum = new Float64Array(max * ndim);
  const count = new Float64Array(max);
  const lx = shape[ndim - 1], ly = shape[ndim - 2];
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v === 0) continue;
    const b = (v - 1) * ndim;
    count[v - 1]++;
    // coordinates relative to the label's bounding box, as in the reference
    sum[b + ndim - 1] += (i % lx) - lo[b + ndim - 1];
    sum[b + ndim - 2] += (Math.floor(i / lx) % ly) - lo[b + ndim - 2];
    if (ndim === 3) sum[b] += Math.floor(i / (lx * ly)) - lo[b];
  }
  const target = new Float64Array(max * ndim);
  const best = new Float64Array(max).fill(Infinity);
  const centers = new Uint32Array(max);
  let ext = 0;
  for (let l = 0; l < max; l++) {
    if (count[l] === 0) continue;
    let e = 0;
    for (let k = 0; k < ndim; k++) {
      target[l * ndim + k] = roundHalfEven(sum[l * ndim + k] / count[l]);
      e += hi[l * ndim + k] - lo[l * ndim + k] + 1;
    }
    ext = Math.max(ext, ndim === 2 ? e + 2 : e + 3);
  }
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v === 0) continue;
    const b = (v - 1) * ndim;
    const dx = (i % lx) - lo[b + ndim - 1] - target[b + ndim - 1];
    const dy = (Math.floor(i / lx) % ly) - lo[b + ndim - 2] - target[b + ndim - 2];
    let d = dx * dx + dy * dy;
    if (ndim === 3) {
      const dz = Math.floor(i / (lx * ly)) - lo[b] - target[b];
      d += dz * dz;
    }
    if (d < best[v - 1]) {
      best[v - 1] = d;
      centers[v - 1] = i;
    }
  }
  const present: number[] = [];
  for (let l = 0; l < max; l++) if (count[l] > 0) present.push(centers[l]);
  return { centers: Uint32Array.from(present), niter: (ndim === 2 ? 2 : 6) * ext };
}

/**
 * Normalised central differences of the heat on mask pixels: `[ndim, ...shape]` float64,
 * (dY, dX) or (dZ, dY, dX), 0 on background.
 */
export function heatToFlows(
  heat: Float64Array | Float32Array,
  labels: Uint32Array,
  shape: readonly number[],
): Float64Array {
  const ndim = shape.length;
  const n = labels.length;
  const mu = new Float64Array(ndim * n);
  const lx = shape[ndim - 1], ly = shape[ndim - 2], lz = ndim === 3 ? shape[0] : 1;
  const plane = ly * lx;
  for (let i = 0; i < n; i++) {
    if (labels[i] === 0) continue;
    const x = i % lx, y = Math.floor(i / lx) % ly;
    const gx = (x + 1 < lx ? heat[i + 1] : 0) - (x > 0 ? heat[i - 1] : 0);
    const gy = (y + 1 < ly ? heat[i + lx] : 0) - (y > 0 ? heat[i - lx] : 0);
    let gz = 0;
    if (ndim === 3) {
      const z = Math.floor(i / plane);
      gz = (z + 1 < lz ? heat[i + plane] : 0) - (z > 0 ? heat[i - plane] : 0);
    }
    const norm = 1e-60 + Math.sqrt(gz * gz + gy * gy + gx * gx);
    mu[(ndim - 1) * n + i] = gx / norm;
    mu[(ndim - 2) * n + i] = gy / norm;
    if (ndim === 3) mu[i] = gz / norm;
  }
  return mu;
}

/**
 * Flows of a label image, as cellpose v4 computes them for training and for the flow-error QC.
 *
 * @param labels `[Ly, Lx]` or `[Lz, Ly, Lx]` non-negative integer labels (any numeric dtype),
 *   0 = background
 * @returns unit flows `[2, Ly, Lx]` (dY, dX) or `[3, Lz, Ly, Lx]` (dZ, dY, dX), float32
 * @throws CellposeError BAD_SHAPE if not 2D or 3D; BAD_VALUE / BAD_DTYPE for labels that are
 *   not non-negative integers
 * @example
 * ```ts
 * import { masksToFlows } from "./masks_to_flows.ts";
 * const f = masksToFlows({ data: new Uint8Array([1, 1, 1]), shape: [1, 3] });
 * console.log(f.data); // Float32Array [0, 0, 0, 1, 0, -1]
 * ```
 */
export function masksToFlows(labels: NdArray): NdArray<Float32Array> {
  const shape = labels.shape;
  if (shape.length !== 2 && shape.length !== 3) {
    throw new CellposeError(
      "BAD_SHAPE",
      `labels must be [Ly, Lx] or [Lz, Ly, Lx], got [${shape}]`,
      shape,
    );
  }
  if (labels.data.length !== size(shape)) {
    throw new CellposeError(
      "BAD_SHAPE",
      `labels have ${labels.data.length} elements but shape [${shape}] needs ${size(shape)}`,
      shape,
    );
  }
  let lab = toLabels(labels, "labels");
  if (maxLabel(lab) > lab.length) {
    // labels far larger than the pixel count: compact them (flows do not depend on the values)
    lab = lab.slice();
    renumber(lab);
  }
  const { centers, niter } = maskCenters(lab, shape);
  const heat = shape.length === 2
    ? diffuseHeat2D(lab, shape, centers, niter)
    : diffuseHeat3D(lab, shape, centers, niter);
  return {
    data: Float32Array.from(heatToFlows(heat, lab, shape)),
    shape: [shape.length, ...shape],
  };
}
