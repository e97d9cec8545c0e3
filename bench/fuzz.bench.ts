/**
 * The hostile inputs of the hardening suite (`tests/hostile_cases.ts`: a self-looping TIFF
 * directory, Deflate / PackBits / LZW / Zstandard / PNG bombs, a JPEG declaring 10000 x 10000, a JPEG TIFF strip
 * whose frame claims 20000 x 20000, checkpoint
 * bombs), each run as a user or a client would: `cellpose segment` as a subprocess (images with
 * the tiny model, checkpoints as `--pretrained_model`), and to a server in its own process
 * (images posted to `/v1/segment`, checkpoints loaded from its model cache by
 * `POST /v1/models/:name/load`) while `/v1/health` is polled. One table: exit code or status, time,
 * peak RSS (CLI: of the process, and its ratio to a baseline run on a plainly broken file;
 * server: growth during the case) and health latency. Runs stop at 60 s or 3 GiB (shown as
 * "killed"), so the bench also measures code that still hangs or balloons.
 *
 * Run: `deno task bench fuzz`
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hostileCheckpoints, hostileImages } from "../tests/hostile_cases.ts";
import {
  healthDuring,
  postModelLoad,
  postSegment,
  quantile,
  segmentCli,
} from "../tests/hostile_runs.ts";
import { spawnServer } from "../tests/server_process.ts";
import { encodePng } from "../io/png.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const TINY = join(REPO, "..", "shared", "fixtures", "tiny-cpsam.pt");
const MiB = 2 ** 20;

const cell = (n: number, digits = 0) => Number.isFinite(n) ? n.toFixed(digits) : "-";

export default async function fuzz() {
  const dir = await Deno.makeTempDir({ prefix: "bench_fuzz_" });
  try {
    const model = join(dir, "tiny-cpsam.pt");
    await Deno.copyFile(TINY, model);
    const image = join(dir, "cells.png");
    await Deno.writeFile(image, encodePng({ data: new Uint8Array(32 * 32), shape: [32, 32] }));
    await Deno.writeFile(join(dir, "broken.tif"), new Uint8Array([0x49, 0x49, 42, 0, 8, 0, 0, 0]));
    const base = await segmentCli(join(dir, "broken.tif"), dir, model);
    console.log(
      `baseline: cellpose segment broken.tif: exit ${base.status}, ${cell(base.ms / 1000, 2)} s, ` +
        `peak RSS ${cell(base.peakBytes / MiB)} MiB`,
    );
    console.log(
      "\n| case | CLI exit | CLI time (s) | CLI peak RSS (MiB) | x baseline | server status | " +
        "server time (s) | server peak RSS growth (MiB) | health p50 / p95 / max (ms) |",
    );
    console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    const server = await spawnServer({}, { CELLPOSE_LOCAL_MODELS_PATH: dir });
    try {
      for (const c of [...hostileImages(), ...hostileCheckpoints()]) {
        const file = join(dir, c.file);
        await Deno.writeFile(file, c.bytes);
        const isModel = c.file.endsWith(".pt");
        const cli = isModel
          ? await segmentCli(image, dir, file)
          : await segmentCli(file, dir, model);
        const run = isModel ? postModelLoad(server, dir, c) : postSegment(server, c);
        const health = await healthDuring(server.url, run);
        const r = await run;
        const srv = `| ${r.killed ? "killed" : r.status} | ${cell(r.ms / 1000, 2)} | ` +
          `${cell(r.peakBytes / MiB)} | ${cell(quantile(health, 0.5), 1)} / ` +
          `${cell(quantile(health, 0.95), 1)} / ${cell(quantile(health, 1), 1)} |`;
        console.log(
          `| ${c.name} (${c.bytes.length} B) | ${cli.killed ? "killed" : cli.status} | ` +
            `${cell(cli.ms / 1000, 2)} | ${cell(cli.peakBytes / MiB)} | ` +
            `${cell(cli.peakBytes / base.peakBytes, 2)} ${srv}`,
        );
        if (cli.killed) console.log(`  CLI ${c.file}: ${cli.killed}`);
      }
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
