/**
 * The block machinery of large images without the network: runs a job on every block, spills the
 * core tiles (`io/tile_spill.ts`), merges the blocks' summaries (`merge_labels.ts`) and writes
 * the merged label image band by band to a label target (`io/label_sink.ts`). `segmentLarge`
 * runs it with a job that segments each block; the distributed merge writes with
 * {@link writeMergedLabels} from block results on disk.
 * @module
 */
import { checkCancelled } from "../core/check.ts";
import type { Progress } from "../core/types.ts";
import { type LabelTarget, tiffLabels } from "../io/label_sink.ts";
import { tileSpill } from "../io/tile_spill.ts";
import type { Block, BlockPlan } from "./blocks.ts";
import { applyMerge, type BlockOutput, mergeBlocks, type MergeResult } from "./merge_labels.ts";

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

/**
 * The block machinery without the network: runs `job` on every block of `plan` (in order),
 * spills the core tiles to a temporary folder (`io/tile_spill.ts`), merges the summaries and writes the label TIFF
 * strip by strip to `output` (a path; or any {@link LabelTarget}, e.g. an OME-Zarr labels group).
 * {@link segmentLarge} passes a job that runs {@link segmentBlock};
 * a job may as well compute masks from given flows, or fetch results of remote workers.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { assembleBlocks } from "./assemble.ts";
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
 * }, await Deno.makeTempFile({ suffix: ".tif" }));
 * assertEquals(r.nMasks, 1);
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
  await using tiles = await tileSpill(options.tempDir);
  {
    const summaries = [];
    for (const b of plan.blocks) {
      checkCancelled(options.signal);
      const out = await job(b);
      await tiles.put(b.id, out.core.data);
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
    await writeMergedLabels(
      plan,
      merged,
      (b, r0, rows) => tiles.rows(b.id, r0, rows, b.core.x1 - b.core.x0),
      target,
    );
    lap("write");
    return { nMasks: merged.nMasks, timings };
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
 * import { assertEquals } from "@std/assert";
 * import { writeMergedLabels } from "./assemble.ts";
 * import { blockOutput, mergeBlocks } from "./merge_labels.ts";
 * import { planBlocks } from "./blocks.ts";
 * import { tiffLabels } from "../io/label_sink.ts";
 * import { readTiff } from "../io/tiff_read.ts";
 * const plan = planBlocks(2, 4, { blockSize: 2, halo: 0 });
 * const outs = plan.blocks.map((b) => blockOutput({ data: new Uint8Array(4).fill(1), shape: [2, 2] }, b, plan));
 * const merged = mergeBlocks(plan, outs.map((o) => o.summary));
 * const path = await Deno.makeTempFile({ suffix: ".tif" });
 * await writeMergedLabels(plan, merged, (b, r0, n) => Promise.resolve(outs[b.id].core.data.slice(r0 * 2, (r0 + n) * 2)), tiffLabels(path));
 * assertEquals((await readTiff(await Deno.readFile(path), path)).image.data, new Uint16Array([1, 1, 2, 2, 1, 1, 2, 2]));
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
