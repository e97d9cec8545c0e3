/**
 * Runs an ONNX cpsam model on one of three onnxruntime backends and exposes it as a
 * {@link NetRunner}:
 * - `cpu`: onnxruntime-node (native library shipped in its npm package; the fastest CPU path),
 * - `wasm`: onnxruntime-web's multi-threaded wasm build (its heap is grown once at start-up by
 *   `ort_wasm_factory.ts`: growing it while worker threads run hangs Deno, see there),
 * - `webgpu`: onnxruntime-web's WebGPU build over `navigator.gpu`.
 * `auto` picks WebGPU on a real (non-software) adapter, else `cpu`, else `wasm`.
 * Models are passed by path, with their external data file beside them, never re-encoded.
 *
 * @example
 * ```ts
 * import { convertCheckpoint } from "./cpsam_graph.ts";
 * import { createRunner } from "./runtime.ts";
 * await convertCheckpoint("../shared/fixtures/tiny-cpsam.pt", "/tmp/tiny.onnx", { precision: "fp32" });
 * const net = await createRunner("/tmp/tiny.onnx", { device: "cpu" });
 * const out = await net.run({ data: new Float32Array(3 * 256 * 256), shape: [1, 3, 256, 256] });
 * console.log(out.shape); // [1, 3, 256, 256]
 * await net.dispose();
 * ```
 * @module
 */
// first: keeps the web Worker constructor before onnxruntime-web replaces it
import "../core/web_worker.ts";
import { basename, dirname, join } from "node:path";
import type * as OrtCommon from "onnxruntime-web";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import type { Device, NetRunner } from "../core/types.ts";
import { isSoftwareAdapter, requestGpuAdapter } from "../kernels/gpu.ts";

/** Options of {@link createRunner}. */
export interface RunnerOptions {
  /** backend; `auto` (default): real WebGPU adapter, else onnxruntime-node, else wasm */
  device?: Device;
  /** model name reported by the runner (default: the file name without extension) */
  name?: string;
  /** tiles per session run (default 8); larger inputs are split */
  batchSize?: number;
  /**
   * CPU threads (default: all logical cores; for `wasm` at most {@link MAX_WASM_THREADS}; the
   * first wasm runner of a process fixes the count for the process)
   */
  numThreads?: number;
}

/** Cap on the default wasm thread count (one worker per thread, each with its own stack). */
export const MAX_WASM_THREADS = 8;

type Ort = typeof OrtCommon;
type Session = OrtCommon.InferenceSession;

/** Name and kind of the WebGPU adapter `navigator.gpu` offers, or null if there is none. */
export async function gpuAdapterInfo(): Promise<
  { description: string; software: boolean } | null
> {
  const adapter = await requestGpuAdapter();
  if (!adapter) return null;
  const info = adapter.info;
  const description = [info.vendor, info.architecture, info.device, info.description]
    .filter(Boolean).join(" ");
  return { description, software: isSoftwareAdapter(info) };
}

/** The backend `auto` resolves to on this machine. */
async function resolveDevice(device: Device): Promise<Exclude<Device, "auto">> {
  if (!["auto", "webgpu", "wasm", "cpu"].includes(device)) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `device must be "auto", "webgpu", "wasm" or "cpu", got ${JSON.stringify(device)}`,
      device,
    );
  }
  if (device !== "auto") return device;
  const gpu = await gpuAdapterInfo();
  if (gpu && !gpu.software) return "webgpu";
  try {
    await import("onnxruntime-node");
    return "cpu";
  } catch {
    return "wasm";
  }
}

/** Finds `<model>.data` beside the model (the name {@link convertCheckpoint} uses). */
function externalDataOf(onnxPath: string): string | undefined {
  const name = `${basename(onnxPath)}.data`;
  try {
    Deno.statSync(join(dirname(onnxPath), name));
    return name;
  } catch {
    return undefined;
  }
}

async function openSession(
  onnxPath: string,
  device: Exclude<Device, "auto">,
  threads: number,
): Promise<{ ort: Ort; session: Session }> {
  if (device === "cpu") {
    const ort = await import("onnxruntime-node") as unknown as Ort;
    const session = await ort.InferenceSession.create(onnxPath, {
      executionProviders: ["cpu"],
      intraOpNumThreads: threads,
      graphOptimizationLevel: "all",
      // idle intra-op threads sleep instead of spinning: between tiles the host runs the flow
      // dynamics and the I/O, and spinning threads would take the cores that work needs
      extra: { session: { intra_op: { allow_spinning: "0" } } },
    });
    return { ort, session };
  }
  let ort: Ort;
  if (device === "webgpu") {
    const gpu = await gpuAdapterInfo();
    if (!gpu) {
      throw new CellposeError(
        "GPU_UNAVAILABLE",
        "device webgpu was asked for but navigator.gpu offers no adapter",
        device,
      );
    }
    ort = await import("onnxruntime-web/webgpu") as unknown as Ort;
  } else {
    ort = await import("onnxruntime-web") as unknown as Ort;
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmPaths = {
      mjs: new URL("./ort_wasm_factory.ts", import.meta.url),
      wasm: import.meta.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm"),
    };
  }
  const data = externalDataOf(onnxPath);
  const session = await ort.InferenceSession.create(await Deno.readFile(onnxPath), {
    executionProviders: [device],
    graphOptimizationLevel: "all",
    externalData: data
      ? [{ path: data, data: await Deno.readFile(join(dirname(onnxPath), data)) }]
      : undefined,
  });
  return { ort, session };
}

/**
 * Loads an ONNX model (as written by {@link convertCheckpoint}) on the chosen backend.
 * Throws `GPU_UNAVAILABLE` when `webgpu` is asked for without an adapter, `MODEL_NOT_FOUND`
 * when the file is missing, `BAD_MODEL` when onnxruntime rejects it.
 *
 * @example
 * ```ts
 * import { createRunner } from "./runtime.ts";
 * const net = await createRunner("/tmp/tiny.onnx", { device: "wasm", numThreads: 2 });
 * console.log(net.device, net.bsize); // "wasm" 256
 * await net.dispose();
 * ```
 */
export async function createRunner(onnxPath: string, opts: RunnerOptions = {}): Promise<NetRunner> {
  const batchSize = opts.batchSize ?? 8;
  const device = await resolveDevice(opts.device ?? "auto");
  const cores = navigator.hardwareConcurrency;
  const threads = opts.numThreads ??
    (device === "wasm" ? Math.min(cores, MAX_WASM_THREADS) : cores);
  for (const [k, v] of [["batchSize", batchSize], ["numThreads", threads]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new CellposeError("BAD_PARAMETER", `${k} must be a positive integer, got ${v}`, v);
    }
  }
  try {
    Deno.statSync(onnxPath);
  } catch {
    throw new CellposeError("MODEL_NOT_FOUND", `no ONNX model at ${onnxPath}`, onnxPath);
  }
  let opened: { ort: Ort; session: Session };
  try {
    opened = await openSession(onnxPath, device, threads);
  } catch (e) {
    if (e instanceof CellposeError) throw e;
    throw new CellposeError(
      "BAD_MODEL",
      `onnxruntime (${device}) could not load ${onnxPath}: ${(e as Error).message}`,
      onnxPath,
      { cause: e },
    );
  }
  const { ort, session } = opened;
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  const meta = session.inputMetadata[0] as { shape?: (number | string)[] } | undefined;
  const bsize = typeof meta?.shape?.[3] === "number" ? meta.shape[3] : 256;
  const name = opts.name ?? basename(onnxPath).replace(/\.onnx$/, "");

  return {
    name,
    device,
    bsize,
    async run(tiles: NdArray<Float32Array>): Promise<NdArray<Float32Array>> {
      const [b, c, h, w] = tiles.shape;
      if (tiles.shape.length !== 4 || c !== 3 || h !== bsize || w !== bsize) {
        throw new CellposeError(
          "BAD_SHAPE",
          `tiles must be [B, 3, ${bsize}, ${bsize}], got [${tiles.shape}]`,
          tiles.shape,
        );
      }
      const per = 3 * bsize * bsize;
      const out = new Float32Array(b * per);
      for (let s = 0; s < b; s += batchSize) {
        const n = Math.min(batchSize, b - s);
        const x = new ort.Tensor("float32", tiles.data.subarray(s * per, (s + n) * per), [
          n,
          3,
          bsize,
          bsize,
        ]);
        const result = await session.run({ [input]: x });
        const y = result[output] as OrtCommon.Tensor;
        out.set(y.data as Float32Array, s * per);
        y.dispose();
      }
      return { data: out, shape: [b, 3, bsize, bsize] };
    },
    dispose: () => session.release(),
  };
}
