/**
 * Wraps onnxruntime-web's Emscripten factory (`ort-wasm-simd-threaded.mjs`) so that the
 * WebAssembly heap is grown to its final size once, right after the module starts and
 * before any session exists; {@link createRunner} hands this module to onnxruntime-web
 * through `ort.env.wasm.wasmPaths.mjs`.
 *
 * Why: with worker threads (`ort.env.wasm.numThreads > 1`) the heap is a shared
 * `WebAssembly.Memory` that onnxruntime grows (`memory.grow` from the main thread) while a
 * session runs. Under Deno 2.9.6 a pthread worker that then touches the new pages traps
 * with "RuntimeError: memory access out of bounds" (thrown in the worker's `run` message
 * handler, inside the thread entry); the worker exits, its error message never reaches the
 * main thread, which spins forever inside `_OrtRun` waiting for the worker's share of the
 * first `session.run` (seen in 10 of 20 processes with 2 threads on the tiny model). A heap
 * that never grows after start-up cannot race: 0 hangs in 40 processes.
 * The allocator keeps the freed block, so later allocations up to that size reuse the grown
 * pages; untouched pages cost address space only, not resident memory.
 *
 * @example
 * ```ts
 * import * as ort from "onnxruntime-web";
 * ort.env.wasm.wasmPaths = {
 *   mjs: new URL("./ort_wasm_factory.ts", import.meta.url),
 *   wasm: import.meta.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm"),
 * };
 * ```
 * @module
 */
import ortWasmThreaded from "onnxruntime-web/ort-wasm-simd-threaded.mjs";

/** Heap sizes tried in turn (the wasm32 limit is 4 GiB; the largest one granted is kept). */
const HEAP_BYTES = [3.75, 3.5, 3, 2, 1].map((gib) => gib * 2 ** 30);

interface EmscriptenHeap {
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

/** onnxruntime-web's module factory, with the heap grown before the module is returned. */
export default async function ortWasmFactory(moduleArg: object): Promise<EmscriptenHeap> {
  const module = await (ortWasmThreaded as (arg: object) => Promise<EmscriptenHeap>)(moduleArg);
  for (const bytes of HEAP_BYTES) {
    const ptr = module._malloc(bytes);
    if (ptr !== 0) {
      module._free(ptr);
      break;
    }
  }
  return module;
}
