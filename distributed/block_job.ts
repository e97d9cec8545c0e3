/**
 * One block of a planned run, as a SLURM array task or a Redis worker runs it: open the plan's
 * image (checked to be the image planned), segment block `id` exactly as `segmentLarge` would
 * (same options, the plan's whole-image normalisation) and store its result in the work folder.
 * A block whose result for this plan is already there is not computed again (unless `force`).
 *
 * @example
 * ```ts ignore
 * import { readRunPlan } from "./run_plan.ts";
 * import { runPlannedBlock } from "./block_job.ts";
 * import { loadModel } from "../models/load.ts";
 * const plan = await readRunPlan("/shared/plan.json");
 * const model = await loadModel(plan.model);
 * const r = await runPlannedBlock(plan, Number(Deno.env.get("SLURM_ARRAY_TASK_ID")), model);
 * console.log(r.skipped, r.ms, r.path);
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NetRunner } from "../core/types.ts";
import type { OpenSource } from "../io/image_source.ts";
import { segmentBlock } from "../pipeline/segment_large.ts";
import { blockResultPath, readBlockHeader, writeBlockResult } from "./block_results.ts";
import { blockPlanOf, openPlannedImage, type RunPlan } from "./run_plan.ts";

/** Options of {@link runPlannedBlock}. */
export interface PlannedBlockOptions {
  /** the plan's image, already opened with `openPlannedImage` (else opened and closed here) */
  source?: OpenSource;
  /** recorded in the result, e.g. "node12-4711" */
  worker?: string;
  /** compute even when a result for this plan exists */
  force?: boolean;
  /** cancels the block (checked between tiles) */
  signal?: AbortSignal;
}

/** What {@link runPlannedBlock} did. */
export interface PlannedBlockResult {
  /** a result for this plan was already there */
  skipped: boolean;
  /** milliseconds spent (0 when skipped) */
  ms: number;
  /** masks found in the block's region (core plus halo) */
  nLabels: number;
  /** the result file */
  path: string;
}

/**
 * Runs block `id` of `plan` with `model` (see the module doc). Throws BAD_PARAMETER for an id
 * outside the plan, BAD_FILE when the image is not the one planned, CANCELLED on `signal`.
 */
export async function runPlannedBlock(
  plan: RunPlan,
  id: number,
  model: NetRunner,
  options: PlannedBlockOptions = {},
): Promise<PlannedBlockResult> {
  if (!Number.isInteger(id) || id < 0 || id >= plan.blocks.count) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `block index must be an integer in [0, ${plan.blocks.count}) for this plan, got ${id}`,
      id,
    );
  }
  const path = blockResultPath(plan.workDir, id);
  if (!options.force) {
    const done = await readBlockHeader(plan.workDir, id).catch(() => undefined);
    if (done?.planId === plan.id) return { skipped: true, ms: 0, nLabels: done.nLabels ?? 0, path };
  }
  const t0 = performance.now();
  const source = options.source ?? await openPlannedImage(plan);
  try {
    const out = await segmentBlock(source, blockPlanOf(plan), id, {
      ...plan.options,
      model,
      signal: options.signal,
    });
    const ms = Math.round(performance.now() - t0);
    await writeBlockResult(plan.workDir, {
      planId: plan.id,
      image: plan.image.path,
      block: id,
      worker: options.worker,
      ms,
    }, out);
    return { skipped: false, ms, nLabels: out.summary.nLabels, path };
  } finally {
    if (!options.source) await source.close();
  }
}
