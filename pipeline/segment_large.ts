/**
 * Segmentation of 2-D images larger than memory: the image (a TIFF or OME-Zarr path, read
 * lazily, or any {@link ImageSource}) is cut into blocks with overlapping halos (blocks.ts); each
 * block goes through the normal {@link segment} path (network and dynamics) on its core plus
 * halo; the blocks' labels are merged from their border summaries (merge_labels.ts) and the label
 * image is written strip by strip as a TIFF, or to any {@link LabelTarget} (uint16, or uint32
 * past 65535 masks) by `assemble.ts`. Core tiles wait in a temporary folder between the block
 * pass and the write pass, so memory is bounded by the block size (plus the summaries, a thin frame per block), not
 * by the image size.
 *
 * Normalisation is the whole image's, as in a single pass: one pass over the blocks collects each
 * channel's range and cellpose's strided percentile sample (all pixels up to 224^3), and every
 * block is normalised with the resulting fixed `lowhigh` (`imageNormalization` in `normalize.ts`).
 *
 * @example
 * ```ts ignore
 * import { segmentLarge } from "./segment_large.ts";
 * import { loadModel } from "../models/load.ts";
 * const model = await loadModel("cpsam", { device: "webgpu" });
 * const r = await segmentLarge("/data/slide.tif", "/data/slide_masks.tif", { model, diameter: 30 });
 * console.log(r.nMasks, r.blocks, r.timings);
 * ```
 * @module
 */
import { badParameter } from "../core/check.ts";
import type { NumericArray } from "../core/ndarray.ts";
import type { ImageSource, Progress } from "../core/types.ts";
import { openImageSource } from "../io/image_source.ts";
import type { LabelTarget } from "../io/label_sink.ts";
import { assembleBlocks } from "./assemble.ts";
import { type BlockOptions, type BlockPlan, planBlocks } from "./blocks.ts";
import { type BlockOutput, blockOutput } from "./merge_labels.ts";
import { imageNormalization } from "./normalize.ts";
import { segment, type SegmentWithModel } from "./segment.ts";

/** Options of {@link segmentLarge}: {@link SegmentWithModel} plus the block layout. */
export type SegmentLargeOptions = SegmentWithModel & BlockOptions & {
  /** ["none"] compression of the label TIFF */
  compression?: "none" | "deflate";
  /** folder for the temporary core tiles (default: the system's temporary folder) */
  tempDir?: string;
};

/** What {@link segmentLarge} returns (the labels are in the output file). */
export interface SegmentLargeResult {
  /** masks in the label image */
  nMasks: number;
  /** number of blocks */
  blocks: number;
  /** milliseconds per stage: normalize, blocks, merge, write, total */
  timings: Record<string, number>;
}

/** Options of one block job: the segmentation options with the image's fixed normalisation. */
export type BlockJobOptions = SegmentWithModel & {
  /** channels (of the 3 the network sees) set to 0 before normalising, see {@link imageNormalization} */
  zeroChannels?: number[];
};

/**
 * One block job: reads block `id`'s region from `source`, segments it with {@link segment}
 * (`options` as for a whole image, with the image's normalisation from
 * {@link imageNormalization}; the dynamics follow the whole image's coordinates, through a
 * `frame`, and `maxSizeFraction` refers to the whole image) and returns its core tile and
 * summary for the merge. Independent of every other block: this is
 * what a worker runs.
 *
 * @example
 * ```ts ignore
 * import { segmentBlock } from "./segment_large.ts";
 * import { imageNormalization } from "./normalize.ts";
 * import { planBlocks } from "./blocks.ts";
 * import { openTiff } from "../io/tiff_lazy.ts";
 * import { loadModel } from "../models/load.ts";
 * const source = await openTiff("/data/slide.tif");
 * const plan = planBlocks(source.height, source.width);
 * const model = await loadModel("cpsam");
 * const norm = await imageNormalization(source, plan, {});
 * const out = await segmentBlock(source, plan, 7, { model, ...norm });
 * console.log(out.core.shape, out.summary.nLabels);
 * ```
 */
export async function segmentBlock(
  source: ImageSource,
  plan: BlockPlan,
  id: number,
  options: BlockJobOptions,
): Promise<BlockOutput> {
  const block = plan.blocks[id];
  if (!block) throw badParameter("block id", `in [0, ${plan.blocks.length})`, id);
  const region = await source.read(block);
  const nc = region.shape.length === 3 ? region.shape[2] : 1;
  if (options.zeroChannels?.length) {
    region.data = region.data.slice() as NumericArray;
    for (const c of options.zeroChannels) {
      for (let p = c; p < region.data.length; p += nc) region.data[p] = 0;
    }
  }
  const { zeroChannels: _, ...segOptions } = options;
  const r = await segment(region, {
    ...segOptions,
    channelAxis: nc > 1 ? 2 : undefined,
    frame: { origin: [block.y0, block.x0], fullShape: [plan.height, plan.width] },
  });
  return blockOutput(r.masks, block, plan);
}

/**
 * Segments a large 2-D image block by block and writes its label TIFF to `output` (see the module
 * doc), or to any {@link LabelTarget} (e.g. `zarrLabels` for an OME-Zarr labels group). `input`
 * is a TIFF or OME-Zarr path (full-resolution level, read lazily, see `openImageSource`) or an
 * {@link ImageSource}; options are
 * those of {@link segment} (2-D only: no `zAxis`, `do3D` or `stitchThreshold`; `channelAxis` is
 * not used, sources are channel-last) plus `blockSize` [2048] and `halo` [128] (make the halo
 * larger than the largest cell, in image pixels).
 *
 * Rejects with BAD_PARAMETER for stack options or a bad block layout, BAD_FILE for an unreadable
 * TIFF, CANCELLED when `signal` aborts (checked between blocks).
 *
 * @example
 * ```ts ignore
 * import { segmentLarge } from "./segment_large.ts";
 * import { loadModel } from "../models/load.ts";
 * const model = await loadModel("/models/tiny-cpsam.pt", { device: "cpu" });
 * const r = await segmentLarge("/data/big.tif", "/data/big_masks.tif", {
 *   model,
 *   blockSize: 1024,
 *   halo: 96,
 *   onProgress: (p) => console.log(p.fraction),
 * });
 * console.log(r); // { nMasks, blocks, timings }
 * ```
 */
export async function segmentLarge(
  input: string | ImageSource,
  output: string | LabelTarget,
  options: SegmentLargeOptions,
): Promise<SegmentLargeResult> {
  if (options.do3D || (options.stitchThreshold ?? 0) > 0 || options.zAxis !== undefined) {
    throw badParameter(
      "do3D, stitchThreshold and zAxis",
      "absent for segmentLarge (2-D images only)",
      {
        do3D: options.do3D,
        stitchThreshold: options.stitchThreshold,
        zAxis: options.zAxis,
      },
    );
  }
  const t0 = performance.now();
  const opened = typeof input === "string" ? await openImageSource(input) : undefined;
  const source = opened ?? (input as ImageSource);
  try {
    const plan = planBlocks(source.height, source.width, options);
    const norm = await imageNormalization(source, plan, options);
    const tNorm = performance.now() - t0;
    const { blockSize: _b, halo: _h, compression, tempDir, onProgress, signal, ...seg } = options;
    const blocksTotal = plan.blocks.length;
    // per tile: the block's tiles, and the fraction over all blocks
    const tileProgress = (id: number) => (p: Progress) =>
      p.stage !== "done" && onProgress?.({
        ...p,
        blocksDone: id,
        blocksTotal,
        fraction: (id + (p.tilesTotal ? (p.tilesDone ?? 0) / p.tilesTotal : 0)) / blocksTotal,
      });
    const r = await assembleBlocks(
      plan,
      (b) =>
        segmentBlock(source, plan, b.id, {
          ...seg,
          signal,
          ...norm,
          onProgress: onProgress && tileProgress(b.id),
        }),
      output,
      { compression, tempDir, onProgress, signal },
    );
    onProgress?.({ stage: "done", fraction: 1 });
    return {
      nMasks: r.nMasks,
      blocks: plan.blocks.length,
      timings: { normalize: tNorm, ...r.timings, total: performance.now() - t0 },
    };
  } finally {
    await opened?.close();
  }
}
