/**
 * The model options shared by `segment` and `serve` (`--pretrained_model`, `--device`, `--fp16`,
 * `--quantize`)
 * and loading the model once for a run, with progress on stderr and, when the weights are
 * missing, a message that says exactly how to get them.
 *
 * @example
 * ```ts
 * import { loadModelForCli } from "./model.ts";
 * import { createProgress } from "./progress.ts";
 * const model = await loadModelForCli(
 *   { pretrained_model: "../shared/fixtures/tiny-cpsam.pt", device: "auto", fp16: false },
 *   createProgress({ total: 1 }),
 * );
 * await model.dispose();
 * ```
 * @module
 */
import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { Device, NetRunner } from "../core/types.ts";
import {
  loadModel,
  MODEL_REGISTRY,
  type ModelProgress,
  modelsDir,
  type Precision,
} from "../mod.ts";
import type { ProgressReporter } from "./progress.ts";

/** `--pretrained_model`, `--device`, `--fp16`, `--quantize`. */
export const modelOptions = {
  pretrained_model: {
    kind: "string",
    placeholder: "NAME|PATH",
    default: "cpsam",
    description: "model: a name in the model folder (see `cellpose models list`) or the path of " +
      "a cellpose checkpoint (.pt, fine-tuned models too) or .onnx file",
    group: "Model",
  },
  device: {
    kind: "string",
    choices: ["auto", "webgpu", "wasm", "cpu"],
    default: "auto",
    description: "where the network runs: webgpu (GPU), wasm or cpu; auto picks WebGPU " +
      "when a GPU is present",
    group: "Model",
  },
  fp16: {
    kind: "boolean",
    description: "run the network in half precision (faster on GPUs, tiny differences)",
    group: "Model",
  },
  quantize: {
    kind: "string",
    choices: ["none", "int8"],
    default: "none",
    description: "int8: int8 weights for the linear layers, activations quantised on the fly " +
      "(about 2x faster on CPUs with VNNI; small differences, see the README)",
    group: "Model",
  },
} as const;

/** The parsed values of {@link modelOptions}. */
export interface ModelArgs {
  pretrained_model: string;
  device: Device;
  fp16: boolean;
  /** ["none"] */
  quantize?: "none" | "int8";
}

/**
 * The network precision the flags ask for; `--fp16` with `--quantize int8` is refused.
 *
 * @example
 * ```ts
 * import { precisionOf } from "./model.ts";
 * const p = precisionOf({ fp16: false, quantize: "int8" });
 * if (p !== "int8") throw new Error(p);
 * ```
 */
export function precisionOf(args: Pick<ModelArgs, "fp16" | "quantize">): Precision {
  const int8 = args.quantize === "int8";
  if (int8 && args.fp16) {
    throw new CellposeError(
      "BAD_PARAMETER",
      "--fp16 and --quantize int8 exclude each other: choose one precision",
      "--fp16",
    );
  }
  return int8 ? "int8" : args.fp16 ? "fp16" : "fp32";
}

const MB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(0)} MB`;

/**
 * A model progress callback: one line in the log per stage (download, verify, convert, load)
 * and, on a terminal, a passing line with the bytes done, the total and the rate.
 *
 * @example
 * ```ts ignore
 * import { downloadModel } from "../mod.ts";
 * import { reportModelProgress } from "./model.ts";
 * import { createProgress } from "./progress.ts";
 * await downloadModel("cpsam", { onProgress: reportModelProgress(createProgress({ total: 1 })) });
 * ```
 */
export function reportModelProgress(progress: ProgressReporter): (p: ModelProgress) => void {
  let stage = "";
  return (p) => {
    if (p.stage !== stage) {
      stage = p.stage;
      progress.note(`model: ${p.stage}${p.path ? ` ${p.path}` : ""}`);
      return;
    }
    const done = p.bytesDone !== undefined ? mb(p.bytesDone) : "";
    const total = p.bytesTotal ? ` / ${mb(p.bytesTotal)}` : "";
    const rate = p.bytesPerSecond ? `  ${(p.bytesPerSecond / MB).toFixed(1)} MB/s` : "";
    progress.status(`model: ${p.stage} ${done}${total}${rate}`);
  };
}

/** How to get the official weights by hand, for the error when they cannot be downloaded. */
function weightsHelp(name: string): string {
  const url = MODEL_REGISTRY[name]?.url;
  const dest = join(modelsDir(), name);
  return [
    "To get the weights:",
    url ? `  1. download ${url} (about 1.2 GB) on a machine with internet access,` : "",
    `  ${url ? "2" : "1"}. copy the file to ${dest}`,
    "     (or set CELLPOSE_LOCAL_MODELS_PATH to the folder that holds it),",
    "  or pass the file directly: --pretrained_model /path/to/" + name,
  ].filter((l) => l).join("\n");
}

/**
 * A missing or undownloadable official model's error with {@link weightsHelp} appended, unless
 * its message already gives the download URL; other errors unchanged.
 *
 * @example
 * ```ts
 * import { CellposeError } from "../core/errors.ts";
 * import { withWeightsHelp } from "./model.ts";
 * const e = withWeightsHelp(new CellposeError("DOWNLOAD_FAILED", "offline"), "cpsam");
 * console.log(e.message); // "offline\nTo get the weights:\n  1. download https://..."
 * ```
 */
export function withWeightsHelp(e: CellposeError, name: string): CellposeError {
  const url = MODEL_REGISTRY[name]?.url;
  const missing = e.code === "DOWNLOAD_FAILED" || e.code === "MODEL_NOT_FOUND";
  if (!missing || url === undefined || e.message.includes(url)) return e;
  return new CellposeError(e.code, `${e.message}\n${weightsHelp(name)}`, e.value, { cause: e });
}

/**
 * Loads the model named by the options once, reporting download / conversion progress. A model
 * that cannot be found or downloaded is rethrown with {@link weightsHelp} appended.
 *
 * @example
 * ```ts ignore
 * import { loadModelForCli } from "./model.ts";
 * import { createProgress } from "./progress.ts";
 * const net = await loadModelForCli(
 *   { pretrained_model: "cpsam", device: "auto", fp16: false },
 *   createProgress({ total: 1 }),
 * );
 * ```
 */
export async function loadModelForCli(
  args: ModelArgs,
  progress: ProgressReporter,
): Promise<NetRunner> {
  const started = performance.now();
  try {
    const model = await loadModel(args.pretrained_model, {
      device: args.device,
      precision: precisionOf(args),
      onProgress: reportModelProgress(progress),
    });
    progress.note(
      `model: ${model.name} on ${model.device} ready in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
    );
    return model;
  } catch (e) {
    throw e instanceof CellposeError ? withWeightsHelp(e, args.pretrained_model) : e;
  }
}
