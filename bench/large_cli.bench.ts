/**
 * `cellpose segment` on huge synthetic TIFFs (the large-image path the CLI takes by itself) with
 * the tiny random cpsam on CPU: wall time, blocks/s, masks and the CLI process's peak RSS
 * (VmHWM, polled from /proc while it runs), which must stay under 2 GiB for 20000 x 20000: memory
 * follows the block size, not the image. Inputs are made strip by strip by `writeBlobs`
 * (bench/large.bench.ts) into `.cache/bench-large/` (gitignored) and kept for reruns.
 * Sizes: `LARGE_CLI_SIZES` (comma-separated sides, default `12000,20000`); extra CLI flags:
 * `LARGE_CLI_FLAGS` (e.g. `--save_csv --save_rois`).
 * @module
 */
import { join } from "node:path";
import { spawnCli } from "../tests/cli.ts";
import { FIXTURES } from "../tests/fixtures.ts";
import { writeBlobs } from "./large.bench.ts";

const root = new URL("..", import.meta.url).pathname;

/** Peak RSS (VmHWM) of process `pid` in MiB, or NaN once it is gone. */
function vmHwmMiB(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Runs `cellpose segment` on `input`; resolves to its JSON line and peak RSS. */
async function segmentCli(
  input: string,
  savedir: string,
  flags: string[],
): Promise<{ result: Record<string, unknown>; peakMiB: number; seconds: number }> {
  const t0 = performance.now();
  const child = spawnCli([
    "segment",
    input,
    "--pretrained_model",
    join(FIXTURES, "tiny-cpsam.pt"),
    "--device",
    "cpu",
    "--savedir",
    savedir,
    "--no_npy",
    "--json",
    ...flags,
  ], { echo: true });
  let peak = 0;
  const poll = setInterval(() => {
    const m = vmHwmMiB(child.pid);
    if (m > peak) peak = m;
  }, 200);
  const out = await child.result(Infinity);
  clearInterval(poll);
  const seconds = (performance.now() - t0) / 1000;
  const line = out.stdout.trim().split("\n").pop() ?? "";
  if (out.code !== 0) throw new Error(`cellpose segment exited ${out.code}: ${line}`);
  return { result: JSON.parse(line), peakMiB: peak, seconds };
}

export default async function main(): Promise<void> {
  const sizes = (Deno.env.get("LARGE_CLI_SIZES") ?? "12000,20000").split(",").map(Number);
  const flags = (Deno.env.get("LARGE_CLI_FLAGS") ?? "").split(" ").filter(Boolean);
  const cache = join(root, ".cache/bench-large");
  await Deno.mkdir(cache, { recursive: true });
  console.log(
    "| image (uint8 TIFF) | blocks | masks | time (s) | blocks/s | µs / pixel | peak RSS (MiB) " +
      "| RSS / 2 GiB | RSS / uint16 labels |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const side of sizes) {
    const input = join(cache, `blobs-${side}.tif`);
    const made = await Deno.stat(input).then(() => true, () => false);
    if (!made) {
      await writeBlobs(`${input}.partial`, side);
      await Deno.rename(`${input}.partial`, input);
    }
    const out = await Deno.makeTempDir({ dir: cache, prefix: "out_" });
    try {
      const { result, peakMiB, seconds } = await segmentCli(input, out, flags);
      const blocks = result.blocks as number;
      const timings = result.timings as Record<string, number>;
      const labelsMiB = side * side * 2 / 2 ** 20;
      console.log(
        `| ${side} x ${side} | ${blocks} | ${result.nMasks} | ${seconds.toFixed(0)} | ` +
          `${(blocks / seconds).toFixed(4)} | ${(seconds * 1e6 / (side * side)).toFixed(2)} | ` +
          `${peakMiB.toFixed(0)} | ${(peakMiB / 2048).toFixed(2)} | ` +
          `${(peakMiB / labelsMiB).toFixed(2)} |`,
      );
      console.log(
        `<!-- ${side}: ${
          Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(", ")
        } -->`,
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  }
}

if (import.meta.main) await main();
