/**
 * The dynamics hot loops, TypeScript reference vs WGSL on WebGPU, on the reference fixtures:
 * `followFlows` (200 steps from every cell pixel) and `diffuseHeat` (masks -> flows of the ground
 * truth labels, the flow-error QC's work). The whole `computeMasks` per backend is in
 * `dynamics.bench.ts`. Median of 3 runs after one warm-up (which also compiles the pipelines).
 * @module
 */
import { cpuBackend } from "../dynamics/cpu_backend.ts";
import type { DynamicsBackend } from "../core/backend.ts";
import { maskCenters } from "../dynamics/masks_to_flows.ts";
import { gpuBackend } from "../kernels/backend_gpu.ts";
import { adapterInfo, gpuDevice } from "../kernels/gpu.ts";
import { fixture } from "../tests/fixtures.ts";
import { median } from "./measure.ts";

interface Case {
  name: string;
  dP: Float32Array;
  cellprob: Float32Array;
  labels: Uint32Array;
  shape: number[];
}

async function cases(): Promise<Case[]> {
  const out: Case[] = [];
  for (const c of ["small", "noisy", "thresh", "large"]) {
    const cp = await fixture(`dyn-${c}-cellprob`);
    out.push({
      name: `dyn-${c} ${cp.shape.join("x")}`,
      dP: (await fixture(`dyn-${c}-dP`)).data as Float32Array,
      cellprob: cp.data as Float32Array,
      labels: Uint32Array.from((await fixture(`dyn-${c}-labels`)).data as Uint16Array),
      shape: cp.shape,
    });
  }
  const l3 = await fixture("dyn3d-labels");
  const labels = Uint32Array.from(l3.data as Uint16Array);
  out.push({
    name: `dyn3d ${l3.shape.join("x")}`,
    dP: ((await fixture("dyn3d-flows")).data as Float32Array).map((v) => 5 * v),
    cellprob: Float32Array.from(labels, (v) => (v ? 6 : -6)),
    labels,
    shape: l3.shape,
  });
  return out;
}

/** Prints one markdown table: per case and step, ms on each backend and the TS / WGSL ratio. */
export default async function (): Promise<void> {
  const gpu = await gpuBackend();
  if (!gpu) {
    console.log("no WebGPU adapter: nothing to compare");
    return;
  }
  const info = adapterInfo((await gpuDevice())!);
  const backends: DynamicsBackend[] = [cpuBackend, gpu];
  console.log(`WebGPU adapter: ${info?.description || info?.vendor}\n`);
  console.log("| case | step | TS ms | WebGPU ms | TS / WebGPU |");
  console.log("|---|---|---:|---:|---:|");
  for (const c of await cases()) {
    const n = c.cellprob.length;
    const ndim = c.shape.length;
    const cells = Uint32Array.from(c.cellprob.keys()).filter((i) => c.cellprob[i] > 0);
    const flow = new Float32Array(ndim * n);
    for (const i of cells) for (let k = 0; k < ndim; k++) flow[k * n + i] = c.dP[k * n + i] / 5;
    const { centers, niter } = maskCenters(c.labels, c.shape);
    const steps: [string, (b: DynamicsBackend) => Promise<unknown>][] = [
      [`followFlows (${cells.length} cells)`, (b) => b.followFlows(flow, c.shape, cells, 200)],
      [
        `masks -> flows heat (${niter} iter)`,
        (b) => b.diffuseHeat(c.labels, c.shape as [number, number], centers, niter),
      ],
    ];
    for (const [step, run] of steps) {
      if (ndim === 3 && step.startsWith("masks")) continue; // the CPU backend's heat is 2D
      const [ts, wg] = [
        (await median(() => run(backends[0]))).wall,
        (await median(() => run(backends[1]))).wall,
      ];
      console.log(
        `| ${c.name} | ${step} | ${ts.toFixed(0)} | ${wg.toFixed(0)} | ${(ts / wg).toFixed(2)} |`,
      );
    }
  }
}
