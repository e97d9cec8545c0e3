/**
 * Runner of `follow_flows_2d.wgsl` / `follow_flows_3d.wgsl`: the WebGPU twin of the backend's
 * `followFlows` (cellpose v4 `steps_interp`), same arguments and result. The field may exceed one
 * storage binding (it is then split over several); cells go in windows that each fit one binding;
 * all `niter` steps run inside one dispatch per window and the end positions are read back once.
 *
 * @example
 * ```ts
 * import { gpuDevice } from "./gpu.ts";
 * import { followFlowsGpu } from "./follow_flows_gpu.ts";
 * const device = await gpuDevice();
 * if (device) {
 *   const flow = new Float32Array(2 * 4 * 4).fill(0.5); // dY = dX = 0.5 px per step
 *   const end = await followFlowsGpu(device, flow, [4, 4], new Uint32Array([0]), 20);
 *   console.log(end); // Int32Array [3, 3]
 * }
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { size } from "../core/ndarray.ts";
import type { FollowFrame } from "../core/types.ts";
import { checkFlowShape } from "../core/backend.ts";
import {
  checkBindingCount,
  checkedRun,
  chunkedEntries,
  chunkedWgsl,
  chunkLayout,
  computePipeline,
  readBuffer,
  storageBuffer,
  uniformBuffer,
  wgslSource,
  WORKGROUP,
  workgroupGrid,
} from "./gpu.ts";

/** Options of {@link followFlowsGpu}. */
export interface GpuRunOptions {
  /** caps each storage binding (bytes), below the device's limit; tests use it to force chunking */
  maxBindingBytes?: number;
}

/**
 * Follows `cells` through `flow` for `niter` Euler steps on the GPU.
 *
 * @param flow planar `[ndim, ...shape]` field in pixels per step, (dY, dX) or (dZ, dY, dX)
 * @param shape `[Ly, Lx]` or `[Lz, Ly, Lx]`, every axis at least 2
 * @param cells linear indices of the start pixels
 * @param frame the field's place in a full image (see `DynamicsBackend.followFlows`)
 * @returns final integer positions, `ndim` per cell interleaved in axis order
 */
export async function followFlowsGpu(
  device: GPUDevice,
  flow: Float32Array,
  shape: readonly number[],
  cells: Uint32Array,
  niter: number,
  options: GpuRunOptions = {},
  frame?: FollowFrame,
): Promise<Int32Array> {
  const ndim = shape.length;
  checkArgs(flow, shape, niter);
  const origin = frame?.origin ?? shape.map(() => 0);
  const full = frame?.fullShape ?? shape;
  const out = new Int32Array(cells.length * ndim);
  if (cells.length === 0) return out;
  const maxBinding = options.maxBindingBytes ?? device.limits.maxStorageBufferBindingSize;

  const field = normalisedField(flow, shape, full);
  const vec = ndim === 2 ? 2 : 4;
  const flowLayout = chunkLayout(device, field.length / vec, 4 * vec, maxBinding);
  checkBindingCount(device, 3 + flowLayout.chunks, "followFlows");
  const code = chunkedWgsl("field", flowLayout, `vec${vec}<f32>`, false, 4) +
    await wgslSource(ndim === 2 ? "follow_flows_2d.wgsl" : "follow_flows_3d.wgsl");
  // windows of cells, a multiple of WORKGROUP (so offsets stay aligned) fitting one binding
  const window = Math.max(
    WORKGROUP,
    Math.floor(maxBinding / (4 * ndim) / WORKGROUP) * WORKGROUP,
  );

  const buffers: GPUBuffer[] = [];
  return await checkedRun(device, "followFlows", async () => {
    try {
      const pipeline = computePipeline(device, code);
      const [params, starts, flowBuf, cellBuf, endBuf] = [
        uniformBuffer(device, packParams(shape, full, origin, niter)),
        storageBuffer(device, startTable(shape, full, origin)),
        storageBuffer(device, field),
        storageBuffer(device, cells),
        storageBuffer(device, out.byteLength),
      ];
      buffers.push(params, starts, flowBuf, cellBuf, endBuf);
      const encoder = device.createCommandEncoder();
      for (let first = 0; first < cells.length; first += window) {
        const count = Math.min(window, cells.length - first);
        const bindGroup = device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: params } },
            { binding: 1, resource: { buffer: starts } },
            { binding: 2, resource: { buffer: cellBuf, offset: first * 4, size: count * 4 } },
            {
              binding: 3,
              resource: { buffer: endBuf, offset: first * 4 * ndim, size: count * 4 * ndim },
            },
            ...chunkedEntries(flowBuf, flowLayout, 4),
          ],
        });
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(...workgroupGrid(device, count));
        pass.end();
      }
      device.queue.submit([encoder.finish()]);
      out.set(new Int32Array(await readBuffer(device, endBuf, out.byteLength)));
      return out;
    } finally {
      for (const b of buffers) b.destroy();
    }
  });
}

/**
 * The field in normalised units as the reference scales it, `f32(flow * f32(2 / (L - 1)))` with
 * the full image's `L`, interleaved per pixel for one load per corner: (x, y) in 2D, (z, y, x, 0)
 * in 3D (the kernels' vector orders).
 */
function normalisedField(
  flow: Float32Array,
  shape: readonly number[],
  full: readonly number[],
): Float32Array {
  const n = size(shape);
  const scale = full.map((l) => Math.fround(2 / (l - 1)));
  if (shape.length === 2) {
    const field = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      field[2 * i] = flow[n + i] * scale[1];
      field[2 * i + 1] = flow[i] * scale[0];
    }
    return field;
  }
  const field = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    field[4 * i] = flow[i] * scale[0];
    field[4 * i + 1] = flow[n + i] * scale[1];
    field[4 * i + 2] = flow[2 * n + i] * scale[2];
  }
  return field;
}

function checkArgs(flow: Float32Array, shape: readonly number[], niter: number): void {
  checkFlowShape(shape);
  if (flow.length !== shape.length * size(shape)) {
    throw new CellposeError(
      "BAD_SHAPE",
      `flow must hold ${shape.length} x ${size(shape)} values for shape [${shape}], ` +
        `got ${flow.length}`,
      flow.length,
    );
  }
  if (!Number.isInteger(niter) || niter < 0) {
    throw new CellposeError("BAD_PARAMETER", `niter must be an integer >= 0, got ${niter}`, niter);
  }
}

/** Uniforms in the layout of `Params` of both kernels (5 x vec4, niter, one). */
function packParams(
  shape: readonly number[],
  full: readonly number[],
  origin: readonly number[],
  niter: number,
): Uint32Array {
  const buf = new ArrayBuffer(96);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  const i = new Int32Array(buf);
  let offset = 0;
  shape.forEach((l, a) => {
    u[a] = l;
    f[4 + a] = shape.length === 2 ? full[a] / 2 : full[a];
    f[8 + a] = full[a] - 1;
    u[12 + a] = offset;
    i[16 + a] = origin[a];
    offset += l;
  });
  u[20] = niter;
  f[21] = 1;
  return u;
}

/**
 * Normalised start coordinate of every index of every axis, as the reference computes it in
 * float32: `(g / (L - 1)) * 2 - 1` for the full-image index `g = i + origin` and the full `L`,
 * axes concatenated.
 */
function startTable(
  shape: readonly number[],
  full: readonly number[],
  origin: readonly number[],
): Float32Array {
  const table = new Float32Array(shape.reduce((a, l) => a + l, 0));
  let k = 0;
  shape.forEach((l, a) => {
    const last = Math.fround(full[a] - 1);
    for (let i = 0; i < l; i++) {
      table[k++] = Math.fround(Math.fround((i + origin[a]) / last) * 2) - 1;
    }
  });
  return table;
}
