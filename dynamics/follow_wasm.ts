/**
 * The 2-D flow following of `followFlowsCpu` in WebAssembly (`wasm/follow2d.wat`, assembled into
 * the committed `wasm/follow2d.wasm`): the same float32 operations in the same order, so the end
 * points are bit-identical to the TypeScript reference, about twice as fast. The module is compiled
 * once when this file loads (synchronously under Deno); where it cannot be (no read permission, no WebAssembly) or when
 * `CELLPOSE_NO_WASM=1`, {@link WASM_FOLLOW} is false and the TypeScript path runs.
 *
 * @example
 * ```ts
 * import { wasmFollow2D } from "./follow_wasm.ts";
 * const job = wasmFollow2D(4 * 4, 1)!; // a 4 x 4 field, one point
 * job.pts.set([0, 0]); // normalised (y, x): the centre, in a zero field
 * job.run(1, 10, 4, 4, [0, 0], [4, 4]);
 * console.log(job.pts); // Float32Array [0, 0]
 * ```
 * @module
 */

let module: WebAssembly.Module | undefined;
try {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno?.env.get("CELLPOSE_NO_WASM") !== "1") {
    const url = new URL("./wasm/follow2d.wasm", import.meta.url);
    // synchronously under Deno (a small module), so that importers (workers) need no await
    module = deno
      ? new WebAssembly.Module(deno.readFileSync(url))
      : await WebAssembly.compile(await (await fetch(url)).arrayBuffer());
  }
} catch {
  // no permission to read the binary or the environment, or no WebAssembly: TypeScript runs
}

/** Bytes of scratch the kernel needs after the points (a block of 256 points' state). */
const SCRATCH = 256 * 36;

/** Points per call of the kernel. */
const CHUNK = 2048;

/** Whether 2-D flows are followed in WebAssembly by default (see the module notes). */
export const WASM_FOLLOW = module !== undefined;

/** One 2-D job's memory: fill `im` and `pts`, then `run`; `pts` then holds the final states. */
export interface WasmFollowJob {
  /** the field in normalised units, (x, y) interleaved per pixel */
  im: Float32Array;
  /** the points' normalised (y, x) start states, then their final ones */
  pts: Float32Array;
  /** integrates `np` points `niter` steps in an `ly` x `lx` block at `origin` of `fullShape` */
  run(
    np: number,
    niter: number,
    ly: number,
    lx: number,
    origin: readonly number[],
    fullShape: readonly number[],
  ): void;
}

/**
 * Memory for a field of `n` pixels and `np` points, or `undefined` where the WebAssembly path is
 * off or the job does not fit 32-bit addresses.
 */
export function wasmFollow2D(n: number, np: number): WasmFollowJob | undefined {
  const bytes = 8 * (n + np) + SCRATCH;
  if (!module || bytes > 2 ** 31) return undefined;
  const mem = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
  const follow = new WebAssembly.Instance(module, { env: { mem } }).exports.follow2d as (
    ...args: number[]
  ) => void;
  return {
    im: new Float32Array(mem.buffer, 0, 2 * n),
    pts: new Float32Array(mem.buffer, 8 * n, 2 * np),
    run: (np, niter, ly, lx, [oy, ox], [fy, fx]) => {
      // in calls of CHUNK points: a call that returns lets the next one run the optimised tier
      for (let p = 0; p < np; p += CHUNK) {
        const pts = 8 * (n + p), m = Math.min(CHUNK, np - p);
        follow(pts, m, niter, 8 * (n + np), ly, lx, oy, ox, fy / 2, fx / 2);
      }
    },
  };
}
