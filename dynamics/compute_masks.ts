/**
 * Flows -> masks, cellpose v4 `resize_and_compute_masks` (without resizing), 2D and 3D: follow
 * the flows of the pixels with `cellprob > cellprobThreshold`, cluster their end points into
 * masks, drop masks with inconsistent flows (2D only), fill holes and drop small masks.
 *
 * The hot loops run on a {@link DynamicsBackend}: `device: "cpu"` uses the TypeScript reference;
 * `"auto"` (default) and `"webgpu"` use the WGSL kernels (`kernels/backend_gpu.ts`). `"auto"`
 * takes a hardware adapter only and otherwise falls back to the CPU; `"webgpu"` also accepts a
 * software adapter and throws `GPU_UNAVAILABLE` when there is none. Only a missing adapter falls
 * back: an error of the kernels themselves is thrown.
 *
 * Non-finite flows are rejected (`BAD_VALUE`): the reference would silently spread NaN through
 * the interpolation. NaN cell probabilities count as background (`NaN > t` is false).
 *
 * @example
 * ```ts
 * import { computeMasks } from "./compute_masks.ts";
 * import { masksToFlows } from "./masks_to_flows.ts";
 * const lab = new Uint16Array(40 * 40);
 * for (let y = 10; y < 30; y++) for (let x = 10; x < 30; x++) lab[y * 40 + x] = 1;
 * const flows = masksToFlows({ data: lab, shape: [40, 40] });
 * const dP = flows.data.map((v) => 5 * v);
 * const cellprob = Float32Array.from(lab, (v) => (v ? 6 : -6));
 * const masks = await computeMasks({ data: dP, shape: [2, 40, 40] }, { data: cellprob, shape: [40, 40] });
 * console.log(masks.data[20 * 40 + 20]); // 1
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { type NdArray, size } from "../core/ndarray.ts";
import type { DynamicsOptions, FollowFrame } from "../core/types.ts";
import { checkFlowShape, type DynamicsBackend } from "../core/backend.ts";
import { checkParam, NITER_AUTO, paramSpec, SEGMENT_PARAMS } from "../core/params.ts";
import { gpuBackend } from "../kernels/backend_gpu.ts";
import { cpuBackend } from "./cpu_backend.ts";
import { fillHolesAndRemoveSmallMasks } from "./fill_holes.ts";
import { removeBadFlowMasks } from "./flow_error.ts";
import { getMasks } from "./get_masks.ts";

/** Options of {@link computeMasks}: the dynamics options, or an explicit backend. */
export interface ComputeMasksOptions extends DynamicsOptions {
  /** runs the hot loops on this backend (overrides `device`) */
  backend?: DynamicsBackend;
  /**
   * the flows are a block of a larger image at `frame.origin`: pixels follow the larger image's
   * trajectories (see {@link DynamicsBackend.followFlows}; on the CPU unless the backend
   * `followsFrames`), and `maxSizeFraction` refers to the larger image's pixel count
   */
  frame?: FollowFrame;
}

const spec = (name: string) => paramSpec(SEGMENT_PARAMS, name);
const tableDefault = (name: string) => spec(name).default as number;

/** cellpose v4 defaults of the dynamics step (from the parameter table, `core/params.ts`). */
export const DYNAMICS_DEFAULTS: Readonly<Required<DynamicsOptions>> = {
  niter: NITER_AUTO,
  cellprobThreshold: tableDefault("cellprob_threshold"),
  flowThreshold: tableDefault("flow_threshold"),
  minSize: tableDefault("min_size"),
  maxSizeFraction: tableDefault("max_size_fraction"),
  device: "auto",
};

const gpu = new Map<boolean, Promise<DynamicsBackend | null>>();

/**
 * The WebGPU backend, or null when there is no adapter (or only a software adapter and `software`
 * is false). Any other failure (a bug in the kernels, a lost device) is thrown, not hidden behind
 * a silent fall back to the CPU; a failed attempt is not cached.
 */
function loadGpu(software: boolean): Promise<DynamicsBackend | null> {
  let p = gpu.get(software);
  if (!p) {
    p = gpuBackend({ software });
    p.catch(() => gpu.delete(software));
    gpu.set(software, p);
  }
  return p;
}

/**
 * Picks the backend for `device` (see the module doc).
 * @example
 * ```ts
 * import { selectBackend } from "./compute_masks.ts";
 * console.log((await selectBackend("cpu")).name); // "cpu"
 * ```
 */
export async function selectBackend(
  device: DynamicsOptions["device"] = "auto",
): Promise<DynamicsBackend> {
  if (device === "cpu") return cpuBackend;
  if (device !== "auto" && device !== "webgpu") {
    throw new CellposeError(
      "BAD_PARAMETER",
      `device must be "auto", "webgpu" or "cpu", got ${JSON.stringify(device)}`,
      device,
    );
  }
  // "auto" wants a real GPU; "webgpu" takes a software adapter too
  const b = await loadGpu(device === "webgpu");
  if (b) return b;
  if (device === "webgpu") {
    throw new CellposeError(
      "GPU_UNAVAILABLE",
      'device "webgpu" was requested but no WebGPU adapter is available',
      device,
    );
  }
  return cpuBackend;
}

/** Checks that `frame` places an image of `shape` inside its full image. */
function checkFrame(frame: FollowFrame, shape: readonly number[]): void {
  const { origin, fullShape } = frame;
  const ok = Array.isArray(origin) && Array.isArray(fullShape) &&
    origin.length === shape.length && fullShape.length === shape.length &&
    shape.every((l, k) =>
      Number.isInteger(origin[k]) && Number.isInteger(fullShape[k]) && origin[k] >= 0 &&
      origin[k] + l <= fullShape[k]
    );
  if (!ok) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `frame must place the [${shape}] image inside its full image (integer origin >= 0 and ` +
        `origin + shape <= fullShape per axis), got origin [${origin}], fullShape [${fullShape}]`,
      frame,
    );
  }
}

/**
 * Computes masks from network flows and cell probabilities.
 *
 * @param dP flows `[2, Ly, Lx]` (dY, dX) or `[3, Lz, Ly, Lx]` (dZ, dY, dX), network scale (5 x
 *   unit flows)
 * @param cellprob cell probability logits `[Ly, Lx]` or `[Lz, Ly, Lx]`
 * @param options {@link DynamicsOptions} (cellpose v4 defaults) and optionally a backend
 * @returns label image, 0 background and 1..N masks; `Uint32Array` past 65535 masks
 * @throws CellposeError BAD_SHAPE (shapes that do not match), BAD_VALUE (non-finite flows),
 *   BAD_PARAMETER (options), GPU_UNAVAILABLE (`device: "webgpu"` without a GPU)
 * @example
 * ```ts
 * import { computeMasks } from "./compute_masks.ts";
 * const dP = { data: new Float32Array(2 * 64 * 64), shape: [2, 64, 64] };
 * const cellprob = { data: new Float32Array(64 * 64).fill(-3), shape: [64, 64] };
 * const masks = await computeMasks(dP, cellprob, { device: "cpu", flowThreshold: 0.4 });
 * console.log(masks.data.some((v) => v > 0)); // false: no pixel above cellprobThreshold 0
 * ```
 */
export async function computeMasks(
  dP: NdArray<Float32Array>,
  cellprob: NdArray<Float32Array>,
  options: ComputeMasksOptions = {},
): Promise<NdArray<Uint16Array | Uint32Array>> {
  const D = DYNAMICS_DEFAULTS;
  const o = {
    niter: options.niter ?? D.niter,
    cellprobThreshold: options.cellprobThreshold ?? D.cellprobThreshold,
    flowThreshold: options.flowThreshold ?? D.flowThreshold,
    minSize: options.minSize ?? D.minSize,
    maxSizeFraction: options.maxSizeFraction ?? D.maxSizeFraction,
    device: options.device ?? D.device,
  };
  const shape = cellprob.shape;
  checkFlowShape(shape);
  const ndim = shape.length;
  const n = size(shape);
  if (
    dP.shape.length !== ndim + 1 || dP.shape[0] !== ndim ||
    dP.shape.some((d, k) => k > 0 && d !== shape[k - 1])
  ) {
    throw new CellposeError(
      "BAD_SHAPE",
      `dP must be [${ndim}, ${shape}] to match cellprob [${shape}], got [${dP.shape}]`,
      dP.shape,
    );
  }
  if (cellprob.data.length !== n || dP.data.length !== ndim * n) {
    throw new CellposeError(
      "BAD_SHAPE",
      `data lengths ${dP.data.length} (dP) and ${cellprob.data.length} (cellprob) do not match ` +
        `the shapes [${dP.shape}] and [${shape}]`,
      [dP.data.length, cellprob.data.length],
    );
  }
  // the table's ranges (niter 0: no steps)
  for (const key of ["niter", "cellprobThreshold", "flowThreshold", "minSize", "maxSizeFraction"]) {
    checkParam(spec(key), o[key as keyof typeof o], key);
  }
  const frame = options.frame;
  if (frame) checkFrame(frame, shape);
  const d = dP.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      throw new CellposeError(
        "BAD_VALUE",
        `dP must be finite, got ${d[i]} (NaN or infinite) at flat index ${i}`,
        d[i],
      );
    }
  }
  const backend = options.backend ?? await selectBackend(o.device);

  // cell pixels and the field they follow: dP * (cellprob > t) / 5
  const cp = cellprob.data;
  let ncell = 0;
  for (let i = 0; i < n; i++) if (cp[i] > o.cellprobThreshold) ncell++;
  if (ncell === 0) return { data: new Uint16Array(n), shape: [...shape] };
  const cells = new Uint32Array(ncell);
  const flow = new Float32Array(ndim * n);
  for (let i = 0, j = 0; i < n; i++) {
    if (!(cp[i] > o.cellprobThreshold)) continue;
    cells[j++] = i;
    for (let k = 0; k < ndim; k++) flow[k * n + i] = d[k * n + i] / 5;
  }

  const follower = !frame || backend.followsFrames ? backend : cpuBackend;
  const final = await follower.followFlows(flow, shape, cells, o.niter, frame);
  const imageSize = frame ? size(frame.fullShape) : n;
  const { labels, nMasks } = getMasks(final, cells, shape, o.maxSizeFraction, imageSize);
  if (ndim === 2 && nMasks > 0 && o.flowThreshold > 0) {
    await removeBadFlowMasks(labels, d, [shape[0], shape[1]], o.flowThreshold, backend);
  }
  const count = fillHolesAndRemoveSmallMasks(labels, shape, o.minSize);
  return { data: count > 65535 ? labels : Uint16Array.from(labels), shape: [...shape] };
}
