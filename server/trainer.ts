/**
 * Runs one training (the library's `train`) in its own Web Worker (`train_worker.ts`), so the
 * server answers requests while it computes: progress comes back as messages, a cancel sets a
 * flag in shared memory that `train` reads before every batch. The worker ends with its training;
 * one that has not stopped `graceMs` after a cancel (a long step) is terminated.
 *
 * @example
 * ```ts
 * import { assertRejects } from "@std/assert";
 * import { runTraining } from "./trainer.ts";
 * await assertRejects(
 *   () => runTraining({ model: "nuclei", train: [], nEpochs: 1 }, { signal: AbortSignal.abort() }),
 *   Error,
 *   "training cancelled",
 * );
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { TrainOptions, TrainProgress, TrainResult } from "../train/train.ts";
import { WebWorker } from "../core/web_worker.ts";
import { deserializeError, type SerializedError } from "./worker_protocol.ts";

/** The options that cross to the worker (no callbacks, no signal). */
export type WorkerTrainOptions = Omit<TrainOptions, "signal" | "onProgress">;

/** What a training returns to the server: the result without the state dict. */
export type TrainSummary = Omit<TrainResult, "model">;

/** The message to the worker. */
export interface ToTrainWorker {
  type: "train";
  options: WorkerTrainOptions;
  /** set to 1 to cancel (a shared Int32Array of length 1) */
  cancel: Int32Array;
}

type FromTrainWorker =
  | { type: "progress"; progress: TrainProgress }
  | { type: "result"; result: TrainSummary }
  | { type: "error"; error: SerializedError };

/** Trains in a new worker; rejects with `CANCELLED` when `signal` aborts. */
export function runTraining(
  options: WorkerTrainOptions,
  ctx: { signal: AbortSignal; onProgress?: (p: TrainProgress) => void; graceMs?: number },
): Promise<TrainSummary> {
  if (ctx.signal.aborted) {
    return Promise.reject(new CellposeError("CANCELLED", "training cancelled"));
  }
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  // the runtime's own Worker, even when onnxruntime-web has replaced the global one
  const worker = new (WebWorker ?? Worker)(new URL("./train_worker.ts", import.meta.url), {
    type: "module",
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new Promise<TrainSummary>((resolve, reject) => {
    const end = () => {
      clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onAbort);
      worker.terminate();
    };
    const onAbort = () => {
      Atomics.store(cancel, 0, 1);
      timer = setTimeout(() => {
        end();
        reject(new CellposeError("CANCELLED", "training cancelled (stopped mid-step)"));
      }, ctx.graceMs ?? 60_000);
    };
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    worker.onmessage = (e: MessageEvent<FromTrainWorker>) => {
      const m = e.data;
      if (m.type === "progress") return ctx.onProgress?.(m.progress);
      end();
      if (m.type === "result") resolve(m.result);
      else reject(deserializeError(m.error));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      end();
      reject(new Error(`the training worker crashed (${e.message})`));
    };
    worker.postMessage({ type: "train", options, cancel } satisfies ToTrainWorker);
  });
}
