/**
 * The server's segmentation engine: one Web Worker (`engine_worker.ts`) holds the model and runs
 * `segment`, so long computations never block the HTTP side. Calls are messages; progress comes
 * back as it happens and results come back as transferred buffers (no copies).
 *
 * Cancelling a call sets a flag in shared memory that the worker's `AbortSignal` reads, so the
 * pipeline sees it at its next check even while the worker's event loop is busy (onnxruntime-node
 * runs inference synchronously, so a cancel *message* would wait for the whole network stage).
 * A call that has not stopped
 * `cancelGraceMs` later (stuck in a long synchronous step) gets the worker terminated and a
 * fresh one started; calls then in flight fail and models are loaded again on next use. A worker
 * that crashes is replaced the same way.
 *
 * @example
 * ```ts
 * import { createEngine } from "./engine.ts";
 * const engine = createEngine({ device: "cpu" });
 * const model = await engine.load("../shared/fixtures/tiny-cpsam.pt");
 * const image = { data: new Uint8Array(64 * 64), shape: [64, 64] };
 * const r = await engine.segment(model, image, {}, { signal: new AbortController().signal });
 * console.log(r.masks.shape); // [64, 64]
 * await engine.close();
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { Device, NetRunner, Progress, SegmentResult } from "../core/types.ts";
import type { Precision } from "../models/store.ts";
import type { SegmentLargeResult } from "../pipeline/segment_large.ts";
import type { SegmentParams } from "./params.ts";
import { deserializeError, type SerializedError } from "./worker_protocol.ts";
import { WebWorker } from "../core/web_worker.ts";

/** Which model a worker call uses; the worker loads it on first use. */
export interface ModelSpec {
  handle: number;
  name: string;
  device?: Device;
  precision?: Precision;
  /** model cache folder (default `$CELLPOSE_LOCAL_MODELS_PATH`, else ~/.cellpose/models) */
  cacheDir?: string;
}

/** Messages to the worker. */
export type ToWorker =
  | { type: "load"; id: number; model: ModelSpec }
  | { type: "dispose"; id: number; model: ModelSpec }
  | {
    type: "segment";
    id: number;
    model: ModelSpec;
    image: NdArray<NumericArray>;
    params: SegmentParams;
    /** set to 1 by the server to cancel (a shared Int32Array of length 1) */
    cancel: Int32Array;
  }
  | {
    /** a 2-D TIFF / OME-Zarr at `input` block by block (`segmentLarge`), labels to `output` */
    type: "segmentLarge";
    id: number;
    model: ModelSpec;
    input: string;
    output: string;
    params: SegmentParams & { blockSize?: number; halo?: number };
    cancel: Int32Array;
  };

/** `Omit<T, "id">` for each member of a union. */
type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

/** Messages from the worker. */
type FromWorker =
  | { type: "result"; id: number; result: unknown }
  | { type: "progress"; id: number; progress: Progress }
  | { type: "error"; id: number; error: SerializedError };

/** A model loaded in the worker: what the server's model slot holds. */
export interface RemoteModel {
  readonly spec: ModelSpec;
  readonly device: NetRunner["device"];
  readonly bsize: number;
  dispose(): Promise<void>;
}

/** Options of {@link createEngine}. */
export interface EngineOptions {
  /** ["auto"] where the network runs */
  device?: Device;
  /** ["fp32"] network precision */
  precision?: Precision;
  /** model cache folder (default `$CELLPOSE_LOCAL_MODELS_PATH`, else ~/.cellpose/models) */
  cacheDir?: string;
  /** [3000] how long a cancelled call may take to stop before the worker is replaced */
  cancelGraceMs?: number;
  /** [3000] ms calls in flight may still take when the engine closes */
  closeGraceMs?: number;
  /** where worker restarts are reported [console.error] */
  log?: (line: string) => void;
}

/** See {@link createEngine}. */
export interface Engine {
  /** loads model `name` in the worker */
  load(name: string): Promise<RemoteModel>;
  /** segments `image` (its buffer is transferred to the worker) */
  segment(
    model: RemoteModel,
    image: NdArray<NumericArray>,
    params: SegmentParams,
    ctx: { signal: AbortSignal; onProgress?: (p: Progress) => void },
  ): Promise<SegmentResult>;
  /**
   * segments the 2-D image at path `input` block by block (`segmentLarge`: read lazily, labels
   * written strip by strip to the TIFF `output`); resolves to its masks, blocks and timings
   */
  segmentLarge(
    model: RemoteModel,
    input: string,
    output: string,
    params: SegmentParams & { blockSize?: number; halo?: number },
    ctx: { signal: AbortSignal; onProgress?: (p: Progress) => void },
  ): Promise<SegmentLargeResult>;
  /** times the worker was replaced */
  restarts(): number;
  /**
   * Stops the worker: calls still running get up to `closeGraceMs` to finish (terminating a
   * worker inside onnxruntime's native code can crash the process), then fail.
   */
  close(): Promise<void>;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: (p: Progress) => void;
  cancelled?: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

/** Starts the engine (the worker starts on the first call). */
export function createEngine(options: EngineOptions = {}): Engine {
  const grace = options.cancelGraceMs ?? 3000;
  const log = options.log ?? console.error;
  let worker: Worker | undefined;
  let nextId = 1;
  let nextHandle = 1;
  let restartCount = 0;
  const pending = new Map<number, Pending>();
  const inFlight = new Set<Promise<unknown>>();

  function spawn(): Worker {
    // the runtime's own Worker, even when onnxruntime-web has replaced the global one
    const w = new (WebWorker ?? Worker)(new URL("./engine_worker.ts", import.meta.url), {
      type: "module",
    });
    w.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      const p = pending.get(m.id);
      if (!p) return;
      if (m.type === "progress") return p.onProgress?.(m.progress);
      pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.type === "result") p.resolve(m.result);
      else p.reject(deserializeError(m.error));
    };
    w.onerror = (e) => {
      e.preventDefault();
      restart(`the segmentation worker crashed (${e.message})`);
    };
    return w;
  }

  function restart(reason: string) {
    restartCount++;
    log(`${reason}: starting a new worker`);
    worker?.terminate();
    worker = undefined;
    failAll(reason);
  }

  function failAll(reason: string) {
    for (const [id, p] of pending) {
      pending.delete(id);
      clearTimeout(p.timer);
      p.reject(
        p.cancelled
          ? new CellposeError("CANCELLED", "job cancelled")
          : new Error(`${reason}; the job was stopped`),
      );
    }
  }

  function call<T>(
    msg: WithoutId<ToWorker>,
    transfer: Transferable[] = [],
    p: Partial<Pending> = {},
  ) {
    const id = nextId++;
    worker ??= spawn();
    const done = new Promise<T>((resolve, reject) => {
      pending.set(id, { ...p, resolve: resolve as (v: unknown) => void, reject });
      worker!.postMessage({ ...msg, id }, transfer);
    });
    const settled = done.then(() => {}, () => {}).finally(() => inFlight.delete(settled));
    inFlight.add(settled);
    return { id, done };
  }

  /**
   * Starts a call that `signal` cancels: the shared `cancel` flag is raised and the worker is
   * replaced if the call has not stopped `grace` ms later.
   */
  function cancellable<T>(
    signal: AbortSignal,
    cancel: Int32Array,
    start: () => { id: number; done: Promise<T> },
  ): Promise<T> {
    if (signal.aborted) return Promise.reject(new CellposeError("CANCELLED", "job cancelled"));
    const { id, done } = start();
    const onAbort = () => {
      const p = pending.get(id);
      if (!p) return;
      p.cancelled = true;
      Atomics.store(cancel, 0, 1);
      p.timer = setTimeout(() => {
        if (pending.has(id)) restart(`a cancelled job did not stop within ${grace} ms`);
      }, grace);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    return done.finally(() => signal.removeEventListener("abort", onAbort));
  }

  function dispose(spec: ModelSpec): Promise<void> {
    if (!worker) return Promise.resolve();
    return call<void>({ type: "dispose", model: spec }).done;
  }

  return {
    async load(name) {
      const spec: ModelSpec = {
        handle: nextHandle++,
        name,
        device: options.device,
        precision: options.precision,
        cacheDir: options.cacheDir,
      };
      const info = await call<{ device: NetRunner["device"]; bsize: number }>({
        type: "load",
        model: spec,
      }).done;
      return { spec, ...info, dispose: () => dispose(spec) };
    },
    segment(model, image, params, { signal, onProgress }) {
      const cancel = new Int32Array(new SharedArrayBuffer(4));
      return cancellable<SegmentResult>(signal, cancel, () =>
        call(
          { type: "segment", model: model.spec, image, params, cancel },
          [image.data.buffer as ArrayBuffer],
          { onProgress },
        ));
    },
    segmentLarge(model, input, output, params, { signal, onProgress }) {
      const cancel = new Int32Array(new SharedArrayBuffer(4));
      return cancellable<SegmentLargeResult>(signal, cancel, () =>
        call(
          { type: "segmentLarge", model: model.spec, input, output, params, cancel },
          [],
          { onProgress },
        ));
    },
    restarts: () => restartCount,
    async close() {
      if (inFlight.size) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const grace = new Promise((r) => (timer = setTimeout(r, options.closeGraceMs ?? 3000)));
        await Promise.race([Promise.all(inFlight), grace]);
        clearTimeout(timer);
      }
      worker?.terminate();
      worker = undefined;
      failAll("the server is shutting down");
    },
  };
}
