/**
 * The job queue and store of the server: jobs wait in a bounded FIFO, at most `concurrency` run at
 * once, each one's events (state changes and progress) are kept for Server-Sent Events replay,
 * and finished jobs are deleted after `resultTtlMs` or when the results together pass
 * `maxResultBytes` (oldest first). Cancelling aborts the job's `AbortSignal`; every job ends in a
 * final state whatever its work function does.
 *
 * @example
 * ```ts
 * import { createJobQueue } from "./jobs.ts";
 * const q = createJobQueue(
 *   (n: number, { onProgress }) => {
 *     onProgress({ stage: "done" });
 *     return Promise.resolve(n * 2);
 *   },
 *   { resultBytes: () => 8 },
 * );
 * const job = q.submit(21, 8);
 * console.log((await q.settled(job.id)).result); // 42
 * q.close();
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { ServerError } from "./errors.ts";
import { checkInt } from "../core/check.ts";
import type { Progress } from "../core/types.ts";

/** Lifecycle of a job; the last three are final. */
export type JobStatus = "queued" | "running" | "done" | "failed" | "cancelled";

/** One event of a job, numbered from 1 in order; `data.status` is the job's status then. */
export type JobEvent =
  | {
    id: number;
    type: "status";
    data: { status: JobStatus; error?: JobError } & Record<string, unknown>;
  }
  | { id: number; type: "progress"; data: Progress & { status: "running" } };

/** Why a job failed: an error code and message. */
export interface JobError {
  code: string;
  message: string;
}

/** A job as stored. */
export interface Job<I, R> {
  readonly id: string;
  status: JobStatus;
  readonly createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** the latest progress */
  progress?: Progress;
  error?: JobError;
  /** the input; dropped once the job leaves the queue or finishes */
  input?: I;
  readonly inputBytes: number;
  result?: R;
  resultBytes: number;
  readonly events: JobEvent[];
  readonly controller: AbortController;
}

/** Queue limits; each has a default. */
export interface JobQueueOptions<R> {
  /** jobs running at once [1] */
  concurrency?: number;
  /** jobs waiting beyond the running ones [16]; more are refused with QUEUE_FULL */
  maxQueued?: number;
  /** bytes of input held by waiting jobs [2 GiB]; more are refused with QUEUE_FULL */
  maxQueuedBytes?: number;
  /** a finished job is deleted this long after it ended [1 h] */
  resultTtlMs?: number;
  /** results kept together at most [1 GiB]; the oldest finished jobs go first */
  maxResultBytes?: number;
  /** size of a result in bytes, for `maxResultBytes` */
  resultBytes: (r: R) => number;
  /** fields added to the "done" event, e.g. a summary of the result */
  describe?: (r: R) => Record<string, unknown>;
  /** clock, for tests of expiry [Date.now] */
  now?: () => number;
}

/** What a job's work function receives. */
export interface JobContext {
  signal: AbortSignal;
  onProgress: (p: Progress) => void;
}

/** Counters for health reports. */
export interface QueueStats {
  running: number;
  queued: number;
  queuedBytes: number;
  concurrency: number;
  maxQueued: number;
  stored: number;
  resultBytes: number;
}

/** The queue's interface; see {@link createJobQueue}. */
export interface JobQueue<I, R> {
  /** queues a job (throws QUEUE_FULL with `value.retryAfter` seconds when full) */
  submit(input: I, inputBytes: number): Job<I, R>;
  /** throws what {@link JobQueue.submit} would throw for a job of `inputBytes`, if full */
  checkRoom(inputBytes: number): void;
  get(id: string): Job<I, R> | undefined;
  /** every stored job, oldest first */
  list(): Job<I, R>[];
  /** aborts a waiting or running job; a no-op on a finished one */
  cancel(id: string): Job<I, R> | undefined;
  /** cancels if needed and forgets the job and its result */
  remove(id: string): boolean;
  /** calls `listener` for each new event of the job; returns the unsubscribe function */
  subscribe(id: string, listener: (e: JobEvent) => void): () => void;
  /** resolves when the job reaches a final state */
  settled(id: string): Promise<Job<I, R>>;
  stats(): QueueStats;
  /** deletes expired jobs now (also runs on a timer) */
  prune(): void;
  /** cancels everything and stops the timer */
  close(): void;
}

const FINAL: ReadonlySet<JobStatus> = new Set(["done", "failed", "cancelled"]);

/** True for done, failed and cancelled. */
export function isFinal(status: JobStatus): boolean {
  return FINAL.has(status);
}

/**
 * A queue that runs `work` on each submitted input. `work` must honour `signal`; if it does not,
 * the job is still reported cancelled at once and its slot is freed when `work` returns.
 */
export function createJobQueue<I, R>(
  work: (input: I, ctx: JobContext) => Promise<R>,
  options: JobQueueOptions<R>,
): JobQueue<I, R> {
  const concurrency = checkInt("concurrency", options.concurrency ?? 1, 1);
  const maxQueued = checkInt("maxQueued", options.maxQueued ?? 16, 0);
  const maxQueuedBytes = options.maxQueuedBytes ?? 2 ** 31;
  const ttl = options.resultTtlMs ?? 3_600_000;
  const maxResultBytes = options.maxResultBytes ?? 2 ** 30;
  const now = options.now ?? Date.now;

  const jobs = new Map<string, Job<I, R>>();
  const waiting: Job<I, R>[] = [];
  const listeners = new Map<string, Set<(e: JobEvent) => void>>();
  const waiters = new Map<string, Array<(j: Job<I, R>) => void>>();
  let running = 0;
  let queuedBytes = 0;
  let resultBytes = 0;
  /** mean run time of recent jobs, for Retry-After */
  let meanRunMs = 5000;
  let closed = false;

  const timer = setInterval(() => prune(), Math.min(Math.max(ttl / 4, 100), 60_000));
  Deno.unrefTimer(timer);

  function emit(job: Job<I, R>, e: Omit<JobEvent, "id">) {
    const event = { ...e, id: job.events.length + 1 } as JobEvent;
    job.events.push(event);
    const set = listeners.get(job.id);
    for (const l of set ?? []) {
      try {
        l(event);
      } catch {
        set!.delete(l); // a listener that fails (e.g. a closed stream) is dropped, the job goes on
      }
    }
  }

  function setStatus(job: Job<I, R>, status: JobStatus, error?: JobError) {
    job.status = status;
    if (error) job.error = error;
    const extra = status === "done" && options.describe ? options.describe(job.result!) : {};
    emit(job, { type: "status", data: error ? { status, error } : { ...extra, status } });
    if (isFinal(status)) {
      job.finishedAt = now();
      job.input = undefined;
      for (const w of waiters.get(job.id) ?? []) w(job);
      waiters.delete(job.id);
      listeners.delete(job.id);
    }
  }

  function onProgress(job: Job<I, R>, p: Progress) {
    if (job.status !== "running") return;
    // a progress event equal to the previous one adds nothing to the replay log
    const last = job.progress;
    if (
      last && last.stage === p.stage && last.tilesDone === p.tilesDone &&
      last.fraction === p.fraction
    ) return;
    job.progress = { ...p };
    emit(job, { type: "progress", data: { ...p, status: "running" } });
  }

  function pump() {
    while (!closed && running < concurrency && waiting.length > 0) {
      const job = waiting.shift()!;
      queuedBytes -= job.inputBytes;
      start(job);
    }
  }

  function start(job: Job<I, R>) {
    running++;
    job.startedAt = now();
    setStatus(job, "running");
    const input = job.input!;
    job.input = undefined;
    let work$: Promise<R>;
    try {
      work$ = work(input, {
        signal: job.controller.signal,
        onProgress: (p) => onProgress(job, p),
      });
    } catch (e) {
      work$ = Promise.reject(e);
    }
    // the slot is freed before the final status is announced, so a waiter sees it free
    const settle = (announce: () => void) => {
      running--;
      meanRunMs = 0.8 * meanRunMs + 0.2 * (now() - (job.startedAt ?? now()));
      if (job.status === "running") { // else cancelled meanwhile: nothing to add
        try {
          announce();
        } catch (e) {
          setStatus(job, "failed", toJobError(e));
        }
      }
      prune();
      pump();
    };
    work$.then(
      (result) =>
        settle(() => {
          job.result = result;
          job.resultBytes = options.resultBytes(result);
          resultBytes += job.resultBytes;
          setStatus(job, "done");
        }),
      (e) =>
        settle(() => {
          const cancelled = job.controller.signal.aborted ||
            (e instanceof CellposeError && e.code === "CANCELLED");
          if (cancelled) setStatus(job, "cancelled");
          else setStatus(job, "failed", toJobError(e));
        }),
    );
  }

  function checkRoom(inputBytes: number) {
    if (closed) {
      throw new ServerError("QUEUE_FULL", "server is shutting down", { retryAfter: 5 });
    }
    const busy = running >= concurrency;
    if (busy && (waiting.length >= maxQueued || queuedBytes + inputBytes > maxQueuedBytes)) {
      const retryAfter = Math.ceil((meanRunMs * (waiting.length + 1)) / concurrency / 1000);
      throw new ServerError(
        "QUEUE_FULL",
        `queue is full (${running} running, ${waiting.length} waiting, ` +
          `${queuedBytes} bytes queued); retry in about ${retryAfter} s`,
        { retryAfter },
      );
    }
  }

  function submit(input: I, inputBytes: number): Job<I, R> {
    checkRoom(inputBytes);
    const job: Job<I, R> = {
      id: crypto.randomUUID(),
      status: "queued",
      createdAt: now(),
      input,
      inputBytes,
      resultBytes: 0,
      events: [],
      controller: new AbortController(),
    };
    jobs.set(job.id, job);
    waiting.push(job);
    queuedBytes += inputBytes;
    emit(job, { type: "status", data: { status: "queued" } });
    pump();
    return job;
  }

  function cancel(id: string): Job<I, R> | undefined {
    const job = jobs.get(id);
    if (!job || isFinal(job.status)) return job;
    const at = waiting.indexOf(job);
    if (at >= 0) {
      waiting.splice(at, 1);
      queuedBytes -= job.inputBytes;
    }
    job.controller.abort(new CellposeError("CANCELLED", `job ${id} was cancelled`));
    setStatus(job, "cancelled");
    return job;
  }

  function forget(job: Job<I, R>) {
    resultBytes -= job.resultBytes;
    jobs.delete(job.id);
  }

  function prune() {
    const t = now();
    const finished = [...jobs.values()].filter((j) => isFinal(j.status));
    for (const j of finished) if (t - j.finishedAt! >= ttl) forget(j);
    if (resultBytes > maxResultBytes) {
      finished.sort((a, b) => a.finishedAt! - b.finishedAt!);
      // the newest result stays even alone over the budget: its client has yet to fetch it
      for (const j of finished.slice(0, -1)) {
        if (resultBytes <= maxResultBytes) break;
        if (jobs.has(j.id) && j.resultBytes > 0) forget(j);
      }
    }
  }

  return {
    submit,
    checkRoom,
    get: (id) => jobs.get(id),
    list: () => [...jobs.values()],
    cancel,
    remove(id) {
      const job = cancel(id);
      if (!job) return false;
      forget(job);
      return true;
    },
    subscribe(id, listener) {
      const job = jobs.get(id);
      if (!job || isFinal(job.status)) return () => {};
      let set = listeners.get(id);
      if (!set) listeners.set(id, set = new Set());
      set.add(listener);
      return () => set.delete(listener);
    },
    settled(id) {
      const job = jobs.get(id);
      if (!job) {
        return Promise.reject(new ServerError("NOT_FOUND", `no job ${id}`, { field: "id" }));
      }
      if (isFinal(job.status)) return Promise.resolve(job);
      return new Promise((resolve) => {
        const list = waiters.get(id) ?? [];
        list.push(resolve);
        waiters.set(id, list);
      });
    },
    stats: () => ({
      running,
      queued: waiting.length,
      queuedBytes,
      concurrency,
      maxQueued,
      stored: jobs.size,
      resultBytes,
    }),
    prune,
    close() {
      closed = true;
      clearInterval(timer);
      for (const job of [...jobs.values()]) cancel(job.id);
    },
  };
}

function toJobError(e: unknown): JobError {
  if (e instanceof CellposeError) return { code: e.code, message: e.message };
  return { code: "INTERNAL", message: e instanceof Error ? e.message : String(e) };
}
