/**
 * Flow-error quality control (cellpose v4 `remove_bad_flow_masks` / `flow_error`, 2D): flows are
 * recomputed from the masks (heat diffusion on the backend) and each mask's error is the mean
 * over its pixels of `sum_axes (flow_mask - dP / 5)^2`; masks above the threshold are removed
 * (labels are not renumbered, as in the reference).
 *
 * @example
 * ```ts
 * import { removeBadFlowMasks } from "./flow_error.ts";
 * import { cpuBackend } from "./cpu_backend.ts";
 * const labels = new Uint32Array([1, 1, 1]);
 * const dP = new Float32Array([0, 0, 0, 5, 0, -5]); // 5 x the mask's own flows
 * await removeBadFlowMasks(labels, dP, [1, 3], 0.4, cpuBackend);
 * console.log(labels); // Uint32Array [1, 1, 1]: error 0, kept
 * ```
 * @module
 */
import type { DynamicsBackend } from "../core/backend.ts";
import { heatToFlows, maskCenters } from "./masks_to_flows.ts";
import { maxLabel } from "../core/labels.ts";

/**
 * Flow error of labels 1..max (NaN for absent labels), as `metrics.flow_error`.
 * @param labels `[Ly, Lx]` labels
 * @param dP network flows `[2, Ly, Lx]` (5 x unit flows)
 */
export async function flowErrors(
  labels: Uint32Array,
  dP: Float32Array,
  shape: readonly [number, number],
  backend: DynamicsBackend,
): Promise<Float64Array> {
  const { centers, niter } = maskCenters(labels, shape);
  const heat = await backend.diffuseHeat(labels, shape, centers, niter);
  const mu = heatToFlows(heat, labels, shape);
  const max = maxLabel(labels);
  const n = labels.length;
  const count = new Float64Array(max + 1);
  const sy = new Float64Array(max + 1);
  const sx = new Float64Array(max + 1);
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (l === 0) continue;
    count[l]++;
    const ey = mu[i] - Math.fround(dP[i] / 5);
    const ex = mu[n + i] - Math.fround(dP[n + i] / 5);
    sy[l] += ey * ey;
    sx[l] += ex * ex;
  }
  const err = new Float64Array(max);
  for (let l = 1; l <= max; l++) err[l - 1] = sy[l] / count[l] + sx[l] / count[l];
  return err;
}

/** Sets to 0, in place, the masks whose flow error is above `threshold`. */
export async function removeBadFlowMasks(
  labels: Uint32Array,
  dP: Float32Array,
  shape: readonly [number, number],
  threshold: number,
  backend: DynamicsBackend,
): Promise<void> {
  const err = await flowErrors(labels, dP, shape, backend);
  const bad = new Uint8Array(err.length + 1);
  let any = false;
  for (let l = 0; l < err.length; l++) if (err[l] > threshold) (bad[l + 1] = 1), (any = true);
  if (!any) return;
  for (let i = 0; i < labels.length; i++) if (bad[labels[i]]) labels[i] = 0;
}
