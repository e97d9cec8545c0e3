/**
 * Runner of `heat.wgsl`: the WebGPU twin of the backend's `diffuseHeat` (cellpose v4
 * `_extend_centers_gpu`), 2D (3x3 stencil) and 3D (self and the six face neighbours). Heat lives
 * on the GPU as double-float (hi + lo f32 pairs) in two ping-pong buffers; one invocation per
 * mask pixel and one dispatch per iteration, all iterations in one submission, one readback at
 * the end.
 *
 * @example
 * ```ts
 * import { gpuDevice } from "./gpu.ts";
 * import { diffuseHeatGpu } from "./heat_gpu.ts";
 * const device = await gpuDevice();
 * if (device) {
 *   const T = await diffuseHeatGpu(device, new Uint32Array([1, 1, 1]), [1, 3], new Uint32Array([1]), 2);
 *   console.log(T); // Float64Array [0.1358..., 0.1481..., 0.1358...]
 * }
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { size } from "../core/ndarray.ts";
import type { GpuRunOptions } from "./follow_flows_gpu.ts";
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
  workgroupGrid,
} from "./gpu.ts";

/** The reference's stencils as (dz, dy, dx), self first, in its summation order. */
const STENCILS: Record<number, number[][]> = {
  2: [[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1], [-1, -1], [-1, 1], [1, -1], [1, 1]].map((o) => [
    0,
    ...o,
  ]),
  3: [[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
};

/**
 * Runs `niter` diffusion iterations of all masks on the GPU.
 *
 * @param labels `[Ly, Lx]` or `[Lz, Ly, Lx]` labels (0 = background)
 * @param shape the labels' shape
 * @param centers one linear index per mask, inside its mask
 * @param niter iterations
 * @returns heat, same shape as the labels, float64 (from the df64 pairs)
 */
export async function diffuseHeatGpu(
  device: GPUDevice,
  labels: Uint32Array,
  shape: readonly number[],
  centers: Uint32Array,
  niter: number,
  options: GpuRunOptions = {},
): Promise<Float64Array> {
  const n = checkArgs(labels, shape, centers, niter);
  const [lz, ly, lx] = shape.length === 2 ? [1, ...shape] : shape;
  const stencil = STENCILS[shape.length];
  const { pixels, links } = maskLinks(labels, [lz, ly, lx], centers, stencil);
  const count = pixels.length;

  const maxBinding = options.maxBindingBytes ?? device.limits.maxStorageBufferBindingSize;
  const layouts = [
    chunkLayout(device, count, 4, maxBinding),
    chunkLayout(device, count, 4, maxBinding),
    chunkLayout(device, n, 8, maxBinding),
    chunkLayout(device, n, 8, maxBinding),
  ];
  const names = ["pixels", "links", "heat_in", "heat_out"];
  const first = [1];
  for (const l of layouts) first.push(first[first.length - 1] + l.chunks);
  checkBindingCount(device, first[4] - 1, "diffuseHeat");
  const code = `const STENCIL: u32 = ${stencil.length}u;\n` +
    layouts.map((l, k) => chunkedWgsl(names[k], l, k < 2 ? "u32" : "vec2<f32>", k === 3, first[k]))
      .join("") +
    await wgslSource("heat.wgsl");
  const params = new Int32Array(16);
  stencil.forEach(([dz, dy, dx], s) => params[s] = (dz * ly + dy) * lx + dx);
  new Float32Array(params.buffer)[12] = 1;
  params[13] = count;

  const buffers: GPUBuffer[] = [];
  const pairs = await checkedRun(device, "diffuseHeat", async () => {
    try {
      const pipeline = computePipeline(device, code);
      const paramBuf = uniformBuffer(device, params);
      const pixelBuf = storageBuffer(device, pixels);
      const linkBuf = storageBuffer(device, links);
      const heat = [storageBuffer(device, n * 8), storageBuffer(device, n * 8)];
      buffers.push(paramBuf, pixelBuf, linkBuf, ...heat);
      const groups = [0, 1].map((k) =>
        device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: paramBuf } },
            ...[pixelBuf, linkBuf, heat[k], heat[1 - k]].flatMap((b, j) =>
              chunkedEntries(b, layouts[j], first[j])
            ),
          ],
        })
      );
      const grid = workgroupGrid(device, count);
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      for (let t = 0; t < niter; t++) {
        pass.setBindGroup(0, groups[t % 2]);
        pass.dispatchWorkgroups(...grid);
      }
      pass.end();
      device.queue.submit([encoder.finish()]);
      return new Float32Array(await readBuffer(device, heat[niter % 2], n * 8));
    } finally {
      for (const b of buffers) b.destroy();
    }
  });
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = pairs[2 * i] + pairs[2 * i + 1];
  return out;
}

/**
 * The mask pixels and, per mask pixel, which stencil neighbours share its label (bit s) and which
 * of those is its mask's centre (bit 16 + s): all the label information the kernel needs.
 */
function maskLinks(
  labels: Uint32Array,
  [lz, ly, lx]: number[],
  centers: Uint32Array,
  stencil: number[][],
): { pixels: Uint32Array; links: Uint32Array } {
  const isCentre = new Uint8Array(labels.length);
  for (const c of centers) isCentre[c] = 1;
  let count = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0) count++;
  const pixels = new Uint32Array(count);
  const links = new Uint32Array(count);
  let k = 0;
  for (let z = 0, i = 0; z < lz; z++) {
    for (let y = 0; y < ly; y++) {
      for (let x = 0; x < lx; x++, i++) {
        const label = labels[i];
        if (label === 0) continue;
        let bits = 0;
        stencil.forEach(([dz, dy, dx], s) => {
          const qz = z + dz, qy = y + dy, qx = x + dx;
          if (qz < 0 || qy < 0 || qx < 0 || qz >= lz || qy >= ly || qx >= lx) return;
          const q = (qz * ly + qy) * lx + qx;
          if (labels[q] !== label) return;
          bits |= 1 << s;
          if (isCentre[q]) bits |= 1 << (16 + s);
        });
        pixels[k] = i;
        links[k++] = bits >>> 0;
      }
    }
  }
  return { pixels, links };
}

function checkArgs(
  labels: Uint32Array,
  shape: readonly number[],
  centers: Uint32Array,
  niter: number,
): number {
  if (shape.length !== 2 && shape.length !== 3) {
    throw new CellposeError(
      "BAD_SHAPE",
      `labels must be [Ly, Lx] or [Lz, Ly, Lx], got [${shape}]`,
      shape,
    );
  }
  const n = size(shape);
  if (labels.length !== n) {
    throw new CellposeError(
      "BAD_SHAPE",
      `labels have ${labels.length} elements but shape [${shape}] needs ${n}`,
      labels.length,
    );
  }
  for (const c of centers) {
    if (!(c < n) || labels[c] === 0) {
      throw new CellposeError("BAD_VALUE", `centre ${c} is not a mask pixel`, c);
    }
  }
  if (!Number.isInteger(niter) || niter < 0) {
    throw new CellposeError("BAD_PARAMETER", `niter must be an integer >= 0, got ${niter}`, niter);
  }
  return n;
}
