/**
 * One training step (forward in train mode, cellpose's loss, backward, AdamW) on one 3 x 256 x 256
 * tile for the tiny fixture network, a small cpsam (256 wide, 6 deep, 8 heads) and the full cpsam
 * (1024 wide, 24 deep, 16 heads; all blocks, and `--train_blocks 2`), each in its own process (so
 * peak RSS is per case), next to PyTorch's own step time for the same model on this machine
 * (TRAIN-MANIFEST `pytorch_train_step_seconds`, PyTorch 1.13 CPU, 2 threads) as a ratio.
 * WebGPU rows run with `CELLPOSE_BENCH_WEBGPU=1` (on a software adapter they take minutes).
 * CPU s/step is the process CPU time of a step (all threads), for a loaded machine, split into
 * the graph's run (onnxruntime, with the tensors' marshalling) and AdamW; `augment` is the CPU
 * time of `random_rotate_and_resize` of one 520 x 696 image, the rest of a `train_seg` step
 * (not in PyTorch's figure). Layer drop is off, as in PyTorch's measurement.
 *
 * With `CELLPOSE_BENCH_PYTHON` naming a Python that has torch, PyTorch's step is also measured
 * here and now (bench/reference/torch_train_step.py: the same architecture, 2 threads,
 * `OMP_WAIT_POLICY=passive` as onnxruntime's threads do not spin either), right after ours, and
 * the last column is the CPU time ratio of the two under the same load.
 * `CELLPOSE_BENCH_TRAIN_CASES=tiny,small` runs only the cases whose names start so.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { readCheckpointFile, type StateDict } from "../models/checkpoint.ts";
import { initCpsam } from "../models/cpsam_init.ts";
import { AdamW } from "../train/adamw.ts";
import { randomRotateAndResize } from "../train/augment.ts";
import { TrainingNet } from "../train/net.ts";
import { NumpyRandom } from "../core/random.ts";
import type { TrainDevice } from "../train/session.ts";
import { fixture, FIXTURES } from "../tests/fixtures.ts";
import type { NdArray } from "../core/ndarray.ts";
import { peakRssMiB } from "./measure.ts";

interface Case {
  name: string;
  pytorch: string;
  trainBlocks?: number;
  steps: number;
  /** dim, depth, heads, rel-pos table length of bench/reference/torch_train_step.py */
  torch: [number, number, number, number];
}

const CASES: Case[] = [
  { name: "tiny (64 wide, 2 deep)", pytorch: "tiny_64w_2d", steps: 5, torch: [64, 2, 4, 27] },
  {
    name: "small (256 wide, 6 deep)",
    pytorch: "small_256w_6d_8h",
    steps: 3,
    torch: [256, 6, 8, 63],
  },
  {
    name: "cpsam (1024 wide, 24 deep)",
    pytorch: "cpsam_full",
    steps: 2,
    torch: [1024, 24, 16, 63],
  },
  {
    name: "cpsam, --train_blocks 2",
    pytorch: "cpsam_full",
    trainBlocks: 2,
    steps: 2,
    torch: [1024, 24, 16, 63],
  },
];

async function model(c: Case): Promise<StateDict> {
  if (c.pytorch === "tiny_64w_2d") return await readCheckpointFile(join(FIXTURES, "tiny-cpsam.pt"));
  if (c.pytorch === "small_256w_6d_8h") return initCpsam({ dim: 256, depth: 6, heads: 8 });
  return initCpsam({ dim: 1024, depth: 24, heads: 16 });
}

/** In the child: warm-up step, then `steps` timed steps; prints JSON. */
async function child(index: number, device: TrainDevice) {
  const c = CASES[index];
  const net = new TrainingNet(await model(c), { rdrop: 0, trainBlocks: c.trainBlocks, device });
  const opt = new AdamW(net.parameters());
  const n = 3 * 256 * 256;
  const images = {
    data: new Float32Array(n).map((_, i) => (i % 97) / 97),
    shape: [1, 3, 256, 256],
  };
  const labels = {
    data: new Float32Array(n).map((_, i) => (i % 13) / 13 - 0.3),
    shape: [1, 3, 256, 256],
  };
  const f32 = async (n: string) => (await fixture(n)) as NdArray<Float32Array>;
  const img = await f32("train-0-normalized"), flows = await f32("train-0-flows");
  const [, H, W] = img.shape;
  const lbl = { data: flows.data.subarray(H * W), shape: [3, H, W] };
  const rng = new NumpyRandom(0);
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const r: Record<"times" | "cpu" | "run" | "adam" | "augment", number[]> = {
    times: [],
    cpu: [],
    run: [],
    adam: [],
    augment: [],
  };
  for (let s = 0; s <= c.steps; s++) {
    const c0 = cpuNow();
    randomRotateAndResize([img], [lbl], rng);
    const c1 = cpuNow();
    const t0 = performance.now();
    const g = await net.lossAndGradients(images, labels);
    const c2 = cpuNow();
    opt.step(g.grads, 1e-5);
    const c3 = cpuNow();
    if (s > 0) {
      r.times.push((performance.now() - t0) / 1000);
      r.cpu.push(c3 - c1);
      r.run.push(c2 - c1);
      r.adam.push(c3 - c2);
      r.augment.push(c1 - c0);
    }
  }
  await net.release();
  console.log(JSON.stringify({ ...r, rss: peakRssMiB(), params: net.trainable.length }));
}

/** PyTorch's CPU s/step for case `c` measured now, or undefined without CELLPOSE_BENCH_PYTHON. */
async function torchNow(c: Case): Promise<number | undefined> {
  const python = Deno.env.get("CELLPOSE_BENCH_PYTHON");
  if (!python) return undefined;
  const script = fileURLToPath(new URL("./reference/torch_train_step.py", import.meta.url));
  const out = await new Deno.Command(python, {
    args: [script, ...c.torch.map(String), String(c.steps), "2"],
    env: { OMP_WAIT_POLICY: "passive" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success || !text.startsWith("{")) return NaN;
  return median(JSON.parse(text).cpu);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Runs every case in a child process and prints the table. */
export default async function main() {
  const manifest = JSON.parse(await Deno.readTextFile(join(FIXTURES, "TRAIN-MANIFEST.json")));
  const torch: Record<string, number[]> = manifest.pytorch_train_step_seconds;
  const devices: TrainDevice[] = Deno.env.get("CELLPOSE_BENCH_WEBGPU")
    ? ["cpu", "webgpu"]
    : ["cpu"];
  const self = fileURLToPath(import.meta.url);
  const only = Deno.env.get("CELLPOSE_BENCH_TRAIN_CASES")?.split(",");
  console.log(
    "| model | device | s/step | CPU s/step | graph run CPU | AdamW CPU | augment CPU | peak RSS " +
      "| PyTorch s/step | ratio | PyTorch CPU s/step now | CPU ratio now |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const device of devices) {
    for (let i = 0; i < CASES.length; i++) {
      const c = CASES[i];
      if (only && !only.some((o) => c.name.startsWith(o))) continue;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-webgpu", self, "child", String(i), device],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
      if (!out.success || !text.startsWith("{")) {
        const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
        console.log(`| ${c.name} | ${device} | failed: ${err} | | | | | | | | | |`);
        continue;
      }
      const r = JSON.parse(text);
      const s = median(r.times);
      const cpu = median(r.cpu);
      const pt = median(torch[c.pytorch]);
      const vs = c.trainBlocks ? " (vs all blocks)" : "";
      const live = device === "cpu" ? await torchNow(c) : undefined;
      const liveCols = live === undefined
        ? "| |"
        : `| ${live.toFixed(2)} | ${(cpu / live).toFixed(2)}x${vs} |`;
      console.log(
        `| ${c.name} | ${device} | ${s.toFixed(2)} | ${cpu.toFixed(2)} | ${
          median(r.run).toFixed(2)
        } | ${median(r.adam).toFixed(3)} | ${median(r.augment).toFixed(3)} | ${
          Math.round(r.rss)
        } MiB | ${pt.toFixed(2)} | ${(s / pt).toFixed(2)}x${vs} ${liveCols}`,
      );
    }
  }
}

if (import.meta.main && Deno.args[0] === "child") {
  await child(Number(Deno.args[1]), Deno.args[2] as TrainDevice);
}
