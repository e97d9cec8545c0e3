/**
 * `followFlowsCpu` split over Web Workers (one per hardware thread) for large jobs: the points
 * are independent, so each worker integrates a contiguous share of the cells and the results
 * are concatenated, equal to the single-threaded ones. Small jobs, one-thread machines and
 * environments without workers run on the calling thread, and so does a job whose workers fail
 * or do not start within {@link WORKER_START_MS}.
 *
 * @example
 * ```ts
 * import { followFlowsParallel } from "./follow_parallel.ts";
 * const end = await followFlowsParallel(new Float32Array(32), [4, 4], new Uint32Array([5]), 10);
 * console.log(end); // Int32Array [1, 1]
 * ```
 * @module
 */
import type { FollowFrame } from "../core/types.ts";
import { WebWorker } from "../core/web_worker.ts";
import { followFlowsCpu } from "./follow_flows.ts";
import type { FollowJob } from "./follow_worker.ts";

/**
 * Point-steps (cells x niter) that the start-up of the workers costs, roughly: with `T` threads
 * workers are used from `PARALLEL_MIN_WORK / (1 - 1 / T)` point-steps on (10e6 on two threads,
 * about 6e6 on eight; dyn-large is 20e6: on 2 idle cores its computeMasks takes ~400 ms with
 * workers against ~490 ms without).
 */
export const PARALLEL_MIN_WORK = 5e6;

/**
 * Milliseconds a worker has to start (load its module and say so) before the job runs on the
 * calling thread instead: a worker that cannot start in some runtime state must not leave the
 * segmentation waiting forever.
 */
export const WORKER_START_MS = 15_000;

/**
 * Final positions of `followFlowsCpu`, computed on up to `threads` workers.
 * @param frame the block's place in the full image (see `DynamicsBackend.followFlows`)
 * @param threads worker count, default `navigator.hardwareConcurrency`
 * @param minWork smallest `cells.length * niter` worth the workers (see {@link PARALLEL_MIN_WORK})
 */
export async function followFlowsParallel(
  flow: Float32Array,
  shape: readonly number[],
  cells: Uint32Array,
  niter: number,
  frame?: FollowFrame,
  threads = navigator.hardwareConcurrency ?? 1,
  minWork = PARALLEL_MIN_WORK / (1 - 1 / Math.max(2, threads)),
): Promise<Int32Array> {
  const parts = Math.min(threads, Math.ceil(cells.length / 4096));
  const Ctor = WebWorker;
  if (parts < 2 || cells.length * niter < minWork || Ctor === undefined) {
    return followFlowsCpu(flow, shape, cells, niter, frame);
  }
  const shared = new Float32Array(new SharedArrayBuffer(flow.byteLength));
  shared.set(flow);
  const workers: Worker[] = [];
  try {
    const chunk = Math.ceil(cells.length / parts);
    const results = await Promise.all(
      Array.from({ length: parts }, (_, k) => {
        const w = new Ctor(new URL("./follow_worker.ts", import.meta.url), {
          type: "module",
        });
        workers.push(w);
        const job: FollowJob = {
          flow: shared,
          shape: [...shape],
          cells: cells.slice(k * chunk, (k + 1) * chunk),
          niter,
          frame,
        };
        return new Promise<Int32Array>((resolve, reject) => {
          const start = setTimeout(
            () => reject(new Error(`a dynamics worker did not start in ${WORKER_START_MS} ms`)),
            WORKER_START_MS,
          );
          w.onmessage = (e: MessageEvent<Int32Array | "ready">) => {
            if (e.data === "ready") {
              clearTimeout(start);
              w.postMessage(job, [job.cells.buffer]);
            } else resolve(e.data);
          };
          w.onerror = (e) => {
            e.preventDefault();
            clearTimeout(start);
            reject(e.error ?? new Error(e.message));
          };
        });
      }),
    );
    const out = new Int32Array(shape.length * cells.length);
    let off = 0;
    for (const r of results) out.set(r, off), (off += r.length);
    return out;
  } catch {
    // workers refused (permissions, sandbox) or not started in time: one thread gives the same
    // result
    return followFlowsCpu(flow, shape, cells, niter, frame);
  } finally {
    for (const w of workers) w.terminate();
  }
}
