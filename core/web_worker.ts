/**
 * The web `Worker` constructor of the runtime, kept before anything can replace it:
 * onnxruntime-web's Emscripten runtime sets `globalThis.Worker` to Node's
 * `worker_threads.Worker` when it loads (it takes Deno for Node), and a module worker started with
 * that one has no `self`. Modules that start web workers import this module first and use
 * {@link WebWorker}; it is `undefined` where the runtime has no workers.
 *
 * @example
 * ```ts
 * import { WebWorker } from "./web_worker.ts";
 * console.log(typeof WebWorker); // "function" in Deno and browsers
 * ```
 * @module
 */

/** `globalThis.Worker` as it was when this module was first evaluated. */
export const WebWorker: typeof Worker | undefined = typeof Worker === "undefined"
  ? undefined
  : Worker;
