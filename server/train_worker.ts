/**
 * The training worker: runs the library's `train` off the server's main thread (onnxruntime-node
 * computes synchronously; the HTTP side stays responsive), one training per worker. Messages are
 * described in `trainer.ts`, which starts this module as a Web Worker.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const worker = new Worker(new URL("./train_worker.ts", import.meta.url), { type: "module" });
 * const reply = new Promise<MessageEvent>((resolve) => worker.onmessage = resolve);
 * const cancel = new Int32Array(new SharedArrayBuffer(4));
 * worker.postMessage({ type: "train", options: { model: "tiny.pt", train: [] }, cancel });
 * const { data } = await reply; // no such model: an error, serialised with its code
 * worker.terminate();
 * assertEquals([data.type, data.error.code], ["error", "MODEL_NOT_FOUND"]);
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
