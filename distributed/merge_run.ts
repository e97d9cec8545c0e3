/**
 * The last step of a planned run: check that every block has a result made for this plan, merge
 * the blocks' summaries ({@link mergeBlocks}) and write the label outputs (TIFF strip by strip,
 * OME-Zarr labels chunk by chunk, in one pass) from the results' core tiles; then remove the
 * results unless asked to keep them.
 *
 * @example
 * ```ts ignore
 * import { readRunPlan } from "./run_plan.ts";
 * import { mergeRun } from "./merge_run.ts";
 * const r = await mergeRun(await readRunPlan("/shared/plan.json"));
 * console.log(r.nMasks, r.outputs);
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { allLabels, type LabelTarget, tiffLabels } from "../io/label_sink.ts";
import { zarrLabels } from "../io/zarr_labels.ts";
import { mergeBlocks } from "../pipeline/merge_labels.ts";
import { writeMergedLabels } from "../pipeline/assemble.ts";
import {
  blockResultPath,
  readBlockHeader,
  readBlockSummary,
  resultCoreReader,
} from "./block_results.ts";
import { blockPlanOf, type RunOutput, type RunPlan } from "./run_plan.ts";

/** What {@link mergeRun} wrote. */
export interface MergeRunResult {
  /** masks in the merged labels */
  nMasks: number;
  /** the files and folders written */
  outputs: string[];
  /** milliseconds: read summaries, merge, write */
  timings: Record<string, number>;
}

/** The label target of one planned output. */
export function outputTarget(out: RunOutput): LabelTarget {
  return out.kind === "tiff"
    ? tiffLabels(out.path, { compression: out.compression })
    : zarrLabels(out.image, { name: out.name });
}

/** Ranges of sorted ids: [0, 1, 2, 5] -> "0-2, 5". */
function ranges(ids: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ids.length;) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    parts.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

/**
 * Checks that every block of `plan` has a result made for this plan. Throws BAD_FILE naming the
 * missing blocks, or, for results made by another plan, both plans' images.
 */
export async function checkResults(plan: RunPlan): Promise<void> {
  const missing: number[] = [];
  const foreign = new Map<string, { image: string; ids: number[] }>();
  for (let id = 0; id < plan.blocks.count; id++) {
    const h = await readBlockHeader(plan.workDir, id);
    if (!h) missing.push(id);
    else if (h.planId !== plan.id) {
      const f = foreign.get(h.planId) ?? { image: h.image, ids: [] };
      f.ids.push(id);
      foreign.set(h.planId, f);
    }
  }
  if (foreign.size) {
    const [[otherId, other]] = [...foreign];
    throw new CellposeError(
      "BAD_FILE",
      `results of blocks ${
        ranges(other.ids)
      } in ${plan.workDir} were made by plan ${otherId} for ` +
        `${other.image}, but this plan (${plan.id}) is for ${plan.image.path}: run its blocks ` +
        "again (`cellpose block`), or give each plan its own work folder",
      other.image,
    );
  }
  if (missing.length) {
    throw new CellposeError(
      "BAD_FILE",
      `${missing.length} of ${plan.blocks.count} blocks have no result in ${plan.workDir} yet: ` +
        `${ranges(missing)} (run \`cellpose block PLAN --index ${missing[0]}\` for each)`,
      missing,
    );
  }
}

/**
 * Merges a finished run and writes its outputs (see the module doc). Errors as
 * {@link checkResults}; the outputs are not touched unless every result is there.
 */
export async function mergeRun(
  plan: RunPlan,
  options: { keepBlocks?: boolean } = {},
): Promise<MergeRunResult> {
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = now - t;
    t = now;
  };
  await checkResults(plan);
  const layout = blockPlanOf(plan);
  const summaries = [];
  for (let id = 0; id < plan.blocks.count; id++) {
    summaries.push(await readBlockSummary(plan.workDir, id));
  }
  lap("read");
  const merged = mergeBlocks(layout, summaries);
  summaries.length = 0;
  lap("merge");
  const target = allLabels(plan.outputs.map(outputTarget));
  const outputs: string[] = [];
  await writeMergedLabels(layout, merged, resultCoreReader(plan.workDir), async (type, w, h) => {
    const sink = await target(type, w, h);
    outputs.push(...sink.paths);
    return sink;
  });
  lap("write");
  if (!options.keepBlocks) {
    for (let id = 0; id < plan.blocks.count; id++) {
      await Deno.remove(blockResultPath(plan.workDir, id)).catch(() => {});
    }
    // the folder goes when nothing else is in it
    await Deno.remove(plan.workDir).catch(() => {});
  }
  return { nMasks: merged.nMasks, outputs, timings };
}
