/**
 * Flows -> masks (`computeMasks`, cellpose v4 defaults) and masks -> flows (`masksToFlows`) on
 * the dyn-large fixture (500 x 700, 219 cells) and on a synthetic 2048 x 2048 image with 4096
 * cells, one column per dynamics backend (the TypeScript reference with its default worker threads
 * and on one thread, and WebGPU when an adapter is present), with the ratio to cellpose v4 in Python where it was measured (dyn-large: 1.8 to
 * 3.4 s on the development machine, PyTorch CPU). Median of 3 runs after a warm-up (one run for
 * the synthetic image).
 * @module
 */
import type { NdArray } from "../core/ndarray.ts";
import type { DynamicsBackend } from "../core/backend.ts";
import { computeMasks, selectBackend } from "../dynamics/compute_masks.ts";
import { cpuBackend } from "../dynamics/cpu_backend.ts";
import { followFlowsCpu } from "../dynamics/follow_flows.ts";
import { masksToFlows } from "../dynamics/masks_to_flows.ts";
import { fixture } from "../tests/fixtures.ts";
import { median } from "./measure.ts";

/** cellpose v4 (Python) seconds for the same step, where measured: [fastest, slowest]. */
const PYTHON_S: Record<string, [number, number]> = { "dyn-large": [1.8, 3.4] };

interface Case {
  name: string;
  /** timed runs after the warm-up */
  reps: number;
  labels: NdArray<Uint16Array>;
  dP: NdArray<Float32Array>;
  cellprob: NdArray<Float32Array>;
}

/** Deterministic 2048 x 2048 labels: 64 x 64 jittered ellipses, each inside its 32-pixel cell. */
export function synthetic(): NdArray<Uint16Array> {
  const L = 2048, grid = 32;
  const labels = new Uint16Array(L * L);
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  let id = 0;
  for (let gy = 0; gy < L / grid; gy++) {
    for (let gx = 0; gx < L / grid; gx++) {
      id++;
      const cy = gy * grid + 16 + (rand() - 0.5) * 4, cx = gx * grid + 16 + (rand() - 0.5) * 4;
      const ry = 9 + rand() * 4, rx = 9 + rand() * 4;
      for (let y = Math.ceil(cy - ry); y <= cy + ry; y++) {
        for (let x = Math.ceil(cx - rx); x <= cx + rx; x++) {
          if (((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1) labels[y * L + x] = id;
        }
      }
    }
  }
  return { data: labels, shape: [L, L] };
}

function fromLabels(name: string, labels: NdArray<Uint16Array>, reps: number): Case {
  const flows = masksToFlows(labels);
  return {
    name,
    reps,
    labels,
    dP: { data: flows.data.map((v) => 5 * v), shape: flows.shape },
    cellprob: { data: Float32Array.from(labels.data, (v) => (v ? 6 : -6)), shape: labels.shape },
  };
}

/** The CPU reference on one thread (no workers). */
const cpuOneThread: DynamicsBackend = {
  name: "cpu 1 thread",
  followFlows: (flow, shape, cells, niter) =>
    Promise.resolve(followFlowsCpu(flow, shape, cells, niter)),
  diffuseHeat: cpuBackend.diffuseHeat,
};

/**
 * The CPU backend (workers for large jobs), on one thread, and the WebGPU one when an adapter
 * (even a software one) is present.
 */
async function backends(): Promise<DynamicsBackend[]> {
  const list = [cpuBackend, cpuOneThread];
  try {
    list.push(await selectBackend("webgpu"));
  } catch {
    // no WebGPU: the TypeScript column only
  }
  return list;
}

/** Prints the table. */
export default async function (): Promise<void> {
  const large: Case = {
    name: "dyn-large",
    reps: 3,
    labels: (await fixture("dyn-large-labels")) as NdArray<Uint16Array>,
    dP: (await fixture("dyn-large-dP")) as NdArray<Float32Array>,
    cellprob: (await fixture("dyn-large-cellprob")) as NdArray<Float32Array>,
  };
  const cases = [large, fromLabels("synthetic 2048x2048, 4096 cells", synthetic(), 1)];
  const list = await backends();
  console.log(
    `wall ms (process CPU ms, all threads); ${navigator.hardwareConcurrency} hardware threads, ` +
      `load average ${Deno.loadavg()[0].toFixed(1)} at the start\n`,
  );
  console.log(
    `| case | step | ${list.map((b) => `${b.name} ms`).join(" | ")} | cellpose v4 Python s | ` +
      `Python / ${list[0].name} |`,
  );
  console.log(`|---|---|${list.map(() => "---:|").join("")}---:|---:|`);
  for (const c of cases) {
    const row = async (step: string, run: (b: DynamicsBackend) => unknown, perBackend: boolean) => {
      const ms: { wall: number; cpu: number }[] = [];
      for (const b of perBackend ? list : list.slice(0, 1)) {
        ms.push(await median(() => run(b), c.reps));
      }
      const py = step === "computeMasks" ? PYTHON_S[c.name] : undefined;
      const cols = list.map((_, k) =>
        ms[k] === undefined ? "-" : `${ms[k].wall.toFixed(0)} (${ms[k].cpu.toFixed(0)})`
      );
      const ratio = py
        ? `${(py[0] * 1000 / ms[0].wall).toFixed(1)} to ${(py[1] * 1000 / ms[0].wall).toFixed(1)}`
        : "-";
      console.log(
        `| ${c.name} | ${step} | ${cols.join(" | ")} | ${py ? py.join(" to ") : "-"} | ${ratio} |`,
      );
    };
    await row("computeMasks", (b) => computeMasks(c.dP, c.cellprob, { backend: b }), true);
    await row("masksToFlows", () => masksToFlows(c.labels), false);
  }
}
