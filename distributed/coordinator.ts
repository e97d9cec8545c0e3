/**
 * The coordinating side of a Redis run (`cellpose segment IMAGE --distributed redis://...`):
 * publishes the plan, enqueues one job per block that has no result yet on the queue's stream,
 * follows the run's done stream for progress until every block is in, then merges and writes the
 * labels ({@link mergeRun}). Whatever happens (done, a failed block, cancelled), the run's keys
 * and its jobs still queued are removed, so workers skip what is left of it.
 *
 * @example
 * ```ts ignore
 * import { createRunPlan } from "./run_plan.ts";
 * import { runOnRedis } from "./coordinator.ts";
 * const plan = await createRunPlan("/shared/slide.tif", {
 *   workDir: "/shared/slide_blocks",
 *   outputs: [{ kind: "tiff", path: "/shared/slide_cp_masks.tif" }],
 * });
 * const r = await runOnRedis("redis://10.0.0.5:6379", plan, {
 *   onProgress: (p) => console.error(`${p.done}/${p.total} blocks, ${p.workers} workers`),
 * });
 * console.log(r.nMasks, r.outputs, r.workers);
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { checkCancelled } from "../core/check.ts";
import { readBlockHeader } from "./block_results.ts";
import { mergeRun, type MergeRunResult } from "./merge_run.ts";
import { connectRedis, ensureGroup, queueKeys, type Redis } from "./redis.ts";
import type { RunPlan } from "./run_plan.ts";

/** Progress of a Redis run. */
export interface RunProgress {
  /** blocks with a result */
  done: number;
  /** blocks in the plan */
  total: number;
  /** workers seen reading the queue in the last 10 s */
  workers: number;
  /** the block just finished, and by whom */
  block?: number;
  /** the worker that finished it */
  worker?: string;
}

/** Options of {@link runOnRedis}. */
export interface CoordinatorOptions {
  /** ["cellpose"] queue name (key prefix), the workers' --queue */
  queue?: string;
  /** called after every block result */
  onProgress?: (p: RunProgress) => void;
  /** cancels the run (its jobs are withdrawn) */
  signal?: AbortSignal;
  /** keep the block results after the merge */
  keepBlocks?: boolean;
  /** [5000] connection timeout */
  timeoutMs?: number;
}

/** What {@link runOnRedis} returns. */
export interface RedisRunResult extends MergeRunResult {
  /** blocks in the plan */
  blocks: number;
  /** the workers that finished blocks, and how many each */
  workers: Record<string, number>;
}

/** Workers of the group that read the queue in the last 10 s. */
async function activeWorkers(redis: Redis, jobs: string, group: string): Promise<number> {
  try {
    const consumers = await redis.xInfoConsumers(jobs, group);
    return consumers.filter((c) => Number(c.idle) < 10000).length;
  } catch {
    return 0;
  }
}

/** Deletes the run's keys and its jobs still in the stream. */
async function withdraw(redis: Redis, plan: RunPlan, queue?: string): Promise<void> {
  const k = queueKeys(queue);
  await redis.del([k.run(plan.id), k.done(plan.id)]);
  let start = "-";
  for (;;) {
    const page = (await redis.xRange(k.jobs, start, "+", { COUNT: 1000 }) ?? [])
      .filter((m) => m !== null);
    const mine = page.filter((m) => m.message.run === plan.id).map((m) => m.id);
    if (mine.length) {
      await redis.multi().xAck(k.jobs, k.group, mine).xDel(k.jobs, mine).exec();
    }
    if (page.length < 1000) break;
    start = `(${page[page.length - 1].id}`;
  }
}

/**
 * Runs `plan` on the workers of the Redis at `url` (see the module doc). Throws BAD_PARAMETER when
 * Redis does not answer, BAD_FILE naming the block and worker when a block failed, CANCELLED on
 * `signal`, and what {@link mergeRun} throws.
 */
export async function runOnRedis(
  url: string,
  plan: RunPlan,
  options: CoordinatorOptions = {},
): Promise<RedisRunResult> {
  const k = queueKeys(options.queue);
  const redis = await connectRedis(url, options.timeoutMs);
  const total = plan.blocks.count;
  const done = new Set<number>();
  const byWorker: Record<string, number> = {};
  try {
    await ensureGroup(redis, options.queue);
    await redis.set(k.run(plan.id), JSON.stringify(plan));
    // blocks with a result for this plan (an earlier, interrupted run) are not queued again
    const todo: number[] = [];
    for (let id = 0; id < total; id++) {
      const h = await readBlockHeader(plan.workDir, id).catch(() => undefined);
      if (h?.planId === plan.id) done.add(id);
      else todo.push(id);
    }
    const add = redis.multi();
    for (const id of todo) add.xAdd(k.jobs, "*", { run: plan.id, block: String(id) });
    if (todo.length) await add.exec();
    let workers = await activeWorkers(redis, k.jobs, k.group);
    options.onProgress?.({ done: done.size, total, workers });
    let last = "0-0", checked = performance.now();
    while (done.size < total) {
      checkCancelled(options.signal, "the distributed run");
      const read = await redis.xRead({ key: k.done(plan.id), id: last }, {
        COUNT: 100,
        BLOCK: 1000,
      }) as { messages: { id: string; message: Record<string, string> }[] }[] | null;
      if (performance.now() - checked > 2000) {
        workers = await activeWorkers(redis, k.jobs, k.group);
        checked = performance.now();
        options.onProgress?.({ done: done.size, total, workers });
      }
      for (const m of read?.[0]?.messages ?? []) {
        last = m.id;
        const block = Number(m.message.block), worker = m.message.worker;
        if (m.message.error !== undefined) {
          throw new CellposeError(
            "BAD_FILE",
            `block ${block} failed on worker ${worker}: ${m.message.error}`,
            block,
          );
        }
        if (!done.has(block)) {
          done.add(block);
          byWorker[worker] = (byWorker[worker] ?? 0) + 1;
          options.onProgress?.({ done: done.size, total, workers, block, worker });
        }
      }
    }
    await withdraw(redis, plan, options.queue);
    const merged = await mergeRun(plan, { keepBlocks: options.keepBlocks });
    return { ...merged, blocks: total, workers: byWorker };
  } finally {
    await withdraw(redis, plan, options.queue).catch(() => {});
    redis.destroy();
  }
}
