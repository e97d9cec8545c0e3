/**
 * Runs a graph built by {@link Graph} (a training graph: many named float32 inputs and outputs)
 * on onnxruntime: `cpu` = onnxruntime-node, `webgpu` = onnxruntime-web over `navigator.gpu`.
 *
 * @example
 * ```ts
 * import { Graph } from "./autodiff.ts";
 * import { openGraphSession } from "./session.ts";
 * const g = new Graph();
 * const x = g.input("x", [3], true);
 * const loss = g.reduceMeanAll(g.mul(x, x));
 * const [dx] = g.gradients(loss, [x]);
 * const s = await openGraphSession(g.encode([loss, dx], ["loss", "dx"]), { device: "cpu" });
 * const out = await s.run({ x: { data: new Float32Array([1, 2, 3]), shape: [3] } });
 * if (out.dx.data[2] !== 2) throw new Error("d mean(x^2) / dx3 = 2 x3 / 3 = 2");
 * await s.release();
 * ```
 * @module
 */
import type * as OrtCommon from "onnxruntime-web";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { requestGpuAdapter } from "../kernels/gpu.ts";

type Ort = typeof OrtCommon;

/** Where a training graph runs. */
export type TrainDevice = "cpu" | "webgpu";

/** Options of {@link openGraphSession}. */
export interface GraphSessionOptions {
  /** backend (default `cpu`) */
  device?: TrainDevice;
  /** CPU threads (default: all logical cores) */
  numThreads?: number;
}

/** A loaded graph: run it with float32 inputs by name, get every output by name. */
export interface GraphSession {
  /** the backend it runs on */
  readonly device: TrainDevice;
  /** names of the graph outputs */
  readonly outputNames: readonly string[];
  /** runs the graph */
  run(feeds: Record<string, NdArray<Float32Array>>): Promise<Record<string, NdArray<Float32Array>>>;
  /** frees the session */
  release(): Promise<void>;
}

/**
 * Loads ONNX model bytes into an onnxruntime session. Throws `GPU_UNAVAILABLE` for `webgpu`
 * without an adapter and `BAD_MODEL` when onnxruntime rejects the graph.
 */
export async function openGraphSession(
  model: Uint8Array,
  opts: GraphSessionOptions = {},
): Promise<GraphSession> {
  const device = opts.device ?? "cpu";
  let ort: Ort;
  let session: OrtCommon.InferenceSession;
  try {
    if (device === "cpu") {
      ort = await import("onnxruntime-node") as unknown as Ort;
      session = await ort.InferenceSession.create(model, {
        executionProviders: ["cpu"],
        intraOpNumThreads: opts.numThreads ?? navigator.hardwareConcurrency,
        graphOptimizationLevel: "all",
        // idle intra-op threads sleep instead of spinning: between the graph's many short
        // kernels and during the host's work (AdamW, augmentation) spinning threads burn the
        // cores the other thread (and other processes) need: 20-30% of a step's CPU time
        extra: { session: { intra_op: { allow_spinning: "0" } } },
      });
    } else if (device === "webgpu") {
      if (!await requestGpuAdapter()) {
        throw new CellposeError(
          "GPU_UNAVAILABLE",
          "device webgpu was asked for but navigator.gpu offers no adapter",
          device,
        );
      }
      ort = await import("onnxruntime-web/webgpu") as unknown as Ort;
      session = await ort.InferenceSession.create(model, {
        executionProviders: ["webgpu"],
        graphOptimizationLevel: "all",
      });
    } else {
      throw new CellposeError(
        "BAD_PARAMETER",
        `training device must be "cpu" or "webgpu", got ${JSON.stringify(device)}`,
        device,
      );
    }
  } catch (e) {
    if (e instanceof CellposeError) throw e;
    throw new CellposeError(
      "BAD_MODEL",
      `onnxruntime (${device}) could not load the training graph: ${(e as Error).message}`,
      device,
      { cause: e },
    );
  }
  return {
    device,
    outputNames: session.outputNames,
    async run(feeds) {
      const inputs: Record<string, OrtCommon.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) {
        inputs[k] = new ort.Tensor("float32", v.data, v.shape);
      }
      const result = await session.run(inputs);
      const out: Record<string, NdArray<Float32Array>> = {};
      for (const [k, t] of Object.entries(result)) {
        out[k] = { data: await t.getData() as Float32Array, shape: [...t.dims] };
        t.dispose();
      }
      return out;
    },
    release: () => session.release(),
  };
}
