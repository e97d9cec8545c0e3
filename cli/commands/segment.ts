/**
 * `cellpose segment <files|folders|globs>`: segments images with one model load, writes
 * cellpose's output files, and keeps going when one file fails.
 *
 * @example
 * ```ts
 * import { segmentCommand } from "./segment.ts";
 * const code = await segmentCommand.run([
 *   "../shared/data/dsb2018/00071198d059.png",
 *   "--pretrained_model", "../shared/fixtures/tiny-cpsam.pt", "--savedir", "/tmp/out", "--save_tif",
 * ]);
 * console.log(code); // 0
 * ```
 * @module
 */
import { basename, dirname } from "node:path";
import { CellposeError } from "../../core/errors.ts";
import type { SegmentOptions } from "../../core/types.ts";
import { DEFAULT_MAX_DECODED_BYTES, type LoadedImage, readImage, segment } from "../../mod.ts";
import { NORM_PERCENTILE, SEGMENT_PARAMS } from "../../core/params.ts";
import { formatOptions, optionalTableFlag, parseArgs, tableFlag, type Values } from "../args.ts";
import { type Command, describeError, EXIT } from "../command.ts";
import { loadModelForCli, modelOptions } from "../model.ts";
import { outputOptions, wantsOutput, writeOutputs } from "../outputs.ts";
import { createProgress } from "../progress.ts";
import { blockInputs, distributedFlags, segmentDistributed } from "../distributed.ts";
import {
  checkLargeFlags,
  largeFlags,
  onInterrupt,
  openLargeImage,
  segmentLargeImage,
} from "../large.ts";

/** A segmentation flag from the parameter table. */
function seg<const K extends "number" | "integer" | "boolean">(
  name: string,
  kind: K,
  placeholder?: string,
) {
  return tableFlag(SEGMENT_PARAMS, name, kind, { placeholder, group: "Segmentation" });
}

/** The flags of `cellpose segment`. */
export const options = {
  dir: {
    kind: "string",
    placeholder: "FOLDER",
    description: "a folder of images (same as naming the folder as an argument)",
    group: "Input",
  },
  image_path: {
    kind: "string",
    placeholder: "FILE",
    description: "one image (same as naming it as an argument)",
    group: "Input",
  },
  look_one_level_down: {
    kind: "boolean",
    description: "also take the images in the sub-folders of each folder",
    group: "Input",
  },
  img_filter: {
    kind: "string",
    placeholder: "END",
    description: "in folders, only images whose name (without extension) ends with END",
    group: "Input",
  },
  channel_axis: optionalTableFlag(SEGMENT_PARAMS, "channel_axis", "integer", {
    placeholder: "AXIS",
    group: "Input",
  }),
  z_axis: optionalTableFlag(SEGMENT_PARAMS, "z_axis", "integer", {
    placeholder: "AXIS",
    group: "Input",
  }),
  max_image_bytes: {
    kind: "integer",
    min: 1,
    default: DEFAULT_MAX_DECODED_BYTES,
    placeholder: "BYTES",
    description: "refuse an image read whole that would decode to more bytes (its header's size, " +
      "and each compressed strip, tile or PNG stream while it inflates): a small hostile file " +
      "cannot take the memory. Large TIFFs and OME-Zarr are read block by block instead",
    group: "Input",
  },
  diameter: seg("diameter", "number", "PX"),
  flow_threshold: seg("flow_threshold", "number", "T"),
  cellprob_threshold: seg("cellprob_threshold", "number", "T"),
  min_size: seg("min_size", "integer", "PIXELS"),
  max_size_fraction: seg("max_size_fraction", "number", "F"),
  niter: seg("niter", "integer", "N"),
  do_3D: seg("do_3D", "boolean"),
  stitch_threshold: seg("stitch_threshold", "number", "IOU"),
  anisotropy: seg("anisotropy", "number", "R"),
  flow3D_smooth: seg("flow3D_smooth", "number", "SIGMA"),
  invert: seg("invert", "boolean"),
  no_norm: {
    kind: "boolean",
    description: "do not normalise the intensities (the image is already scaled 0..1)",
    group: "Segmentation",
  },
  norm_percentile: {
    kind: "numbers",
    count: 2,
    default: NORM_PERCENTILE,
    placeholder: "LOW HIGH",
    description: "percentiles mapped to 0 and 1 by the normalisation",
    group: "Segmentation",
  },
  batch_size: seg("batch_size", "integer", "N"),
  ...distributedFlags,
  ...largeFlags,
  ...modelOptions,
  ...outputOptions,
} as const;

type SegmentArgs = Values<typeof options>;

/** Maps the parsed flags to the library's {@link SegmentOptions}. */
export function segmentOptions(v: SegmentArgs): SegmentOptions {
  return {
    diameter: v.diameter || undefined,
    flowThreshold: v.flow_threshold,
    cellprobThreshold: v.cellprob_threshold,
    minSize: v.min_size,
    maxSizeFraction: v.max_size_fraction,
    niter: v.niter || undefined,
    do3D: v.do_3D,
    stitchThreshold: v.stitch_threshold,
    anisotropy: v.anisotropy,
    flow3DSmooth: v.flow3D_smooth,
    batchSize: v.batch_size,
    invert: v.invert,
    normalize: v.no_norm ? false : { percentile: [v.norm_percentile[0], v.norm_percentile[1]] },
  };
}

/**
 * Channel and Z axes: the flags win; else the file's own axes (TIFF metadata; for `.npy`, which
 * carries no axis names, readImage applies cellpose's rule).
 */
function imageAxes(read: LoadedImage, v: SegmentArgs) {
  const channelAxis = v.channel_axis ??
    (read.channelAxis !== v.z_axis ? read.channelAxis : undefined);
  const zAxis = v.z_axis ?? (read.zAxis !== channelAxis ? read.zAxis : undefined);
  return { channelAxis, zAxis };
}

const help = `cellpose segment: find the cells in images and write a label image per image.

Usage: deno task cellpose segment <image|folder|pattern>... [options]

Give image files, folders (every image inside: .tif .tiff .png .jpg .jpeg .npy; cellpose outputs
and *_masks files are skipped) or patterns in quotes ('plate1/*.tif', 'exp/**/*.png'). The model
is loaded once; a file that fails is reported and the others are still done.

Examples:
  deno task cellpose segment cells.tif
  deno task cellpose segment images/ --save_tif --save_rois --savedir results/
  deno task cellpose segment 'plate1/*.png' --diameter 17 --json > results.jsonl
  deno task cellpose segment stack.tif --z_axis 0 --channel_axis 1 --do_3D
  deno task cellpose segment cells.tif --pretrained_model ~/models/my_finetuned_model

Outputs go next to each image, or into --savedir, named like cellpose's:
  <name>_seg.npy                masks, outlines and flows for the cellpose GUI (default;
                                --no_npy turns it off)
  <name>_cp_masks.tif           label image: 0 background, 1..N one number per cell (--save_tif)
  <name>_cp_masks.png           the same as a 16-bit PNG (--save_png)
  <name>_cp_outlines.txt        outlines, one cell per line, for ImageJ (--save_txt)
  <name>_outlines_cp_masks.png  outlines drawn over the image (--save_outlines)
  <name>_rois.zip               ImageJ/Fiji ROI set (--save_rois)
  <name>_dP_cp_masks.tif        network flows, and <name>_cellprob_cp_masks.tif the cell
                                probability (--save_flows)
  <name>_stats_cp_masks.csv     area, centroid, bounding box, intensity per cell (--save_csv)

The model: by default the official Cellpose-SAM weights "cpsam", downloaded on first use into
~/.cellpose/models (or $CELLPOSE_LOCAL_MODELS_PATH) and converted once. Offline: download
https://huggingface.co/mouseland/cellpose-sam/resolve/main/cpsam elsewhere and copy it there,
or pass --pretrained_model /path/to/cpsam.

Flags use cellpose's names (--flow_threshold) or the same with dashes (--flow-threshold).

${
  formatOptions(options)
}Exit codes: 0 all images done, 1 some failed, 2 wrong command line, 3 model missing.`;

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals, help: wantHelp } = parseArgs(argv, options);
  if (wantHelp) {
    console.log(help);
    return EXIT.ok;
  }
  const inputs = [
    ...positionals,
    ...(v.dir ? [v.dir] : []),
    ...(v.image_path ? [v.image_path] : []),
  ];
  if (!inputs.length) {
    throw new CellposeError(
      "BAD_PARAMETER",
      "no images given. Example: deno task cellpose segment cells.tif",
      inputs,
    );
  }
  checkLargeFlags(v);
  if (v.distributed) return await segmentDistributed(inputs, v, segmentOptions(v));
  const files = await blockInputs(inputs, {
    lookOneLevelDown: v.look_one_level_down,
    imgFilter: v.img_filter,
  });
  if (!wantsOutput(v)) {
    // the large-image path always writes its label TIFF; any other image would write nothing
    for (const path of files) {
      const large = await openLargeImage(path, v);
      await large?.close();
      if (large) continue;
      throw new CellposeError(
        "BAD_PARAMETER",
        `nothing to write for ${basename(path)}: --no_npy turns off _seg.npy and no --save_* ` +
          "flag is given (add e.g. --save_tif)",
        "--no_npy",
      );
    }
  }
  const progress = createProgress({ total: files.length });
  const model = await loadModelForCli(v, progress);
  let failed = 0;
  const stop = new AbortController();
  try {
    for (const path of files) {
      progress.start(basename(path));
      const started = performance.now();
      try {
        const large = await openLargeImage(path, v);
        if (large) {
          const removeListener = onInterrupt(stop, progress);
          try {
            const r = await segmentLargeImage(
              large,
              v,
              { ...segmentOptions(v), model },
              progress,
              stop.signal,
            );
            progress.done(
              `${r.nMasks} masks from ${r.blocks} blocks ` +
                `(${(r.blocks / (r.timings.blocks / 1000)).toFixed(3)} blocks/s), ` +
                `wrote ${r.written.map((o) => basename(o)).join(", ")} in ${dirname(r.written[0])}`,
            );
            for (const s of r.skipped) progress.note(`  skipped ${s}`);
            if (v.json) {
              const extra = r.skipped.length ? { skipped: r.skipped } : {};
              console.log(JSON.stringify({
                path,
                nMasks: r.nMasks,
                blocks: r.blocks,
                outputs: r.written,
                timings: r.timings,
                ...extra,
              }));
            }
          } finally {
            removeListener();
            await large.close();
          }
          continue;
        }
        const read = await readImage(path, undefined, { maxBytes: v.max_image_bytes }).catch(
          (e) => {
            throw e instanceof CellposeError && e.code === "TOO_LARGE"
              ? new CellposeError(e.code, `${e.message} (--max_image_bytes)`, e.value, { cause: e })
              : e;
          },
        );
        const axes = imageAxes(read, v);
        const result = await segment(read.image, {
          ...segmentOptions(v),
          ...axes,
          model,
          onProgress: (p) => progress.update(p),
        });
        const { written: outputs, skipped } = await writeOutputs(path, result, {
          image: read.image,
          channelAxis: axes.channelAxis,
          diameter: v.diameter,
        }, v);
        const timings = { ...result.timings, total: performance.now() - started };
        progress.done(
          `${result.nMasks} masks` +
            (outputs.length
              ? `, wrote ${outputs.map((o) => basename(o)).join(", ")} in ${dirname(outputs[0])}`
              : ""),
        );
        for (const s of skipped) progress.note(`  skipped ${s}`);
        if (v.json) {
          const extra = skipped.length ? { skipped } : {};
          console.log(
            JSON.stringify({ path, nMasks: result.nMasks, outputs, timings, ...extra }),
          );
        }
      } catch (e) {
        failed++;
        progress.fail(describeError(e));
        if (v.json) {
          const code = e instanceof CellposeError ? e.code : "ERROR";
          console.log(JSON.stringify({ path, error: describeError(e), code }));
        }
        if (stop.signal.aborted) throw e; // Ctrl+C: no further images
      }
    }
  } finally {
    await model.dispose();
  }
  progress.note(
    failed
      ? `${failed} of ${files.length} images failed`
      : `done: ${files.length} image${files.length === 1 ? "" : "s"}`,
  );
  return failed ? EXIT.failed : EXIT.ok;
}

/** The `segment` command. */
export const segmentCommand: Command = {
  name: "segment",
  help,
  run,
};
