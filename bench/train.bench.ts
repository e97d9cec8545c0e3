/**
 * One training step (forward in train mode, cellpose's loss, backward, AdamW) on one 3 x 256 x 256
 * tile for the tiny fixture network, a small cpsam (256 wide, 6 deep, 8 heads) and the full cpsam
 * (1024 wide, 24 deep, 16 heads; all blocks, and `--train_blocks 2`), each in its own process (so
 * peak RSS is per case), next to PyTorch's own step time for the same model on this machine
 * (TRAIN-MANIFEST `pytorch_train_step_seconds`, PyTorch 1.13 CPU, 2 threads) as a ratio.
 * WebGPU rows run with `CELLPOSE_BENCH_WEBGPU=1` (on a software adapter they take minutes).
 * CPU s/step is the process CPU time of a step (all threads), for a loaded machine. Layer drop is
 * off, as in PyTorch's measurement.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { readCheckpointFile, type StateDict } from "../models/checkpoint.ts";
import { initCpsam } from "../models/cpsam_init.ts";
import { AdamW } from "../train/adamw.ts";
import { TrainingNet } from "../train/net.ts";
import type { TrainDevice } from "../train/session.ts";
import { FIXTURES } from "../tests/fixtures.ts";
import { peakRssMiB } from "./measure.ts";

interface Case {
  name: string;
  pytorch: string;
  trainBlocks?: number;
  steps: number;
}

const CASES: Case[] = [
  { name: "tiny (64 wide, 2 deep)", pytorch: "tiny_64w_2d", steps: 5 },
  { name: "small (256 wide, 6 deep)", pytorch: "small_256w_6d_8h", steps: 3 },
  { name: "cpsam (1024 wide, 24 deep)", pytorch: "cpsam_full", steps: 2 },
  { name: "cpsam, --train_blocks 2", pytorch: "cpsam_full", trainBlocks: 2, steps: 2 },
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
  const times: number[] = [];
  const cpu: number[] = [];
  for (let s = 0; s <= c.steps; s++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await net.lossAndGradients(images, labels);
    opt.step(r.grads, 1e-5);
    const dc = process.cpuUsage(c0);
    if (s > 0) {
      times.push((performance.now() - t0) / 1000);
      cpu.push((dc.user + dc.system) / 1e6);
    }
  }
  await net.release();
  console.log(JSON.stringify({ times, cpu, rss: peakRssMiB(), params: net.trainable.length }));
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
  console.log("| model | device | s/step | CPU s/step | peak RSS | PyTorch s/step | ratio |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const device of devices) {
    for (let i = 0; i < CASES.length; i++) {
      const c = CASES[i];
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-webgpu", self, "child", String(i), device],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
      if (!out.success || !text.startsWith("{")) {
        const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
        console.log(`| ${c.name} | ${device} | failed: ${err} | | | | |`);
        continue;
      }
      const r = JSON.parse(text);
      const s = median(r.times);
      const pt = median(torch[c.pytorch]);
      const ratio = c.trainBlocks
        ? `${(s / pt).toFixed(2)}x (vs all blocks)`
        : `${(s / pt).toFixed(2)}x`;
      console.log(
        `| ${c.name} | ${device} | ${s.toFixed(2)} | ${median(r.cpu).toFixed(2)} | ${
          Math.round(r.rss)
        } MiB | ${pt.toFixed(2)} | ${ratio} |`,
      );
    }
  }
}

if (import.meta.main && Deno.args[0] === "child") {
  await child(Number(Deno.args[1]), Deno.args[2] as TrainDevice);
}
