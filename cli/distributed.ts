/**
 * What the block-wise CLI commands share: the block layout flags (`--block_size`, `--halo`), where
 * a run's labels and block results go, progress over blocks, and `segment --distributed URL`
 * (one Redis run per image: plan, enqueue, wait for the workers, merge).
 *
 * Outputs: a TIFF image gets `<savedir>/<name>_cp_masks.tif`; an OME-Zarr image gets the label
 * image `cp_masks` in its own `labels` group (and the TIFF too with `--save_tif`). Block results
 * wait in `<savedir>/<name>_cp_blocks/` (on storage every machine sees) until the merge.
 *
 * @example
 * ```ts
 * import { runLayout } from "./distributed.ts";
 * console.log(runLayout("/data/slide.ome.zarr", "zarr", { saveTif: true }));
 * // { outputs: [{ kind: "zarr", image: "/data/slide.ome.zarr", name: "cp_masks" },
 * //   { kind: "tiff", path: "/data/slide_cp_masks.tif" }], workDir: "/data/slide_cp_blocks" }
 * ```
 * @module
 */
import { basename, dirname, extname, join, resolve } from "node:path";
import { CellposeError } from "../core/errors.ts";
import { checkCancelled } from "../core/check.ts";
import type { SegmentOptions } from "../core/types.ts";
import { collectInputs } from "../io/files.ts";
import { runOnRedis, type RunProgress } from "../distributed/coordinator.ts";
import { createRunPlan, type RunOutput } from "../distributed/run_plan.ts";
import { describeError, EXIT } from "./command.ts";
import type { OutputArgs } from "./outputs.ts";
import { createProgress, type ProgressReporter } from "./progress.ts";

/** `--block_size`, `--halo`: the block layout of block-wise runs. */
export const blockFlags = {
  block_size: {
    kind: "integer",
    min: 2,
    default: 2048,
    placeholder: "PX",
    description: "side of a block's core in pixels (block-wise runs)",
    group: "Blocks",
  },
  halo: {
    kind: "integer",
    min: 0,
    placeholder: "PX",
    description: "margin read around each block: larger than the largest cell. Default: 128 " +
      "(or block_size / 2 when smaller)",
    group: "Blocks",
  },
} as const;

/** `--distributed URL` of `segment`. */
export const distributedFlags = {
  distributed: {
    kind: "string",
    placeholder: "redis://HOST:PORT",
    description: "segment block by block on the workers of this Redis (`cellpose worker URL` " +
      "on each machine); image and --savedir on storage they all see",
    group: "Blocks",
  },
  ...blockFlags,
} as const;

/** The image's name without `.tif`, `.ome.zarr`, `.zarr` ... */
function imageBase(path: string): string {
  const name = basename(path.replace(/\/+$/, ""));
  return name.replace(/(\.ome)?\.zarr$/i, "").replace(/(\.ome)?\.tiff?$/i, "") ||
    basename(name, extname(name));
}

/** The label outputs and work folder of a run on `imagePath` (see the module doc). */
export function runLayout(
  imagePath: string,
  kind: "tiff" | "zarr",
  options: { savedir?: string; saveTif?: boolean; workDir?: string } = {},
): { outputs: RunOutput[]; workDir: string } {
  const clean = imagePath.replace(/\/+$/, "");
  const dir = options.savedir ?? dirname(clean);
  const base = imageBase(clean);
  const tiff: RunOutput = { kind: "tiff", path: join(dir, `${base}_cp_masks.tif`) };
  const outputs: RunOutput[] = kind === "zarr"
    ? [{ kind: "zarr", image: clean, name: "cp_masks" }, ...(options.saveTif ? [tiff] : [])]
    : [tiff];
  return { outputs, workDir: options.workDir ?? join(dir, `${base}_cp_blocks`) };
}

/**
 * The model as the plan records it: a path that exists here made absolute (workers run in other
 * folders), a name as given.
 */
export function plannedModel(model: string): string {
  try {
    Deno.statSync(model);
    return resolve(model);
  } catch {
    return model;
  }
}

/** True when `path` is a folder that is not a folder of images but a Zarr image. */
async function isZarrFolder(path: string): Promise<boolean> {
  const st = await Deno.stat(path).catch(() => undefined);
  if (!st?.isDirectory) return false;
  if (/\.zarr\/?$/i.test(path)) return true;
  for (const f of ["zarr.json", ".zgroup", ".zattrs"]) {
    if (await Deno.stat(join(path, f)).then(() => true, () => false)) return true;
  }
  return false;
}

/**
 * The images named on a block-wise command line: OME-Zarr folders as they are, everything else
 * through the usual file search (folders, patterns).
 */
export async function blockInputs(
  inputs: string[],
  search: { lookOneLevelDown?: boolean; imgFilter?: string },
): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    if (await isZarrFolder(input)) out.push(input.replace(/\/+$/, ""));
    else out.push(...await collectInputs([input], search));
  }
  return out;
}

/** `1.2 s`, `3 min 04 s`. */
function duration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - 60 * m)).padStart(2, "0")} s`;
}

/**
 * A progress callback over blocks: on a terminal a live line (blocks done, rate, ETA, workers);
 * in a log a line at every tenth of the blocks.
 */
export function blockProgress(progress: ProgressReporter, tty: boolean): (p: RunProgress) => void {
  const started = performance.now();
  let firstDone = -1, lastTenth = -1;
  return (p) => {
    if (firstDone < 0) firstDone = p.done; // blocks done before this run (resumed)
    const now = performance.now(), fresh = p.done - firstDone;
    const rate = fresh > 0 ? fresh / ((now - started) / 1000) : 0;
    const eta = rate > 0 ? duration(((p.total - p.done) / rate) * 1000) : "?";
    const line = `blocks ${p.done}/${p.total}  ${rate.toFixed(2)} blocks/s  ETA ${eta}  ` +
      `${p.workers} worker${p.workers === 1 ? "" : "s"}` +
      (p.done === firstDone && p.workers === 0 ? "  (waiting for `cellpose worker`)" : "");
    if (tty) progress.status(line);
    else {
      const tenth = Math.floor((10 * p.done) / p.total);
      if (tenth !== lastTenth) {
        lastTenth = tenth;
        progress.note(line);
      }
    }
  };
}

/** The parsed flags `segment --distributed` uses. */
export interface DistributedArgs extends OutputArgs {
  distributed?: string;
  block_size: number;
  halo?: number;
  pretrained_model: string;
  look_one_level_down: boolean;
  img_filter?: string;
  json: boolean;
}

/** The outputs asked for that a block-wise run does not make (it writes the labels only). */
function notWritten(v: OutputArgs): string[] {
  const flags: [boolean, string][] = [
    [!v.no_npy, "_seg.npy (--no_npy to silence this)"],
    [v.save_png, "--save_png"],
    [v.save_txt, "--save_txt"],
    [v.save_outlines, "--save_outlines"],
    [v.save_rois, "--save_rois"],
    [v.save_flows, "--save_flows"],
    [v.save_csv, "--save_csv"],
  ];
  return flags.filter(([on]) => on).map(([, name]) => name);
}

/**
 * `segment IMAGE... --distributed URL`: each image is planned (whole-image normalisation), its
 * blocks are run by the workers of the Redis at `URL`, then merged into its labels here. Resolves
 * to the exit code; a Redis that does not answer ends the command (BAD_PARAMETER, exit 2).
 */
export async function segmentDistributed(
  inputs: string[],
  v: DistributedArgs,
  options: SegmentOptions,
): Promise<number> {
  const url = v.distributed!;
  const files = await blockInputs(inputs, {
    lookOneLevelDown: v.look_one_level_down,
    imgFilter: v.img_filter,
  });
  const tty = Deno.stderr.isTerminal();
  const progress = createProgress({ total: files.length, tty });
  const skipped = notWritten(v);
  if (skipped.length) {
    progress.note(`--distributed writes the label image only; not written: ${skipped.join(", ")}`);
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  let failed = 0;
  try {
    for (const path of files) {
      progress.start(basename(path));
      try {
        checkCancelled(stop.signal, "the distributed run");
        const kind = (await isZarrFolder(path)) ? "zarr" : "tiff";
        const layout = runLayout(path, kind, { savedir: v.savedir, saveTif: v.save_tif });
        if (v.savedir) await Deno.mkdir(v.savedir, { recursive: true });
        const plan = await createRunPlan(path, {
          ...layout,
          options,
          model: plannedModel(v.pretrained_model),
          blockSize: v.block_size,
          halo: v.halo,
        });
        const r = await runOnRedis(url, plan, {
          signal: stop.signal,
          onProgress: blockProgress(progress, tty),
        });
        const n = Object.keys(r.workers).length;
        progress.done(
          `${r.nMasks} masks from ${r.blocks} blocks on ${n} worker${n === 1 ? "" : "s"}, ` +
            `wrote ${r.outputs.join(", ")}`,
        );
        if (v.json) {
          console.log(JSON.stringify({
            path,
            nMasks: r.nMasks,
            blocks: r.blocks,
            workers: r.workers,
            outputs: r.outputs,
            timings: r.timings,
          }));
        }
      } catch (e) {
        // a wrong command line (e.g. a Redis that does not answer) fails every image alike
        if (e instanceof CellposeError && e.code === "BAD_PARAMETER") throw e;
        failed++;
        progress.fail(describeError(e));
        if (v.json) {
          const code = e instanceof CellposeError ? e.code : "ERROR";
          console.log(JSON.stringify({ path, error: describeError(e), code }));
        }
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  return failed ? EXIT.failed : EXIT.ok;
}
