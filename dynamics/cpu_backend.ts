/**
 * The TypeScript reference implementation of {@link DynamicsBackend}.
 *
 * @example
 * ```ts
 * import { cpuBackend } from "./cpu_backend.ts";
 * const end = await cpuBackend.followFlows(new Float32Array(32), [4, 4], new Uint32Array([5]), 10);
 * console.log(end); // Int32Array [1, 1]
 * ```
 * @module
 */
import type { DynamicsBackend } from "../core/backend.ts";
import { followFlowsParallel } from "./follow_parallel.ts";
import { diffuseHeat2D } from "./heat.ts";

/** Runs the hot loops in TypeScript (large flow-following jobs on worker threads). */
export const cpuBackend: DynamicsBackend = {
  name: "cpu",
  followsFrames: true,
  followFlows: (flow, shape, cells, niter, frame) =>
    followFlowsParallel(flow, shape, cells, niter, frame),
  diffuseHeat: (labels, shape, centers, niter) =>
    Promise.resolve(diffuseHeat2D(labels, shape, centers, niter)),
};
