/**
 * The WGSL kernels against their TypeScript twins on the same inputs, and the WebGPU backend
 * end to end against the reference fixtures. Skipped where WebGPU has no adapter.
 */
import { assert, assertEquals, assertRejects, maxAbsDiff } from "./assert.ts";
import { fixture, manifest, REPO } from "./fixtures.ts";
import { assertMasksMatch } from "./match_masks.ts";
import { blockPixels } from "./block_pixels.ts";
import { CellposeError } from "../core/errors.ts";
import { type NdArray, size } from "../core/ndarray.ts";
import { computeMasks } from "../dynamics/compute_masks.ts";
import { gpuBackend } from "../kernels/backend_gpu.ts";
import { followFlowsGpu } from "../kernels/follow_flows_gpu.ts";
import { adapterInfo, checkedRun, gpuDevice, WORKGROUP, workgroupGrid } from "../kernels/gpu.ts";
import { diffuseHeatGpu } from "../kernels/heat_gpu.ts";
import { followFlowsCpu } from "../dynamics/follow_flows.ts";
import { diffuseHeat2D, diffuseHeat3D } from "../dynamics/heat.ts";
import { heatToFlows, maskCenters } from "../dynamics/masks_to_flows.ts";

const device = await gpuDevice();
const ignore = device === null;

/** Cell pixels and field `dP * (cellprob > 0) / 5` of a fixture case, as computeMasks builds them. */
function dynamicsInput(dP: Float32Array, cellprob: ArrayLike<number>, shape: number[]) {
  const n = cellprob.length;
  const cells: number[] = [];
  const flow = new Float32Array(shape.length * n);
  for (let i = 0; i < n; i++) {
    if (!(cellprob[i] > 0)) continue;
    cells.push(i);
    for (let k = 0; k < shape.length; k++) flow[k * n + i] = dP[k * n + i] / 5;
  }
  return { flow, shape, cells: Uint32Array.from(cells) };
}

async function input2D(name: string) {
  const cp = await fixture(`dyn-${name}-cellprob`);
  const dP = await fixture(`dyn-${name}-dP`);
  return dynamicsInput(dP.data as Float32Array, cp.data as Float32Array, cp.shape);
}

/** dyn3d: 5 x unit flows, cellprob +-6 (as the fixture was made). */
async function input3D() {
  const labels = await fixture("dyn3d-labels");
  const flows = (await fixture("dyn3d-flows")).data as Float32Array;
  const dP = flows.map((v) => 5 * v);
  return dynamicsInput(
    dP,
    Array.from(labels.data as Uint16Array, (v) => (v ? 6 : -6)),
    labels.shape,
  );
}

async function labelsOf(name: string) {
  const l = await fixture(name);
  return { labels: Uint32Array.from(l.data as Uint16Array), shape: l.shape };
}

Deno.test({
  name: "followFlows 2D: WGSL end positions equal the TypeScript reference (dyn-small, 200 steps)",
  ignore,
  async fn() {
    const { flow, shape, cells } = await input2D("small");
    const gpu = await followFlowsGpu(device!, flow, shape, cells, 200);
    assertEquals(gpu, followFlowsCpu(flow, shape, cells, 200));
  },
});

Deno.test({
  name: "followFlows 3D: WGSL end positions equal the TypeScript reference (dyn3d, 60 steps)",
  ignore,
  async fn() {
    // 60 steps keep the TS twin quick; computeMasks on WebGPU below runs the full 200
    const { flow, shape, cells } = await input3D();
    const gpu = await followFlowsGpu(device!, flow, shape, cells, 60);
    assertEquals(gpu, followFlowsCpu(flow, shape, cells, 60));
  },
});

/** The cell pixels and field of a block of `input` at `origin`, and the block's frame. */
function blockInput(
  input: { flow: Float32Array; shape: number[]; cells: Uint32Array },
  origin: number[],
  bshape: number[],
) {
  const pix = blockPixels(input.shape, origin, bshape);
  const n = size(input.shape), nb = pix.length, ndim = bshape.length;
  const isCell = new Uint8Array(n);
  for (const c of input.cells) isCell[c] = 1;
  const flow = new Float32Array(ndim * nb);
  const cells: number[] = [];
  pix.forEach((g, i) => {
    if (isCell[g]) cells.push(i);
    for (let k = 0; k < ndim; k++) flow[k * nb + i] = input.flow[k * n + g];
  });
  const frame = { origin, fullShape: input.shape };
  return { flow, shape: bshape, cells: Uint32Array.from(cells), frame };
}

Deno.test({
  name: "followFlows with a frame: WGSL end positions of a block equal the TypeScript reference",
  ignore,
  async fn() {
    for (
      const [input, origin, bshape, niter] of [
        [await input2D("small"), [40, 71], [150, 163], 200],
        [await input3D(), [3, 10, 17], [17, 70, 73], 60],
      ] as const
    ) {
      const { flow, shape, cells, frame } = blockInput(input, [...origin], [...bshape]);
      const gpu = await followFlowsGpu(device!, flow, shape, cells, niter, {}, frame);
      const cpu = followFlowsCpu(flow, shape, cells, niter, frame);
      assertEquals(gpu, cpu);
      assert(cpu.some((v) => v < 0), "no end point outside the block"); // negative ends work
    }
  },
});

Deno.test({
  name: "followFlows: a field split over 64 KiB bindings and cells in windows give the same ends",
  ignore,
  async fn() {
    const { flow, shape, cells } = await input2D("noisy");
    const gpu = await followFlowsGpu(device!, flow, shape, cells, 50, {
      maxBindingBytes: 64 << 10,
    });
    assertEquals(gpu, followFlowsCpu(flow, shape, cells, 50));
  },
});

Deno.test({
  name: "followFlows: more than 65535 workgroups are split over two grid dimensions",
  ignore,
  async fn() {
    const side = 2100; // 4.41M cells > 65535 x 64 invocations
    const n = side * side;
    const [x, y] = workgroupGrid(device!, n);
    assert(y > 1 && x <= device!.limits.maxComputeWorkgroupsPerDimension && x * y * WORKGROUP >= n);
    const cells = new Uint32Array(n).map((_, i) => i);
    // zero steps: the end is the start normalised and back, as the reference computes it
    const flow = new Float32Array(2 * n);
    const gpu = await followFlowsGpu(device!, flow, [side, side], cells, 0);
    const cpu = followFlowsCpu(flow, [side, side], cells, 0);
    assertEquals(maxAbsDiff(gpu, cpu), 0);
    assertEquals(gpu[2 * (n - 1)], side - 1); // the last cell was reached
  },
});

Deno.test({
  name: "diffuseHeat 2D: df64 heat within 1e-13 of float64, flows equal dyn-small-flows to 1e-12",
  ignore,
  async fn() {
    const { labels, shape } = await labelsOf("dyn-small-labels");
    const { centers, niter } = maskCenters(labels, shape);
    const gpu = await diffuseHeatGpu(device!, labels, shape, centers, niter);
    const cpu = diffuseHeat2D(labels, shape, centers, niter);
    let rel = 0;
    for (let i = 0; i < cpu.length; i++) {
      if (cpu[i] !== 0) rel = Math.max(rel, Math.abs(gpu[i] - cpu[i]) / cpu[i]);
      else assertEquals(gpu[i], 0);
    }
    assert(rel < 1e-13, `relative heat error ${rel}`);
    const expected = (await fixture("dyn-small-flows")).data as Float32Array;
    const err = maxAbsDiff(Float32Array.from(heatToFlows(gpu, labels, shape)), expected);
    assert(err < 1e-12, `flow error ${err}`);
  },
});

Deno.test({
  name: "diffuseHeat 3D: 7-point df64 heat gives the flows of dyn3d-flows within 1e-6",
  ignore,
  async fn() {
    const { labels, shape } = await labelsOf("dyn3d-labels");
    const { centers, niter } = maskCenters(labels, shape);
    const gpu = await diffuseHeatGpu(device!, labels, shape, centers, niter);
    const expected = (await fixture("dyn3d-flows")).data as Float32Array;
    const err = maxAbsDiff(Float32Array.from(heatToFlows(gpu, labels, shape)), expected);
    assert(err < 1e-6, `flow error ${err}`);
    const cpu = diffuseHeat3D(labels, shape, centers, 20);
    const gpu20 = await diffuseHeatGpu(device!, labels, shape, centers, 20);
    assert(maxAbsDiff(gpu20, cpu) < 1e-13);
  },
});

Deno.test({
  name: "diffuseHeat: labels and heat split over 128 KiB bindings give bit-identical heat",
  ignore,
  async fn() {
    const { labels, shape } = await labelsOf("dyn-thresh-labels");
    const { centers } = maskCenters(labels, shape);
    const whole = await diffuseHeatGpu(device!, labels, shape, centers, 30);
    const split = await diffuseHeatGpu(device!, labels, shape, centers, 30, {
      maxBindingBytes: 128 << 10,
    });
    assertEquals(split, whole);
    assert(whole.some((v) => v > 0));
  },
});

Deno.test({
  name: "kernels reject inputs that do not fit their shape",
  ignore,
  async fn() {
    const e = await assertRejects(
      () => followFlowsGpu(device!, new Float32Array(10), [4, 4], new Uint32Array([0]), 5),
      CellposeError,
    );
    assertEquals(e.code, "BAD_SHAPE");
    const h = await assertRejects(
      () => diffuseHeatGpu(device!, new Uint32Array([0, 1]), [1, 2], new Uint32Array([0]), 5),
      CellposeError,
    );
    assertEquals(h.code, "BAD_VALUE");
  },
});

Deno.test({
  name: "kernels refuse work the device cannot take, as CellposeErrors",
  ignore,
  async fn() {
    // 256-byte bindings would need 2048 bindings for dyn-small's field
    const { flow, shape, cells } = await input2D("small");
    const big = await assertRejects(
      () => followFlowsGpu(device!, flow, shape, cells, 1, { maxBindingBytes: 256 }),
      CellposeError,
    );
    assertEquals(big.code, "TOO_LARGE");
    // a GPU validation error inside a run (MAP_READ goes with COPY_DST only)
    const usage = GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE;
    const bad = await assertRejects(
      () =>
        checkedRun(
          device!,
          "test",
          () => Promise.resolve(device!.createBuffer({ size: 4, usage })),
        ),
      CellposeError,
    );
    assertEquals(bad.code, "UNSUPPORTED");
  },
});

Deno.test({
  name: "gpuBackend: software: false refuses exactly the fallback adapters",
  ignore,
  async fn() {
    const b = await gpuBackend({ software: false });
    assertEquals(b === null, adapterInfo(device!)!.isFallbackAdapter);
    assertEquals((await gpuBackend())?.name, "webgpu");
  },
});

for (const name of ["dyn-small", "dyn-large", "dyn-noisy", "dyn-thresh"]) {
  Deno.test({
    name: `computeMasks on WebGPU: ${name} gives cellpose v4's masks (labels identical)`,
    ignore,
    async fn() {
      const p = (await manifest()).files[`${name}-masks.npy`].params ?? {};
      const dP = await fixture(`${name}-dP`) as NdArray<Float32Array>;
      const cellprob = await fixture(`${name}-cellprob`) as NdArray<Float32Array>;
      const ref = await fixture(`${name}-masks`);
      const masks = await computeMasks(dP, cellprob, {
        device: "webgpu",
        niter: p.niter,
        flowThreshold: p.flow_threshold,
        cellprobThreshold: p.cellprob_threshold,
        minSize: p.min_size,
      });
      const m = assertMasksMatch(masks, ref, 0.99, `${name}: `);
      assert(m.identical, `${name}: same masks but other labels`);
    },
  });
}

Deno.test({
  name: "computeMasks on WebGPU: dyn3d gives cellpose v4's masks (labels identical)",
  ignore,
  async fn() {
    const labels = await fixture("dyn3d-labels");
    const flows = (await fixture("dyn3d-flows")).data as Float32Array;
    const dP = { data: flows.map((v) => 5 * v), shape: [3, ...labels.shape] };
    const cellprob = {
      data: Float32Array.from(labels.data as Uint16Array, (v) => (v ? 6 : -6)),
      shape: labels.shape,
    };
    const masks = await computeMasks(dP, cellprob, { device: "webgpu", niter: 200, minSize: 15 });
    const m = assertMasksMatch(masks, await fixture("dyn3d-masks"), 0.99, "dyn3d: ");
    assert(m.identical, "dyn3d: same masks but other labels");
  },
});

Deno.test({
  name: "computeMasks on WebGPU with a frame: the masks of the TypeScript reference",
  ignore,
  async fn() {
    // a 150 x 163 block of dyn-small at (40, 71)
    const dP = await fixture("dyn-small-dP") as NdArray<Float32Array>;
    const cp = await fixture("dyn-small-cellprob") as NdArray<Float32Array>;
    const [h, w] = cp.shape, bh = 150, bw = 163, n = bh * bw;
    const d = new Float32Array(2 * n), c = new Float32Array(n);
    for (let y = 0; y < bh; y++) {
      for (let x = 0; x < bw; x++) {
        const g = (y + 40) * w + x + 71, i = y * bw + x;
        (d[i] = dP.data[g]), (d[n + i] = dP.data[h * w + g]), (c[i] = cp.data[g]);
      }
    }
    const opts = { flowThreshold: 0, frame: { origin: [40, 71], fullShape: [h, w] } };
    const dyn = (device: "webgpu" | "cpu") =>
      computeMasks({ data: d, shape: [2, bh, bw] }, { data: c, shape: [bh, bw] }, {
        ...opts,
        device,
      });
    assertEquals(await dyn("webgpu"), await dyn("cpu"));
  },
});

Deno.test({
  name: "computeMasks device webgpu without an adapter throws GPU_UNAVAILABLE, auto falls back",
  ignore: Deno.build.os === "windows", // the only OS with a DirectX 12 backend
  async fn() {
    const script = `
    import { computeMasks } from "${new URL("../dynamics/compute_masks.ts", import.meta.url)}";
    const dP = { data: new Float32Array(2 * 16), shape: [2, 4, 4] };
    const cp = { data: new Float32Array(16).fill(1), shape: [4, 4] };
    const auto = await computeMasks(dP, cp, { device: "auto" });
    try { await computeMasks(dP, cp, { device: "webgpu" }); console.log("no error"); }
    catch (e) { console.log(auto.shape.join("x"), e.code); }`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", script],
      env: { DENO_WEBGPU_BACKEND: "dx12" }, // a backend that does not exist here: no adapter
      cwd: REPO,
    }).output();
    assertEquals(new TextDecoder().decode(out.stdout).trim(), "4x4 GPU_UNAVAILABLE");
  },
});
