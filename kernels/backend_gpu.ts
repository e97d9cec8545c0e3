/**
 * The WebGPU {@link DynamicsBackend}: the flows-to-masks hot loops as WGSL kernels
 * (`follow_flows_2d.wgsl`, `follow_flows_3d.wgsl`, `heat.wgsl`) on the shared device of
 * `gpu.ts`. Loaded dynamically by `dynamics/compute_masks.ts` for `device: "auto" | "webgpu"`.
 *
 * Results equal the TypeScript reference: end positions bit for bit (same float32 operations),
 * heat to about 1e-14 relative (double-float on the GPU, float64 on the CPU).
 *
 * @example
 * ```ts
 * import { gpuBackend } from "./backend_gpu.ts";
 * const gpu = await gpuBackend();
 * if (gpu) {
 *   const end = await gpu.followFlows(new Float32Array(32), [4, 4], new Uint32Array([5]), 10);
 *   console.log(end); // Int32Array [1, 1]
 * }
 * ```
 * @module
 */
import type { DynamicsBackend } from "../core/backend.ts";
import { followFlowsGpu, type GpuRunOptions } from "./follow_flows_gpu.ts";
import { adapterInfo, gpuDevice, isSoftwareAdapter } from "./gpu.ts";
import { diffuseHeatGpu } from "./heat_gpu.ts";

/** Options of {@link gpuBackend}. */
export interface GpuBackendOptions extends GpuRunOptions {
  /**
   * [true] accept a software (fallback) adapter such as llvmpipe; `false` resolves to null there,
   * for callers that only want the GPU when it is faster than the CPU
   */
  software?: boolean;
}

/**
 * The WebGPU backend, or null when WebGPU has no adapter (or only a software one and
 * `software: false`).
 */
export async function gpuBackend(
  options: GpuBackendOptions = {},
): Promise<DynamicsBackend | null> {
  const device = await gpuDevice();
  if (!device) return null;
  const info = adapterInfo(device);
  if (options.software === false && info && isSoftwareAdapter(info)) return null;
  return {
    name: "webgpu",
    followsFrames: true,
    followFlows: (flow, shape, cells, niter, frame) =>
      followFlowsGpu(device, flow, shape, cells, niter, options, frame),
    diffuseHeat: (labels, shape, centers, niter) =>
      diffuseHeatGpu(device, labels, shape, centers, niter, options),
  };
}
