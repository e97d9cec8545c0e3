/**
 * Worker side of {@link followFlowsParallel}: says `"ready"` once loaded, then integrates one
 * share of the cells with `followFlowsCpu` and posts the final positions back.
 *
 * @example
 * ```ts
 * const w = new Worker(new URL("./follow_worker.ts", import.meta.url), { type: "module" });
 * const job = { flow: new Float32Array(32), shape: [4, 4], cells: new Uint32Array([5]), niter: 10 };
 * w.onmessage = (e) => {
 *   if (e.data === "ready") w.postMessage(job);
 *   else console.log(e.data), w.terminate(); // Int32Array [1, 1]
 * };
 * ```
 * @module
 */
import type { FollowFrame } from "../core/types.ts";

// `follow_flows.ts` may await its WebAssembly (outside Deno): "ready" once it is loaded
const ready = import("./follow_flows.ts");

/** One share of a `followFlows` job. */
export interface FollowJob {
  /** the field (a SharedArrayBuffer view, so that all workers read one copy) */
  flow: Float32Array;
  shape: number[];
  cells: Uint32Array;
  niter: number;
  frame?: FollowFrame;
}

const scope = self as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<FollowJob>) => void) | null;
};

scope.onmessage = async (e) => {
  const { followFlowsCpu } = await ready;
  const { flow, shape, cells, niter, frame } = e.data;
  const out = followFlowsCpu(flow, shape, cells, niter, frame);
  scope.postMessage(out, [out.buffer]);
};

await ready;
// inside a worker only (documentation tests load this module on the main thread)
if (typeof scope.postMessage === "function") scope.postMessage("ready");
