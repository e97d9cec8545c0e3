/**
 * Block-wise runs on Redis workers vs one process, with the tiny random cpsam on CPU: the same
 * synthetic uint8 TIFF (bench/large's discs) segmented by `segmentLarge` in this process, then by
 * 1 and 2 `cellpose worker` processes (coordinated from here, a redis-server of the benchmark's
 * own on loopback). Workers are warmed up on a first run (model loaded), so the figures are the
 * steady state: plan (the whole-image normalisation pass), blocks (queue to last result), merge.
 * Each worker's onnxruntime uses all cores, as a worker on its own machine would.
 * The last rows are arithmetic: `plan + ceil(blocks / M) * (one worker's time per block) + merge`
 * for M machines of this kind. `DISTRIBUTED_BENCH_SIDE` (default 1024), `DISTRIBUTED_BENCH_BLOCK` (default 256).
 * @module
 */
import { join } from "node:path";
import { runOnRedis } from "../distributed/coordinator.ts";
import { createRunPlan } from "../distributed/run_plan.ts";
import { loadModel } from "../models/load.ts";
import { segmentLarge } from "../pipeline/segment_large.ts";
import { type CliProcess, spawnCli } from "../tests/cli.ts";
import { FIXTURES } from "../tests/fixtures.ts";
import { startRedis } from "../tests/redis_server.ts";
import { writeBlobs } from "./large.bench.ts";

/** Runs one Redis run of `input` and returns its stage times (ms). */
async function redisRun(url: string, input: string, dir: string, model: string, blockSize: number) {
  const t0 = performance.now();
  const plan = await createRunPlan(input, {
    workDir: join(dir, "work"),
    outputs: [{ kind: "tiff", path: join(dir, "masks.tif") }],
    model,
    blockSize,
    halo: 32,
  });
  const planned = performance.now();
  const r = await runOnRedis(url, plan);
  const end = performance.now();
  const merge = r.timings.read + r.timings.merge + r.timings.write;
  return {
    plan: planned - t0,
    blocks: end - planned - merge,
    merge,
    total: end - t0,
    nMasks: r.nMasks,
    blocksCount: r.blocks,
    workers: r.workers,
  };
}

export default async function main(): Promise<void> {
  const side = Number(Deno.env.get("DISTRIBUTED_BENCH_SIDE") ?? 1024);
  const blockSize = Number(Deno.env.get("DISTRIBUTED_BENCH_BLOCK") ?? 256);
  const dir = await Deno.makeTempDir({ prefix: "distributed_bench_" });
  const models = join(dir, "models");
  await Deno.mkdir(models);
  const ckpt = join(models, "tiny-cpsam.pt");
  await Deno.copyFile(join(FIXTURES, "tiny-cpsam.pt"), ckpt);
  const env = { CELLPOSE_LOCAL_MODELS_PATH: models };
  Deno.env.set("CELLPOSE_LOCAL_MODELS_PATH", models);
  const redis = await startRedis(dir);
  const workers: CliProcess[] = [];
  try {
    const input = join(dir, "blobs.tif");
    await writeBlobs(input, side);
    const model = await loadModel(ckpt, { device: "cpu" });
    const t0 = performance.now();
    const one = await segmentLarge(input, join(dir, "one.tif"), {
      model,
      blockSize,
      halo: 32,
      tempDir: dir,
    });
    const single = performance.now() - t0;
    await model.dispose();
    const rows: string[] = [];
    const fmt = (ms: number) => (ms / 1000).toFixed(1);
    rows.push(
      `| one process (segmentLarge) | 1 | ${fmt(one.timings.normalize)} | ${
        fmt(one.timings.blocks)
      } | ` +
        `${fmt(one.timings.merge + one.timings.write)} | ${fmt(single)} | ` +
        `${(one.blocks / (one.timings.blocks / 1000)).toFixed(2)} | 1.00 |`,
    );
    let oneWorkerBlocks = 0, plan = 0, merge = 0;
    for (const n of [1, 2]) {
      while (workers.length < n) {
        workers.push(
          spawnCli(["worker", redis.url, "--device", "cpu"], { env }),
        );
      }
      await redisRun(redis.url, input, dir, ckpt, blockSize); // warm-up: models loaded
      const r = await redisRun(redis.url, input, dir, ckpt, blockSize);
      if (r.nMasks !== one.nMasks) throw new Error(`${r.nMasks} masks vs ${one.nMasks}`);
      if (n === 1) [oneWorkerBlocks, plan, merge] = [r.blocks, r.plan, r.merge];
      rows.push(
        `| ${n} worker process${n > 1 ? "es" : ""} | ${Object.keys(r.workers).length} | ` +
          `${fmt(r.plan)} | ${fmt(r.blocks)} | ${fmt(r.merge)} | ${fmt(r.total)} | ` +
          `${(r.blocksCount / (r.blocks / 1000)).toFixed(2)} | ${(single / r.total).toFixed(2)} |`,
      );
    }
    // M machines like this one: each does ceil(blocks / M) blocks at one worker's pace
    const perBlock = oneWorkerBlocks / one.blocks;
    for (const m of [4, 8, one.blocks].filter((m) => m <= one.blocks)) {
      const blocks = Math.ceil(one.blocks / m) * perBlock, total = plan + blocks + merge;
      rows.push(
        `| ${m} machines (arithmetic) | ${m} | ${fmt(plan)} | ${fmt(blocks)} | ${fmt(merge)} | ` +
          `${fmt(total)} | ${(one.blocks / (blocks / 1000)).toFixed(2)} | ` +
          `${(single / total).toFixed(2)} |`,
      );
    }
    console.log(
      `${side} x ${side} uint8, ${one.blocks} blocks of ${blockSize} (halo 32), ${one.nMasks} masks, ` +
        `${navigator.hardwareConcurrency} cores\n`,
    );
    console.log(
      "| run | workers that did blocks | plan (s) | blocks (s) | merge + write (s) | total (s) | " +
        "blocks/s | speed-up vs one process |",
    );
    console.log("|---|---|---|---|---|---|---|---|");
    for (const r of rows) console.log(r);
  } finally {
    for (const w of workers) {
      w.kill("SIGTERM");
      await w.result();
    }
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
