/**
 * A Redis worker: takes block jobs from the queue's stream through its consumer group
 * (XREADGROUP), runs each with {@link runPlannedBlock} (result in the run's work folder), reports
 * it on the run's done stream, then acknowledges and deletes the job (XACK, XDEL), until stopped.
 *
 * Failures: while a block runs, the worker touches its job every `claimAfterMs / 3` (XCLAIM
 * JUSTID, which resets the job's idle time); a worker that dies stops touching it, and after
 * `claimAfterMs` any worker takes it over (XAUTOCLAIM, checked before reading new jobs). A job
 * delivered more than `maxAttempts` times (its workers kept dying) is reported failed. A worker
 * stopped by its signal cancels its block and puts the job back at once. Results are written
 * atomically and are the same whoever computes them, so a block done twice is harmless.
 *
 * @example
 * ```ts ignore
 * import { runWorker } from "./worker.ts";
 * import { loadModel } from "../models/load.ts";
 * const stop = new AbortController();
 * Deno.addSignalListener("SIGTERM", () => stop.abort());
 * await runWorker("redis://10.0.0.5:6379", {
 *   loadModel: (name) => loadModel(name, { device: "webgpu" }),
 *   signal: stop.signal,
 *   onEvent: (e) => console.error(e),
 * });
 * ```
 * @module
 */
import { hostname } from "node:os";
import { CellposeError } from "../core/errors.ts";
import type { NetRunner } from "../core/types.ts";
import type { OpenSource } from "../io/image_source.ts";
import { runPlannedBlock } from "./block_job.ts";
import { connectRedis, ensureGroup, queueKeys, type Redis } from "./redis.ts";
import { openPlannedImage, readRunPlan, type RunPlan } from "./run_plan.ts";

/** What a worker reports as it goes. */
export type WorkerEvent =
  | { type: "ready"; worker: string }
  | { type: "start"; run: string; block: number; claimed: boolean; image: string }
  | { type: "done"; run: string; block: number; ms: number; skipped: boolean }
  | { type: "failed"; run: string; block: number; message: string }
  | { type: "released"; run: string; block: number };

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  /** loads the network for a run's model name (called once per distinct name) */
  loadModel: (model: string) => Promise<NetRunner>;
  /** ["cellpose"] queue name (key prefix) */
  queue?: string;
  /** [host-pid-random] consumer name */
  name?: string;
  /** [60000] a job untouched this long is taken over from its (dead) worker */
  claimAfterMs?: number;
  /** [3] deliveries after which a job is reported failed */
  maxAttempts?: number;
  /** [5000] connection timeout */
  timeoutMs?: number;
  /** stops the worker: the running block is cancelled and its job put back */
  signal?: AbortSignal;
  /** called on every block started, finished or failed */
  onEvent?: (e: WorkerEvent) => void;
}

type Job = { id: string; message: Record<string, string> };

/**
 * Runs block jobs from the Redis at `url` until `signal` aborts (see the module doc); resolves to
 * the number of blocks done. Throws BAD_PARAMETER when Redis does not answer, and whatever
 * `loadModel` throws (the job is put back first, for another worker).
 */
export async function runWorker(url: string, options: WorkerOptions): Promise<{ blocks: number }> {
  const k = queueKeys(options.queue);
  const name = options.name ?? `${hostname()}-${Deno.pid}-${crypto.randomUUID().slice(0, 4)}`;
  const claimAfter = options.claimAfterMs ?? 60000;
  const maxAttempts = options.maxAttempts ?? 3;
  const signal = options.signal;
  const redis = await connectRedis(url, options.timeoutMs);
  const models = new Map<string, NetRunner>();
  let open: { plan: RunPlan; source: OpenSource } | undefined;
  let blocks = 0;
  try {
    await ensureGroup(redis, options.queue);
    options.onEvent?.({ type: "ready", worker: name });
    while (!signal?.aborted) {
      let job: Job | undefined;
      let claimed = false;
      const stale = await redis.xAutoClaim(k.jobs, k.group, name, claimAfter, "0-0", { COUNT: 1 });
      const got = stale.messages.find((m) => m !== null);
      if (got) {
        job = { id: got.id, message: got.message as Record<string, string> };
        claimed = true;
      } else {
        const read = await redis.xReadGroup(k.group, name, { key: k.jobs, id: ">" }, {
          COUNT: 1,
          BLOCK: 1000,
        }) as { messages: Job[] }[] | null;
        job = read?.[0]?.messages[0];
      }
      if (!job) continue;
      const done = await runJob(redis, job, claimed);
      if (done) blocks++;
    }
    return { blocks };
  } finally {
    await open?.source.close();
    for (const m of models.values()) await m.dispose();
    redis.destroy();
  }

  /** Acknowledges and deletes a job (it is finished, failed or moot). */
  async function finish(job: Job) {
    await redis.multi().xAck(k.jobs, k.group, job.id).xDel(k.jobs, job.id).exec();
  }

  /** Puts a job back at the end of the stream for another worker. */
  async function release(job: Job) {
    await redis.multi().xAdd(k.jobs, "*", job.message).xAck(k.jobs, k.group, job.id)
      .xDel(k.jobs, job.id).exec();
  }

  /** Runs one job; true when a block was done. */
  async function runJob(redis: Redis, job: Job, claimed: boolean): Promise<boolean> {
    const run = job.message.run, block = Number(job.message.block);
    const text = await redis.get(k.run(run));
    if (text === null) {
      // the run is over (or was cancelled): nothing to do
      await finish(job);
      return false;
    }
    const pending = await redis.xPendingRange(k.jobs, k.group, job.id, job.id, 1);
    const deliveries = pending[0]?.deliveriesCounter ?? 1;
    if (deliveries > maxAttempts) {
      const message = `block ${block} was taken ${deliveries - 1} times by workers that died ` +
        `or were killed before finishing it (the last of them before ${name})`;
      await redis.xAdd(k.done(run), "*", { block: String(block), worker: name, error: message });
      await finish(job);
      options.onEvent?.({ type: "failed", run, block, message });
      return false;
    }
    const plan = await readRunPlan(k.run(run), String(text));
    let model = models.get(plan.model);
    if (!model) {
      try {
        model = await options.loadModel(plan.model);
      } catch (e) {
        await release(job);
        throw e;
      }
      models.set(plan.model, model);
    }
    options.onEvent?.({ type: "start", run, block, claimed, image: plan.image.path });
    const stop = new AbortController();
    const onStop = () => stop.abort(signal?.reason);
    signal?.addEventListener("abort", onStop);
    const heartbeat = setInterval(() => {
      redis.xClaimJustId(k.jobs, k.group, name, 0, job.id).catch(() => {});
    }, Math.max(100, claimAfter / 3));
    try {
      if (open?.plan.id !== plan.id) {
        await open?.source.close();
        open = undefined;
        open = { plan, source: await openPlannedImage(plan) };
      }
      const r = await runPlannedBlock(plan, block, model, {
        source: open.source,
        worker: name,
        signal: stop.signal,
      });
      await redis.xAdd(k.done(run), "*", {
        block: String(block),
        worker: name,
        ms: String(r.ms),
        skipped: r.skipped ? "1" : "0",
      });
      await finish(job);
      options.onEvent?.({ type: "done", run, block, ms: r.ms, skipped: r.skipped });
      return true;
    } catch (e) {
      if (stop.signal.aborted) {
        await release(job);
        options.onEvent?.({ type: "released", run, block });
        return false;
      }
      const message = e instanceof CellposeError
        ? e.message
        : `${(e as Error).name}: ${(e as Error).message}`;
      await redis.xAdd(k.done(run), "*", { block: String(block), worker: name, error: message });
      await finish(job);
      options.onEvent?.({ type: "failed", run, block, message });
      return false;
    } finally {
      clearInterval(heartbeat);
      signal?.removeEventListener("abort", onStop);
    }
  }
}
