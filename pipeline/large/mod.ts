/**
 * The block-wise internals of large-image segmentation, for those who run blocks themselves
 * (a job scheduler, another coordinator): the block plan, one block's segmentation with the
 * whole image's normalisation, per-block summaries and the label merge, and assembling blocks
 * into one label image. `segmentLarge` (in the library's `mod.ts`) does all of it in one call.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { planBlocks } from "./mod.ts";
 * const { blocks } = planBlocks(100, 300, { blockSize: 128, halo: 16 });
 * assertEquals(blocks.map((b) => [b.core.x0, b.core.x1, b.x0, b.x1]), [
 *   [0, 128, 0, 144],
 *   [128, 256, 112, 272],
 *   [256, 300, 240, 300],
 * ]);
 * ```
 * @module
 */
export {
  type Block,
  type BlockOptions,
  type BlockPlan,
  neighbours,
  planBlocks,
  type Rect,
} from "../blocks.ts";
export {
  applyMerge,
  type BlockOutput,
  blockOutput,
  type BlockSummary,
  decodeSummary,
  encodeSummary,
  mergeBlocks,
  type MergeOptions,
  type MergeResult,
  summarizeBlock,
} from "../merge_labels.ts";
export {
  assembleBlocks,
  type AssembleOptions,
  type CoreReader,
  writeMergedLabels,
} from "../assemble.ts";
export { imageNormalization } from "../normalize.ts";
export { type BlockJobOptions, segmentBlock } from "../segment_large.ts";
export { type TileSpill, tileSpill } from "../../io/tile_spill.ts";
