/**
 * The full-size cpsam network (24 blocks, width 1024, 16 heads; shapes from
 * shared/fixtures/cpsam-state-dict.txt) with random weights: conversion time, then one 256 x 256
 * tile per backend, each in its own process (so peak RSS is per backend): seconds per tile,
 * tiles/s, peak RSS (VmHWM), fp16 and int8 against fp32, and the ratio to PyTorch's CPU time per
 * tile (MANIFEST `cpu_baseline_fullsize_tile_seconds`). WebGPU on a software adapter takes
 * minutes: it runs only with `CELLPOSE_BENCH_WEBGPU=1`; `CELLPOSE_BENCH_WASM=0` leaves out the wasm
 * rows (several minutes each).
 *
 * Then fp32 against int8 on the CPU, side by side and back to back, for the tiny test network,
 * the 128/4/4 shape of the default `nuclei` model, a 256/6/8 network and cpsam (1024/24/16,
 * `initCpsam`): s/tile, tiles/s, peak RSS, int8 / fp32, ratio to cpsam fp32 and to PyTorch.
 *
 * @module
 */
import { join } from "node:path";
import type { StateDict } from "../models/checkpoint.ts";
import { readCheckpointFile } from "../models/checkpoint.ts";
import { writeCpsamOnnx } from "../models/cpsam_graph.ts";
import { initCpsam } from "../models/cpsam_init.ts";
import { bundledModelPath } from "../models/store.ts";
import { readImage } from "../io/image.ts";
import { averagePrecision } from "../metrics/matching.ts";
import { segment } from "../pipeline/segment.ts";
import { isValidation, poolNames } from "../pretrained/nuclei/split.ts";
import { createRunner } from "../models/runtime.ts";
import { FIXTURES, manifest } from "../tests/fixtures.ts";

type Backend = "cpu" | "wasm" | "webgpu";

interface ChildResult {
  createS: number;
  runS: number[];
  /** CPU seconds (all threads) of each run: the work, whatever the machine's load */
  cpuS: number[];
  peakRssMiB: number;
  output: number[];
}

/** A deterministic full-size state dict with weight scales like a trained ViT. */
async function randomStateDict(): Promise<StateDict> {
  const text = await Deno.readTextFile(join(FIXTURES, "cpsam-state-dict.txt"));
  let seed = 12345;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296 - 0.5;
  };
  const sd: StateDict = new Map();
  for (const line of text.split("\n")) {
    const m = line.match(/^(\S+)\t\(([\d, ]+)\)/);
    if (!m) continue;
    const [key, dims] = [m[1], m[2].split(",").map((s) => s.trim()).filter(Boolean).map(Number)];
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (key === "W2") {
      for (let i = 0; i < dims[0]; i++) data[i * dims[0] + i] = 1;
    } else if (/norm\d?\.weight|neck\.[13]\.weight/.test(key)) {
      data.fill(1);
    } else {
      const fanIn = dims.length > 1 ? n / dims[0] : 1;
      const scale = key.endsWith("bias") || dims.length === 1 ? 0.02 : 2 / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) data[i] = rand() * scale;
    }
    sd.set(key, { data, shape: dims });
  }
  return sd;
}

/** user + system CPU seconds of this process (all threads) */
function cpuSeconds(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

function peakRssMiB(): number {
  const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Child process: load, run one tile `runs` times, print a JSON line. */
async function child(model: string, device: Backend, threads: number, runs: number) {
  const t0 = performance.now();
  const net = await createRunner(model, { device, numThreads: threads, batchSize: 1 });
  const createS = (performance.now() - t0) / 1000;
  const tile = new Float32Array(3 * 256 * 256);
  for (let i = 0; i < tile.length; i++) tile[i] = Math.sin(i * 0.001) + Math.cos(i * 0.37);
  const runS: number[] = [];
  let out: Float32Array = new Float32Array();
  const cpuS: number[] = [];
  for (let r = 0; r < runs; r++) {
    const [t, c] = [performance.now(), cpuSeconds()];
    out = (await net.run({ data: tile, shape: [1, 3, 256, 256] })).data;
    runS.push((performance.now() - t) / 1000);
    cpuS.push(cpuSeconds() - c);
  }
  await net.dispose();
  const result: ChildResult = { createS, runS, cpuS, peakRssMiB: peakRssMiB(), output: [...out] };
  console.log(JSON.stringify(result));
  Deno.exit(0);
}

async function runChild(
  model: string,
  device: Backend,
  threads: number,
  runs: number,
  timeoutS: number,
): Promise<ChildResult | string> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      model,
      device,
      `${threads}`,
      `${runs}`,
    ],
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(timeoutS * 1000),
  });
  try {
    const { stdout, success } = await cmd.output();
    const line = new TextDecoder().decode(stdout).trim().split("\n").pop() ?? "";
    return success && line.startsWith("{") ? JSON.parse(line) : "failed";
  } catch {
    return `no result in ${timeoutS} s (hung)`;
  }
}

const maxAbsDiff = (a: number[], b: number[]) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** The fastest warm run (the first run includes one-time allocations). */
function warmBest(r: ChildResult): { s: number; cpuS: number } {
  const warm = r.runS.length > 1 ? r.runS.slice(1) : r.runS;
  const best = r.runS.indexOf(Math.min(...warm));
  return { s: r.runS[best], cpuS: r.cpuS[best] };
}

/**
 * fp32 against int8 on the CPU per model, each precision in its own process, int8 right after
 * fp32; the cpsam row reuses the runs of the table above (the same network).
 */
async function int8Table(
  dir: string,
  cpsam: Record<string, ChildResult | string>,
  torchBest: number,
) {
  const threads = navigator.hardwareConcurrency;
  const rows: [string, Record<string, ChildResult | string>][] = [];
  const small: [string, string, () => Promise<StateDict>][] = [
    [
      "tiny (64/2/4, test fixture)",
      "tiny",
      () => readCheckpointFile(join(FIXTURES, "tiny-cpsam.pt")),
    ],
    [
      "nuclei shape (128/4/4)",
      "w128",
      () => Promise.resolve(initCpsam({ dim: 128, depth: 4, heads: 4 })),
    ],
    ["256/6/8", "w256", () => Promise.resolve(initCpsam({ dim: 256, depth: 6, heads: 8 }))],
  ];
  for (const [label, file, make] of small) {
    const sd = await make();
    const runs: Record<string, ChildResult | string> = {};
    for (const precision of ["fp32", "int8"] as const) {
      const path = join(dir, `${file}-${precision}.onnx`);
      await writeCpsamOnnx(sd, path, { precision });
      runs[precision] = await runChild(path, "cpu", threads, 6, 120);
    }
    rows.push([label, runs]);
  }
  rows.push(["cpsam (1024/24/16, table above)", cpsam]);
  const ref = cpsam.fp32;
  const cpsamS = typeof ref === "string" ? NaN : warmBest(ref).s;
  console.log(
    `\nfp32 vs int8 (cpu, ${threads} threads, back to back; load ${
      Deno.loadavg()[0].toFixed(1)
    }):\n`,
  );
  console.log(
    "| model | fp32 s / tile | int8 s / tile | int8 / fp32 | CPU s / tile fp32 / int8 | " +
      "fp32 tiles / s | int8 tiles / s | peak RSS MiB fp32 / int8 | int8 vs cpsam fp32 | " +
      "int8 vs PyTorch best | max abs diff |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const [label, runs] of rows) {
    const [a, b] = [runs.fp32, runs.int8];
    if (typeof a === "string" || typeof b === "string" || !a || !b) {
      console.log(`| ${label} | ${a ?? "-"} | ${b ?? "-"} |${" - |".repeat(8)}`);
      continue;
    }
    const [wa, wb] = [warmBest(a), warmBest(b)];
    const [f, q] = [wa.s, wb.s];
    const cells = [
      label,
      f.toFixed(3),
      q.toFixed(3),
      `${(q / f).toFixed(2)}x`,
      `${wa.cpuS.toFixed(2)} / ${wb.cpuS.toFixed(2)}`,
      (1 / f).toFixed(2),
      (1 / q).toFixed(2),
      `${a.peakRssMiB.toFixed(0)} / ${b.peakRssMiB.toFixed(0)}`,
      `${(q / cpsamS).toFixed(3)}x`,
      `${(q / torchBest).toFixed(3)}x`,
      maxAbsDiff(a.output, b.output).toExponential(1),
    ];
    console.log(`| ${cells.join(" | ")} |`);
  }
  console.log(
    "\nGoal: cpsam int8 <= 0.2x PyTorch fp32. int8: the linear layers' weights in int8 (per " +
      "column), activations quantised per tensor at run time (DynamicQuantizeMatMul); attention " +
      "products, convolutions and the readout stay fp32.",
  );
}

/**
 * The shipped `nuclei` model on its validation images (every 10th of the DSB2018 pool, see
 * pretrained/nuclei/split.ts): int8 masks against fp32 masks (AP@0.5, goal >= 0.98) and each
 * against the ground truth. `CELLPOSE_BENCH_VAL_IMAGES` limits the number of images (default 60);
 * `deno run -A bench/network.bench.ts --masks` runs only this part.
 */
async function int8Masks(dir: string) {
  const checkpoint = bundledModelPath("nuclei");
  const pool = join(FIXTURES, "..", "data", "dsb2018-train");
  if (!checkpoint || !(await Deno.stat(checkpoint).catch(() => null))) {
    console.log("\nint8 masks: no pretrained/nuclei model in this checkout: left out");
    return;
  }
  const limit = Number(Deno.env.get("CELLPOSE_BENCH_VAL_IMAGES") ?? 60);
  const names = (await poolNames(pool)).filter((_, i) => isValidation(i)).slice(0, limit);
  const nets = [];
  for (const precision of ["fp32", "int8"] as const) {
    const path = join(dir, `nuclei-${precision}.onnx`);
    await writeCpsamOnnx(await readCheckpointFile(checkpoint), path, { precision });
    nets.push(await createRunner(path, { device: "cpu" }));
  }
  const sum = { agree: 0, gt32: 0, gt8: 0, s32: 0, s8: 0 };
  let worst = 1;
  try {
    for (const name of names) {
      const { image } = await readImage(join(pool, `${name}.png`));
      const { image: gt } = await readImage(join(pool, `${name}_masks.tif`));
      let t = performance.now();
      const a = await segment(image, { model: nets[0], device: "cpu" });
      sum.s32 += performance.now() - t;
      t = performance.now();
      const b = await segment(image, { model: nets[1], device: "cpu" });
      sum.s8 += performance.now() - t;
      const agree = a.nMasks + b.nMasks === 0 ? 1 : averagePrecision(a.masks, b.masks).ap[0];
      worst = Math.min(worst, agree);
      sum.agree += agree;
      sum.gt32 += averagePrecision(gt, a.masks).ap[0];
      sum.gt8 += averagePrecision(gt, b.masks).ap[0];
    }
  } finally {
    for (const n of nets) await n.dispose();
  }
  const n = names.length;
  console.log(
    `\nnuclei model on ${n} validation images: int8 masks vs fp32 masks AP@0.5 mean ` +
      `${(sum.agree / n).toFixed(3)} (worst ${worst.toFixed(3)}; goal >= 0.98); AP@0.5 vs ground ` +
      `truth fp32 ${(sum.gt32 / n).toFixed(3)}, int8 ${(sum.gt8 / n).toFixed(3)}; segment time ` +
      `fp32 ${(sum.s32 / 1000).toFixed(1)} s, int8 ${(sum.s8 / 1000).toFixed(1)} s`,
  );
}

/** Prints the benchmark table. */
export default async function networkBench() {
  const withGpu = Deno.env.get("CELLPOSE_BENCH_WEBGPU") === "1";
  const baseline = (await manifest()).cpu_baseline_fullsize_tile_seconds;
  const torchBest = Math.min(...baseline);
  const torchMedian = [...baseline].sort((a, b) => a - b)[Math.floor(baseline.length / 2)];
  const dir = await Deno.makeTempDir({ prefix: "cpsam-bench-" });
  try {
    let t = performance.now();
    const sd = await randomStateDict();
    const genS = (performance.now() - t) / 1000;
    const models: Record<string, string> = {};
    const convS: Record<string, number> = {};
    const sizes: Record<string, number> = {};
    for (const precision of ["fp32", "fp16", "int8"] as const) {
      t = performance.now();
      const r = await writeCpsamOnnx(sd, join(dir, `cpsam-${precision}.onnx`), { precision });
      convS[precision] = (performance.now() - t) / 1000;
      models[precision] = r.onnxPath;
      sizes[precision] = r.bytes / 2 ** 20;
    }
    sd.clear();
    console.log(
      `random full-size state dict in ${genS.toFixed(1)} s; conversion fp32 ${
        convS.fp32.toFixed(1)
      } s ` +
        `(${sizes.fp32.toFixed(0)} MiB), fp16 ${convS.fp16.toFixed(1)} s (${
          sizes.fp16.toFixed(0)
        } MiB), int8 ${convS.int8.toFixed(1)} s (${sizes.int8.toFixed(0)} MiB); ` +
        `${navigator.hardwareConcurrency} cores, load ${Deno.loadavg()[0].toFixed(1)}\n`,
    );
    const cases: [string, string, Backend, number, number, number][] = [
      ["cpu (onnxruntime-node)", "fp32", "cpu", navigator.hardwareConcurrency, 2, 300],
      ["cpu (onnxruntime-node)", "int8", "cpu", navigator.hardwareConcurrency, 2, 300],
      ["cpu (onnxruntime-node)", "fp16", "cpu", navigator.hardwareConcurrency, 2, 300],
    ];
    if (Deno.env.get("CELLPOSE_BENCH_WASM") !== "0") {
      cases.push(["wasm, 1 thread", "fp32", "wasm", 1, 1, 500]);
      cases.push(["wasm, 2 threads", "fp32", "wasm", 2, 1, 300]);
    }
    if (withGpu) {
      cases.push([
        "webgpu (software adapter)",
        "fp32",
        "webgpu",
        navigator.hardwareConcurrency,
        1,
        600,
      ]);
    }
    console.log(
      "| backend | weights | threads | load s | s / tile | tiles / s | CPU s / tile | peak RSS MiB | " +
        "vs PyTorch best | vs PyTorch median | CPU s / threads vs PyTorch best | max abs diff vs cpu fp32 |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let reference: number[] | undefined;
    const cpuRuns: Record<string, ChildResult | string> = {};
    for (const [label, precision, device, threads, runs, timeoutS] of cases) {
      const r = await runChild(models[precision], device, threads, runs, timeoutS);
      if (device === "cpu") cpuRuns[precision] = r;
      if (typeof r === "string") {
        console.log(`| ${label} | ${precision} | ${threads} | - | ${r} |${" - |".repeat(7)}`);
        continue;
      }
      const { s, cpuS } = warmBest(r);
      reference ??= r.output;
      const cells = [
        label,
        precision,
        threads,
        r.createS.toFixed(1),
        s.toFixed(2) + (r.runS.length > 1 ? ` (first ${r.runS[0].toFixed(2)})` : ""),
        (1 / s).toFixed(3),
        cpuS.toFixed(1),
        r.peakRssMiB.toFixed(0),
        `${(s / torchBest).toFixed(2)}x`,
        `${(s / torchMedian).toFixed(2)}x`,
        `${(cpuS / threads / torchBest).toFixed(2)}x`,
        maxAbsDiff(r.output, reference).toExponential(1),
      ];
      console.log(`| ${cells.join(" | ")} |`);
    }
    console.log(
      `\nPyTorch CPU per tile (MANIFEST): ${baseline.map((b) => b.toFixed(1)).join(", ")} s. ` +
        "Goal: default CPU backend <= 0.7x PyTorch. Wall times depend on the machine's load " +
        `(${Deno.loadavg()[0].toFixed(1)} now); CPU s / threads is the wall time an idle machine ` +
        "would give with perfect scaling.",
    );
    await int8Table(dir, cpuRuns, torchBest);
    await int8Masks(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") {
    const [, model, device, threads, runs] = Deno.args;
    await child(model, device as Backend, Number(threads), Number(runs));
  } else if (Deno.args[0] === "--masks") {
    const dir = await Deno.makeTempDir({ prefix: "cpsam-bench-" });
    await int8Masks(dir).finally(() => Deno.remove(dir, { recursive: true }));
  } else {
    await networkBench();
  }
}
