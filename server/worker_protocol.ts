/**
 * What the server's Web Workers (segmentation, training) and the threads that start them share:
 * an `AbortSignal` driven by a flag in shared memory, and errors as they cross the thread
 * boundary.
 *
 * The signal reads the flag on every use, so a worker whose event loop is busy in synchronous
 * native code (onnxruntime-node) still sees a cancel at its next check, without a message.
 *
 * @example
 * ```ts
 * import { deserializeError, serializeError, sharedSignal } from "./worker_protocol.ts";
 * const flag = new Int32Array(new SharedArrayBuffer(4));
 * const signal = sharedSignal(flag);
 * Atomics.store(flag, 0, 1);
 * console.log(signal.aborted); // true
 * console.log(deserializeError(serializeError(signal.reason)).message); // "job cancelled"
 * ```
 * @module
 */
import { CellposeError, type CellposeErrorCode } from "../core/errors.ts";

/** An error as it crosses from a worker. */
export interface SerializedError {
  code?: CellposeErrorCode;
  message: string;
  value?: unknown;
}

/** A signal that aborts (with `CANCELLED`) once `flag[0]` is 1. */
export function sharedSignal(flag: Int32Array): AbortSignal {
  const controller = new AbortController();
  const real = controller.signal;
  return new Proxy(real, {
    get(_, prop) {
      if (!real.aborted && Atomics.load(flag, 0) === 1) {
        controller.abort(new CellposeError("CANCELLED", "job cancelled"));
      }
      const v = Reflect.get(real, prop, real);
      return typeof v === "function" ? v.bind(real) : v;
    },
  });
}

/** A thrown value as a structured-cloneable object (a CellposeError keeps code and value). */
export function serializeError(e: unknown): SerializedError {
  if (e instanceof CellposeError) {
    let value: unknown;
    try {
      value = structuredClone(e.value);
    } catch { /* not cloneable: left out */ }
    return { code: e.code, message: e.message, value };
  }
  return { message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
}

/** The error back on the receiving side. */
export function deserializeError(e: SerializedError): Error {
  return e.code ? new CellposeError(e.code, e.message, e.value) : new Error(e.message);
}
