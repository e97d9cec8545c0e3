/**
 * The hot loops of the flows-to-masks step, behind one interface so that the TypeScript reference
 * (`cpuBackend` in `dynamics/cpu_backend.ts`) and the WGSL kernels (`kernels/backend_gpu.ts`)
 * can be swapped; `dynamics/compute_masks.ts` picks one (`selectBackend`). The interface lives in
 * `core/` so that the kernels depend on the contract, not on the dynamics. Signatures use plain typed arrays only; everything else of the step (histogram, seeds,
 * growth, renumbering, hole filling) stays in TypeScript.
 *
 * `followFlows` must handle 2D and 3D (an implementation may hand 3D to the CPU reference);
 * `diffuseHeat` is 2D only (the flow-error QC runs in 2D).
 *
 * Conventions shared by all implementations:
 * - Arrays are C-ordered. `shape` is `[Ly, Lx]` (2D) or `[Lz, Ly, Lx]` (3D); `ndim` is its length.
 * - A pixel's linear index is `y * Lx + x` (2D) or `(z * Ly + y) * Lx + x` (3D).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { DynamicsBackend } from "./backend.ts";
 * import { cpuBackend } from "../dynamics/cpu_backend.ts";
 * async function run(backend: DynamicsBackend) {
 *   const flow = new Float32Array(2 * 4 * 4); // zero field: nothing moves
 *   return await backend.followFlows(flow, [4, 4], new Uint32Array([5]), 10);
 * }
 * assertEquals(await run(cpuBackend), new Int32Array([1, 1]));
 * ```
 * @module
 */
import { CellposeError } from "./errors.ts";
import type { FollowFrame } from "./types.ts";

/** Checks the shape can be integrated (every axis at least 2 long, 2 or 3 axes). */
export function checkFlowShape(shape: readonly number[]): void {
  if ((shape.length !== 2 && shape.length !== 3) || shape.some((l) => l < 2)) {
    throw new CellposeError(
      "BAD_SHAPE",
      `flows need a [Ly, Lx] or [Lz, Ly, Lx] image with every axis >= 2, got [${shape}]`,
      shape,
    );
  }
}

/** Implementation of the flows-to-masks hot loops: the TS reference or a WebGPU one. */
export interface DynamicsBackend {
  /** short name for tables and logs, e.g. "cpu" or "webgpu" */
  readonly name: string;

  /** whether `followFlows` takes a {@link FollowFrame} (otherwise callers use the CPU) */
  readonly followsFrames?: boolean;

  /**
   * Euler integration of cell pixels through the flow field (cellpose v4 `steps_interp`).
   *
   * Exact reference semantics, per point, in float32 like PyTorch:
   * - normalised coordinate per axis `u = fround(fround(i / fround(L - 1)) * 2) - 1`;
   *   the field is scaled to `fround(flow * fround(2 / (L - 1)))`;
   * - `niter` times: sample the scaled field at `u` with `grid_sample(align_corners=False,
   *   padding_mode="zeros")` (bilinear in 2D, trilinear in 3D; sampling position in pixels
   *   `(u + 1) * L / 2 - 0.5`, corners outside the image read 0), then
   *   `u = clamp(u + sample, -1, 1)` for every axis (all axes use the same sample);
   * - final pixel position `trunc(fround(fround((u + 1) * 0.5) * fround(L - 1)))`.
   *
   * With a `frame`, `shape` is a block of the image `frame.fullShape` at `frame.origin`: `L` above
   * is the full image's, a cell starts at its global pixel (local + origin), the block's field is
   * sampled at global - origin (0 outside the block), `u` is clamped to the full image's [-1, 1]
   * and the final positions are returned as local pixels (global - origin, possibly outside the
   * block). The same float32 operations in the same order: a frame covering the whole image
   * (origin 0, fullShape = shape) gives the same result as none.
   *
   * @param flow field `dP * (cellprob > threshold) / 5`, planar `[ndim, ...shape]`, axis order
   *   (dY, dX) or (dZ, dY, dX), in pixels per step (not yet normalised)
   * @param shape `[Ly, Lx]` or `[Lz, Ly, Lx]`
   * @param cells linear indices of the pixels to follow (their start positions), ascending
   * @param niter number of Euler steps
   * @param frame the block's place in the full image (only when `followsFrames`)
   * @returns final integer positions, `ndim` per cell interleaved: `[y0, x0, y1, x1, ...]` or
   *   `[z0, y0, x0, ...]`, each in `[0, L - 1]` (with a frame: in `[-origin, fullL - 1 - origin]`)
   */
  followFlows(
    flow: Float32Array,
    shape: readonly number[],
    cells: Uint32Array,
    niter: number,
    frame?: FollowFrame,
  ): Promise<Int32Array>;

  /**
   * Heat diffusion of cellpose v4 `masks_to_flows` (2D, `_extend_centers_gpu`), all masks at once.
   *
   * Heat `T` is 0 everywhere at the start and stays 0 on background and outside the image.
   * Each of `niter` iterations: `T[c] += 1` at every centre, then every mask pixel takes
   * (Jacobi, from the previous iterate) the sum of `T` over its 3x3 neighbourhood divided by 9,
   * where neighbours with a different label (or background, or outside the image) count as 0.
   *
   * @param labels `[Ly, Lx]` label image, 0 = background
   * @param shape `[Ly, Lx]`
   * @param centers one linear index per mask (a pixel of that mask)
   * @param niter iterations (cellpose: `2 * max(bbox height + bbox width + 2)` over masks)
   * @returns heat `[Ly, Lx]` (float64 on the CPU; float32 is accepted from a GPU)
   */
  diffuseHeat(
    labels: Uint32Array,
    shape: readonly [number, number],
    centers: Uint32Array,
    niter: number,
  ): Promise<Float64Array | Float32Array>;

  /** frees device resources, if any */
  dispose?(): void;
}
