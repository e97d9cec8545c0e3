/**
 * Segmentation of 2-D images larger than memory: the image (a TIFF or OME-Zarr path, read
 * lazily, or any {@link ImageSource}) is cut into blocks with overlapping halos (blocks.ts); each
 * block goes through the normal {@link segment} path (network and dynamics) on its core plus
 * halo; the blocks' labels are merged from their border summaries (merge_labels.ts) and the label
 * image is written strip by strip as a TIFF, or to any {@link LabelTarget} (uint16, or uint32
 * past 65535 masks). Core tiles wait in a temporary folder between the block pass and the write
 * pass, so memory is bounded by the block size (plus the summaries, a thin frame per block), not
 * by the image size.
 *
 * Normalisation is the whole image's, as in a single pass: one pass over the blocks collects each
 * channel's range and cellpose's strided percentile sample (all pixels up to 224^3), and every
 * block is normalised with the resulting fixed `lowhigh`.
 *
 * @example
 * ```ts
 * import { segmentLarge } from "./segment_large.ts";
 * import { loadModel } from "../models/load.ts";
 * const model = await loadModel("cpsam", { device: "webgpu" });
 * const r = await segmentLarge("/data/slide.tif", "/data/slide_masks.tif", { model, diameter: 30 });
 * console.log(r.nMasks, r.blocks, r.timings);
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { badParameter, checkCancelled } from "../core/check.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { ImageSource, NormalizeOptions, Progress } from "../core/types.ts";
import { openImageSource } from "../io/image_source.ts";
import { type LabelTarget, tiffLabels } from "../io/label_sink.ts";
import { writeAll } from "../core/fs.ts";
import { type Block, type BlockOptions, type BlockPlan, planBlocks } from "./blocks.ts";
import {
  applyMerge,
  type BlockOutput,
  blockOutput,
  mergeBlocks,
  type MergeResult,
} from "./merge_labels.ts";
import { checkFinite, MIN_RANGE, sampleStrides } from "./normalize.ts";
import { percentiles } from "../core/percentile.ts";
import { segment, type SegmentWithModel } from "./segment.ts";

const f32 = Math.fround;

/** Options of {@link segmentLarge}: {@link SegmentWithModel} plus the block layout. */
export type SegmentLargeOptions = SegmentWithModel & BlockOptions & {
  /** ["none"] compression of the label TIFF */
  compression?: "none" | "deflate";
  /** folder for the temporary core tiles (default: the system's temporary folder) */
  tempDir?: string;
};

/** What {@link segmentLarge} returns (the labels are in the output file). */
export interface SegmentLargeResult {
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
 * The normalisation a single pass over the whole image would use, as fixed per-block options:
 * `lowhigh` per channel (cellpose's percentiles of the whole image, with its subsampling rule)
 * and the channels to zero (constant in the image, or with a percentile range <= 1e-3). One read
 * pass over the blocks' cores. `normalize: false` and given `lowhigh` pass through unchanged;
 * `tileNormBlocksize` is refused (BAD_PARAMETER): it is not a whole-image normalisation.
 *
 * @example
 * ```ts
 * import { arraySource, imageNormalization } from "./segment_large.ts";
 * import { planBlocks } from "./blocks.ts";
 * const data = Uint8Array.from({ length: 100 * 80 }, (_, i) => i % 200);
 * const source = arraySource({ data, shape: [100, 80] });
 * const n = await imageNormalization(source, planBlocks(100, 80, { blockSize: 32 }), {});
 * console.log(n.normalize); // { lowhigh: [[1.99, 197.01], [0, 1], [0, 1]], invert: false }
 * ```
 */
export async function imageNormalization(
  source: ImageSource,
  plan: BlockPlan,
  options: { normalize?: boolean | NormalizeOptions; invert?: boolean },
): Promise<{ normalize: false | NormalizeOptions; zeroChannels: number[] }> {
  if (options.normalize === false) return { normalize: false, zeroChannels: [] };
  const given: NormalizeOptions = typeof options.normalize === "object" ? options.normalize : {};
  if ((given.tileNormBlocksize ?? 0) > 0) {
    throw badParameter(
      "normalize.tileNormBlocksize",
      "0 for segmentLarge (tile normalisation is per block)",
      given,
    );
  }
  const invert = given.invert ?? options.invert ?? false;
  if (given.lowhigh !== undefined) {
    return { normalize: { lowhigh: given.lowhigh, invert }, zeroChannels: [] };
  }
  const q = given.percentile ?? [1, 99];
  const { height: h, width: w } = source;
  const nc = Math.min(3, source.channels);
  const [, sy, sx] = sampleStrides(1, h, w);
  const cy = Math.ceil(h / sy), cx = Math.ceil(w / sx);
  const samples = Array.from({ length: nc }, () => new Float32Array(cy * cx));
  const mn = new Array<number>(nc).fill(Infinity), mx = new Array<number>(nc).fill(-Infinity);
  for (const b of plan.blocks) {
    const r = b.core;
    const region = await source.read(r);
    checkFinite(region.data);
    const rw = r.x1 - r.x0, sc = source.channels;
    for (let y = r.y0; y < r.y1; y++) {
      for (let x = r.x0; x < r.x1; x++) {
        const p = ((y - r.y0) * rw + x - r.x0) * sc;
        const onGrid = y % sy === 0 && x % sx === 0;
        for (let c = 0; c < nc; c++) {
          const v = f32(region.data[p + c]);
          if (v < mn[c]) mn[c] = v;
          if (v > mx[c]) mx[c] = v;
          if (onGrid) samples[c][(y / sy) * cx + x / sx] = v;
        }
      }
    }
  }
  // constant channels (and the empty ones of a 1- or 2-channel image) end as 0 after inversion
  const empty: [number, number] = invert ? [1, 0] : [0, 1];
  const lowhigh: [number, number][] = [];
  const zeroChannels: number[] = [];
  for (let c = 0; c < 3; c++) {
    if (c >= nc || !(mx[c] > mn[c])) {
      lowhigh.push(empty);
      zeroChannels.push(c);
      continue;
    }
    const [lo, hi] = percentiles(samples[c], q);
    if (f32(hi - lo) > MIN_RANGE) lowhigh.push([lo, hi]);
    else {
      // the reference sets such a channel to 0 and still inverts it
      lowhigh.push([0, 1]);
      zeroChannels.push(c);
    }
  }
  return { normalize: { lowhigh, invert }, zeroChannels: zeroChannels.filter((c) => c < nc) };
}

/**
 * One block job: reads block `id`'s region from `source`, segments it with {@link segment}
 * (`options` as for a whole image, with the image's normalisation from
 * {@link imageNormalization}; the dynamics follow the whole image's coordinates, through a
 * `frame`, and `maxSizeFraction` refers to the whole image) and returns its core tile and
 * summary for the merge. Independent of every other block: this is
 * what a worker runs.
 *
 * @example
 * ```ts
 * import { imageNormalization, segmentBlock } from "./segment_large.ts";
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

/** Options of {@link assembleBlocks}. */
export interface AssembleOptions {
  /** ["none"] compression of the label TIFF */
  compression?: "none" | "deflate";
  /** folder for the temporary core tiles */
  tempDir?: string;
  /** called after each block */
  onProgress?: (p: Progress) => void;
  /** checked between blocks */
  signal?: AbortSignal;
}

/** Reads exactly `out.length` bytes at `offset`. */
async function readAt(file: Deno.FsFile, offset: number, out: Uint8Array): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  for (let at = 0; at < out.length;) {
    const n = await file.read(out.subarray(at));
    if (n === null) throw new CellposeError("BAD_FILE", `temporary tile ended early`, offset);
    at += n;
  }
}

/**
 * The block machinery without the network: runs `job` on every block of `plan` (in order),
 * spills the core tiles to a temporary folder, merges the summaries and writes the label TIFF
 * strip by strip to `output` (a path; or any {@link LabelTarget}, e.g. an OME-Zarr labels group).
 * {@link segmentLarge} passes a job that runs {@link segmentBlock};
 * a job may as well compute masks from given flows, or fetch results of remote workers.
 *
 * @example
 * ```ts
 * import { assembleBlocks } from "./segment_large.ts";
 * import { blockOutput } from "./merge_labels.ts";
 * import { planBlocks } from "./blocks.ts";
 * const plan = planBlocks(300, 300, { blockSize: 128, halo: 16 });
 * // a 20 x 20 square across the first core border (x 118..138): every block sees its part
 * const r = await assembleBlocks(plan, (b) => {
 *   const w = b.x1 - b.x0, h = b.y1 - b.y0, region = new Uint32Array(w * h);
 *   for (let y = Math.max(b.y0, 100); y < Math.min(b.y1, 120); y++) {
 *     for (let x = Math.max(b.x0, 118); x < Math.min(b.x1, 138); x++) region[(y - b.y0) * w + x - b.x0] = 1;
 *   }
 *   return Promise.resolve(blockOutput({ data: region, shape: [h, w] }, b, plan));
 * }, "/tmp/one.tif");
 * console.log(r.nMasks); // 1
 * ```
 */
export async function assembleBlocks(
  plan: BlockPlan,
  job: (block: Block) => Promise<BlockOutput>,
  output: string | LabelTarget,
  options: AssembleOptions = {},
): Promise<{ nMasks: number; timings: Record<string, number> }> {
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = now - t;
    t = now;
  };
  const dir = await Deno.makeTempDir({ dir: options.tempDir, prefix: "cellpose_blocks_" });
  const tile = (id: number) => `${dir}/core-${id}.u32`;
  try {
    const summaries = [];
    for (const b of plan.blocks) {
      checkCancelled(options.signal);
      const out = await job(b);
      const bytes = new Uint8Array(
        out.core.data.buffer,
        out.core.data.byteOffset,
        out.core.data.byteLength,
      );
      using f = await Deno.open(tile(b.id), { write: true, create: true, truncate: true });
      await writeAll(f, bytes);
      summaries.push(out.summary);
      options.onProgress?.({
        stage: "network",
        fraction: (b.id + 1) / plan.blocks.length,
        blocksDone: b.id + 1,
        blocksTotal: plan.blocks.length,
      });
    }
    lap("blocks");
    const merged = mergeBlocks(plan, summaries);
    summaries.length = 0;
    lap("merge");
    const target = typeof output === "string"
      ? tiffLabels(output, { compression: options.compression })
      : output;
    await writeMergedLabels(plan, merged, async (b, r0, rows) => {
      const cw = b.core.x1 - b.core.x0, local = new Uint32Array(rows * cw);
      using f = await Deno.open(tile(b.id));
      await readAt(f, r0 * cw * 4, new Uint8Array(local.buffer));
      return local;
    }, target);
    lap("write");
    return { nMasks: merged.nMasks, timings };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Reads `rows` rows of a block's core tile (local labels) from core row `row0` on. */
export type CoreReader = (block: Block, row0: number, rows: number) => Promise<Uint32Array>;

/**
 * Writes the merged label image to `target` row band by row band (about 4 M pixels a band):
 * each block's core rows come from `readCore` and are relabelled by the merge
 * ({@link applyMerge}). The pixel type is uint16, or uint32 past 65535 masks. On failure the
 * target is aborted (no partial file is left).
 *
 * @example
 * ```ts
 * import { writeMergedLabels } from "./segment_large.ts";
 * import { blockOutput, mergeBlocks } from "./merge_labels.ts";
 * import { planBlocks } from "./blocks.ts";
 * import { tiffLabels } from "../io/label_sink.ts";
 * const plan = planBlocks(2, 4, { blockSize: 2, halo: 0 });
 * const outs = plan.blocks.map((b) => blockOutput({ data: new Uint8Array(4).fill(1), shape: [2, 2] }, b, plan));
 * const merged = mergeBlocks(plan, outs.map((o) => o.summary));
 * await writeMergedLabels(plan, merged, (b, r0, n) => Promise.resolve(outs[b.id].core.data.slice(r0 * 2, (r0 + n) * 2)), tiffLabels("/tmp/two.tif"));
 * ```
 */
export async function writeMergedLabels(
  plan: BlockPlan,
  merged: MergeResult,
  readCore: CoreReader,
  target: LabelTarget,
): Promise<void> {
  const type = merged.nMasks > 65535 ? Uint32Array : Uint16Array;
  const sink = await target(type, plan.width, plan.height);
  try {
    const band = Math.max(1, Math.floor((1 << 22) / plan.width)); // rows per write, ~4 M pixels
    for (let row = 0; row < plan.rows; row++) {
      const blocks = plan.blocks.slice(row * plan.cols, (row + 1) * plan.cols);
      const { y0, y1 } = blocks[0].core;
      for (let r0 = 0; r0 < y1 - y0; r0 += band) {
        const rows = Math.min(band, y1 - y0 - r0);
        const out = new type(rows * plan.width);
        for (const b of blocks) {
          const cw = b.core.x1 - b.core.x0;
          const local = await readCore(b, r0, rows);
          const mapped = new type(rows * cw);
          applyMerge(local, r0, cw, merged.tables[b.id], merged.paints[b.id], mapped);
          for (let y = 0; y < rows; y++) {
            out.set(mapped.subarray(y * cw, (y + 1) * cw), y * plan.width + b.core.x0);
          }
        }
        await sink.write(out);
      }
    }
    await sink.close();
  } catch (e) {
    await sink.abort();
    throw e;
  }
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
 * ```ts
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

/**
 * An {@link ImageSource} over an image held in memory, row-major [H, W] or channel-last
 * [H, W, C]: regions are copied out of it. Throws BAD_SHAPE for other shapes.
 *
 * @example
 * ```ts
 * import { arraySource } from "./segment_large.ts";
 * const src = arraySource({ data: Uint8Array.from({ length: 12 }, (_, i) => i), shape: [3, 4] });
 * const r = await src.read({ y0: 1, x0: 1, y1: 3, x1: 3 });
 * console.log(r.shape, r.data); // [2, 2] Uint8Array [5, 6, 9, 10]
 * ```
 */
export function arraySource(image: NdArray<NumericArray>): ImageSource {
  const [h, w] = image.shape;
  const c = image.shape.length === 3 ? image.shape[2] : 1;
  if (image.shape.length < 2 || image.shape.length > 3 || image.data.length !== h * w * c) {
    throw new CellposeError(
      "BAD_SHAPE",
      `an image source needs [H, W] or [H, W, C] data, got [${image.shape}]`,
      image.shape,
    );
  }
  return {
    height: h,
    width: w,
    channels: c,
    read(r) {
      const rw = r.x1 - r.x0, rh = r.y1 - r.y0;
      const out = new (image.data.constructor as { new (n: number): NumericArray })(rh * rw * c);
      for (let y = 0; y < rh; y++) {
        const from = ((y + r.y0) * w + r.x0) * c;
        out.set(image.data.subarray(from, from + rw * c), y * rw * c);
      }
      return Promise.resolve({ data: out, shape: c === 1 ? [rh, rw] : [rh, rw, c] });
    },
  };
}
