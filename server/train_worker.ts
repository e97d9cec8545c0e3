/**
 * The training worker: runs the library's `train` off the server's main thread (onnxruntime-node
 * computes synchronously; the HTTP side stays responsive), one training per worker. Messages are
 * described in `trainer.ts`, which starts this module as a Web Worker.
 *
 * @example
 * ```ts
 * const worker = new Worker(new URL("./train_worker.ts", import.meta.url), { type: "module" });
 * worker.postMessage({ type: "train", options: { model: "tiny.pt", train: [] }, cancel });
 * ```
 * @module
 */
import { train } from "../train/train.ts";
import type { ToTrainWorker } from "./trainer.ts";
import { serializeError, sharedSignal } from "./worker_protocol.ts";

const scope = self as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent<ToTrainWorker>) => void) | null;
};

scope.onmessage = async (e) => {
  const { options, cancel } = e.data;
  try {
    const r = await train({
      ...options,
      signal: sharedSignal(cancel),
      onProgress: (progress) => scope.postMessage({ type: "progress", progress }),
    });
    const { model: _, ...summary } = r; // the state dict stays here: the file has it
    scope.postMessage({ type: "result", result: summary });
  } catch (err) {
    scope.postMessage({ type: "error", error: serializeError(err) });
  }
};
