/**
 * The large-image path of `cellpose segment`: a 2-D TIFF or OME-Zarr image larger than one block
 * (`--block_size`, or any size with `--large`) is segmented block by block by `segmentLarge`,
 * read lazily and written strip by strip, so memory follows the block size, not the image.
 *
 * Outputs: the label image `<name>_cp_masks.tif` always (uint16, uint32 past 65535 masks, BigTIFF
 * past 4 GiB; an OME-Zarr image gets its `labels/cp_masks` group, and the TIFF with `--save_tif`);
 * `--save_csv`, `--save_txt` and `--save_rois` are made from the merged labels as they stream
 * (io/large_outputs.ts); `_seg.npy`, `--save_png`, `--save_outlines` and `--save_flows` are
 * skipped with the reason. Every file is written under a hidden temporary name and renamed when
 * complete: Ctrl+C stops after the current tile (a second Ctrl+C at once) and leaves no partial
 * file.
 *
 * @example
 * ```ts
 * import { openLargeImage } from "./large.ts";
 * const source = await openLargeImage("/data/slide.tif", { block_size: 2048, large: false, no_large: false });
 * console.log(source ? `${source.height} x ${source.width}: block-wise` : "whole image");
 * await source?.close();
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { SegmentWithModel } from "../pipeline/segment.ts";
import { openImageSource, type OpenSource } from "../io/image_source.ts";
import { allLabels, type LabelSink, type LabelTarget } from "../io/label_sink.ts";
import { largeOutputs } from "../io/large_outputs.ts";
import { outputTarget } from "../distributed/merge_run.ts";
import { segmentLarge } from "../pipeline/segment_large.ts";
import { runLayout } from "./distributed.ts";
import type { OutputArgs } from "./outputs.ts";
import type { ProgressReporter } from "./progress.ts";

/** `--large`, `--no_large`. */
export const largeFlags = {
  large: {
    kind: "boolean",
    description: "segment 2-D TIFF / OME-Zarr images block by block even when they fit in one " +
      "block. Default: only those larger than --block_size",
    group: "Blocks",
  },
  no_large: {
    kind: "boolean",
    description: "never block by block: load every image whole",
    group: "Blocks",
  },
} as const;

/** The flags the large-image path reads. */
export interface LargeArgs extends OutputArgs {
  block_size: number;
  halo?: number;
  large: boolean;
  no_large: boolean;
  do_3D?: boolean;
  stitch_threshold?: number;
  z_axis?: number;
  json?: boolean;
}

const LAZY = /\.(tiff?|zarr)\/?$/i;

type PathFlags = Pick<
  LargeArgs,
  "block_size" | "large" | "no_large" | "do_3D" | "stitch_threshold" | "z_axis"
>;

/** Throws BAD_PARAMETER for `--large` with `--no_large` or with stack options. */
export function checkLargeFlags(v: PathFlags): void {
  if (v.large && v.no_large) {
    throw new CellposeError("BAD_PARAMETER", "--large and --no_large contradict", "--no_large");
  }
  const stack = v.do_3D || (v.stitch_threshold ?? 0) > 0 || v.z_axis !== undefined;
  if (v.large && stack) {
    throw new CellposeError(
      "BAD_PARAMETER",
      "--large segments 2-D images: it does not take --do_3D, --stitch_threshold or --z_axis",
      "--large",
    );
  }
}

/**
 * The image at `path` opened for block-wise reading when it takes the large-image path (see the
 * module doc), else `undefined` (it is then loaded whole). Throws the reader's error for
 * `--large` on an image it cannot read lazily (e.g. a PNG, a Z stack).
 */
export async function openLargeImage(
  path: string,
  v: PathFlags,
): Promise<OpenSource | undefined> {
  checkLargeFlags(v);
  const stack = v.do_3D || (v.stitch_threshold ?? 0) > 0 || v.z_axis !== undefined;
  if (v.no_large || stack) return undefined;
  if (!v.large && !LAZY.test(path)) return undefined;
  let source: OpenSource;
  try {
    source = await openImageSource(path);
  } catch (e) {
    if (v.large) throw e;
    return undefined; // e.g. a Z stack: the whole-image path reads it, or says why not
  }
  if (v.large || source.height > v.block_size || source.width > v.block_size) return source;
  await source.close();
  return undefined;
}

/** What {@link segmentLargeImage} did, for the summary line and `--json`. */
export interface LargeImageResult {
  nMasks: number;
  blocks: number;
  written: string[];
  skipped: string[];
  timings: Record<string, number>;
}

/** The outputs asked for that a block-wise run does not make, with the reason. */
function skippedOutputs(v: OutputArgs): string[] {
  const whole = "it needs the whole image in memory";
  const flags: [boolean, string][] = [
    [!v.no_npy, `_seg.npy: ${whole} (the label TIFF replaces it; --no_npy silences this)`],
    [v.save_png, `--save_png: ${whole} (use the label TIFF)`],
    [v.save_outlines, `--save_outlines: ${whole} (--save_txt and --save_rois are streamed)`],
    [v.save_flows, "--save_flows: the flows of a block are not kept past the block"],
  ];
  return flags.filter(([on]) => on).map(([, why]) => why);
}

/** Files being written, removed at once if the user insists on quitting (a second Ctrl+C). */
const unfinished = new Set<string>();

/** Tracks the temporary paths of a target's sinks in {@link unfinished} while they are open. */
function tracked(target: LabelTarget): LabelTarget {
  return async (type, width, height) => {
    const sink = await target(type, width, height);
    const partials = sink.partials ?? [];
    for (const p of partials) unfinished.add(p);
    const done = () => partials.forEach((p) => unfinished.delete(p));
    const out: LabelSink = {
      paths: sink.paths,
      partials,
      write: (rows) => sink.write(rows),
      close: () => sink.close().finally(done),
      abort: () => sink.abort().finally(done),
    };
    return out;
  };
}

/**
 * Ctrl+C during a block-wise image: the first aborts `stop` (the run ends after the current
 * tile and cleans up); a second removes the unfinished files at once and exits (130). Returns
 * the function that removes the listener.
 */
export function onInterrupt(stop: AbortController, progress: ProgressReporter): () => void {
  const listener = () => {
    if (!stop.signal.aborted) {
      progress.note("stopping after the current tile (Ctrl+C again to quit at once)");
      stop.abort(new CellposeError("CANCELLED", "interrupted (Ctrl+C)", "SIGINT"));
      return;
    }
    for (const p of unfinished) {
      try {
        Deno.removeSync(p, { recursive: true });
      } catch {
        // already gone
      }
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", listener);
  return () => Deno.removeSignalListener("SIGINT", listener);
}

/**
 * Segments one large image (see the module doc) with `model`: labels and the streamed outputs
 * into `--savedir` or beside the image. Progress goes to `progress` (blocks, tiles, ETA).
 */
export async function segmentLargeImage(
  source: OpenSource,
  v: LargeArgs,
  options: SegmentWithModel,
  progress: ProgressReporter,
  signal: AbortSignal,
): Promise<LargeImageResult> {
  const t0 = performance.now();
  if (v.savedir) await Deno.mkdir(v.savedir, { recursive: true });
  const { outputs } = runLayout(source.path, source.kind, {
    savedir: v.savedir,
    saveTif: v.save_tif,
  });
  const tiff = outputs.find((o) => o.kind === "tiff");
  const outDir = tiff?.kind === "tiff" ? dirname(tiff.path) : (v.savedir ?? dirname(source.path));
  const extra = largeOutputs(source, {
    imagePath: source.path,
    savedir: v.savedir,
    csv: v.save_csv,
    txt: v.save_txt,
    rois: v.save_rois,
  });
  const temp = await Deno.makeTempDir({ dir: outDir, prefix: ".cellpose_blocks_" });
  unfinished.add(temp);
  try {
    const r = await segmentLarge(
      source,
      tracked(allLabels([...outputs.map(outputTarget), ...extra.targets])),
      {
        ...options,
        blockSize: v.block_size,
        halo: v.halo,
        tempDir: temp,
        signal,
        onProgress: (p) => progress.update(p),
      },
    );
    const t1 = performance.now();
    const written = outputs.map((o) =>
      o.kind === "tiff" ? o.path : join(o.image, "labels", o.name)
    );
    written.push(...await extra.finish(written[written.length - 1], { signal }));
    return {
      nMasks: r.nMasks,
      blocks: r.blocks,
      written,
      skipped: skippedOutputs(v),
      timings: { ...r.timings, outputs: performance.now() - t1, total: performance.now() - t0 },
    };
  } finally {
    await extra.abort();
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    unfinished.delete(temp);
  }
}

/** `slide.tif` -> `slide.tif`, for messages. */
export const shortName = (path: string): string => basename(path.replace(/\/+$/, ""));
