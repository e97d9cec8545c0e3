/**
 * From a model name or file to a running network: find it (downloading `cpsam` on first use),
 * convert the checkpoint to ONNX once and keep the result beside it, and open an inference
 * session. A converted network is rebuilt when its checkpoint changed: `<onnx>.json` records the
 * checkpoint's size, mtime and SHA-256, and whenever the size or mtime differ the checkpoint is
 * hashed again and checked against the `.sha256` recorded at download.
 *
 * @example
 * ```ts ignore
 * import { loadModel } from "./load.ts";
 * const net = await loadModel("cpsam", { device: "cpu", onProgress: (p) => console.log(p.stage) });
 * console.log(net.name, net.device, net.bsize); // "cpsam" "cpu" 256
 * await net.dispose();
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import { checkCancelled } from "../core/check.ts";
import { statFile } from "../core/fs.ts";
import type { Device, NetRunner } from "../core/types.ts";
import { readChecksumFile, sha256File } from "./checksum.ts";
import { convertCheckpoint } from "./cpsam_graph.ts";
import { checkPrecision } from "./precision.ts";
import { createRunner } from "./runtime.ts";
import {
  GRAPH_VERSION,
  readConversionRecord,
  recordMatches,
  writeConversionRecord,
} from "./conversion.ts";
import { convertedPath, type DownloadModelOptions, type Precision, resolveModel } from "./store.ts";

/** Options of {@link convertModel}. */
export interface ConvertModelOptions extends DownloadModelOptions {
  /**
   * ["fp32"] weights and arithmetic of the ONNX network: `fp16` for GPUs; `int8` (int8 weights
   * for the linear layers, activations quantised on the fly) for CPUs
   */
  precision?: Precision;
  /** [false] convert even when an up-to-date ONNX file exists */
  force?: boolean;
}

/** What {@link convertModel} returns. */
export interface ConvertModelResult {
  /** the ONNX network */
  onnxPath: string;
  /** the checkpoint it was made from */
  checkpoint: string;
  /** the checkpoint's SHA-256 */
  sha256: string;
  /** the precision of the converted network */
  precision: Precision;
  /** true when an up-to-date conversion was found and nothing was built */
  reused: boolean;
}

/** Hashes the checkpoint and checks it against the `.sha256` written when it was downloaded. */
async function verifiedSha256(
  checkpoint: string,
  size: number,
  onProgress: ConvertModelOptions["onProgress"],
): Promise<string> {
  const report = (bytesDone: number) =>
    onProgress?.({ stage: "verify", bytesDone, bytesTotal: size, path: checkpoint });
  report(0);
  const sha256 = await sha256File(checkpoint, report);
  const recorded = await readChecksumFile(checkpoint);
  if (recorded !== undefined && recorded !== sha256) {
    throw new CellposeError(
      "BAD_MODEL",
      `${checkpoint} has SHA-256 ${sha256}, but ${checkpoint}.sha256 recorded ${recorded} when ` +
        `it was downloaded: the file is damaged or was replaced. Delete it and download it ` +
        `again, or, if you replaced it on purpose, delete ${checkpoint}.sha256.`,
      sha256,
    );
  }
  return sha256;
}

/**
 * Converts into a hidden folder beside `onnxPath`, then renames the weights and the model into
 * place: a crash or a second process never leaves a half-written network under the final name.
 */
async function convertInPlace(checkpoint: string, onnxPath: string, precision: Precision) {
  const work = await Deno.makeTempDir({ dir: dirname(onnxPath), prefix: ".converting-" });
  try {
    const built = await convertCheckpoint(checkpoint, join(work, basename(onnxPath)), {
      precision,
    });
    if (built.dataPath) {
      await Deno.rename(built.dataPath, join(dirname(onnxPath), basename(built.dataPath)));
    }
    await Deno.rename(built.onnxPath, onnxPath);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/**
 * Converts a checkpoint (path or cache name; `cpsam` is downloaded if missing) to ONNX beside
 * it, unless an up-to-date conversion exists. Returns where the network is.
 *
 * @example
 * ```ts ignore
 * import { convertModel } from "./load.ts";
 * const out = await convertModel("cpsam", { precision: "fp16" });
 * console.log(out.onnxPath, out.reused); // ".../models/cpsam-fp16.onnx" false
 * ```
 */
export async function convertModel(
  pathOrName: string,
  options: ConvertModelOptions = {},
): Promise<ConvertModelResult> {
  const { precision = "fp32", force = false, onProgress, signal } = options;
  checkPrecision(precision);
  const model = await resolveModel(pathOrName, options);
  if (model.kind === "onnx") {
    throw new CellposeError(
      "BAD_PARAMETER",
      `${model.path} is already an ONNX network: nothing to convert (load it directly)`,
      model.path,
    );
  }
  const checkpoint = model.path;
  const info = await Deno.stat(checkpoint);
  const onnxPath = await convertedPath(checkpoint, precision, options);
  const record = await readConversionRecord(onnxPath);
  const built = record?.checkpoint === checkpoint && record.precision === precision &&
    record.graph === GRAPH_VERSION && (await statFile(onnxPath)) !== undefined;
  if (!force && built && recordMatches(record, info)) {
    return { onnxPath, checkpoint, sha256: record!.sha256, precision, reused: true };
  }
  checkCancelled(signal, `conversion of ${checkpoint}`);
  const sha256 = await verifiedSha256(checkpoint, info.size, onProgress);
  const reused = !force && built && record!.sha256 === sha256; // touched, not changed
  if (!reused) {
    checkCancelled(signal, `conversion of ${checkpoint}`);
    onProgress?.({ stage: "convert", path: onnxPath });
    await convertInPlace(checkpoint, onnxPath, precision);
  }
  await writeConversionRecord(onnxPath, {
    checkpoint,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
    sha256,
    precision,
    graph: GRAPH_VERSION,
  });
  return { onnxPath, checkpoint, sha256, precision, reused };
}

/** Options of {@link loadModel}. */
export interface LoadModelOptions extends ConvertModelOptions {
  /** ["auto"] where the network runs */
  device?: Device;
  /** tiles per session run, passed to the runtime */
  batchSize?: number;
  /** CPU threads of the runtime */
  numThreads?: number;
}

/**
 * Loads a model for inference: a checkpoint path (`.pt`, a cellpose v4 fine-tuned model), an
 * `.onnx` file, a model name in the cache, or `cpsam` (downloaded on first use). Checkpoints are
 * converted once (see {@link convertModel}). Missing files give `MODEL_NOT_FOUND`.
 *
 * @example
 * ```ts ignore
 * import { loadModel } from "./load.ts";
 * const net = await loadModel("cpsam", { device: "webgpu", precision: "fp16" });
 * const out = await net.run({ data: new Float32Array(3 * 256 * 256), shape: [1, 3, 256, 256] });
 * console.log(out.shape); // [1, 3, 256, 256]
 * ```
 */
export async function loadModel(
  pathOrName: string,
  options: LoadModelOptions = {},
): Promise<NetRunner> {
  const { device = "auto", batchSize, numThreads, onProgress, signal } = options;
  checkPrecision(options.precision ?? "fp32");
  const model = await resolveModel(pathOrName, options);
  const onnxPath = model.kind === "onnx"
    ? model.path
    : (await convertModel(model.path, options)).onnxPath;
  checkCancelled(signal, `loading ${model.path}`);
  onProgress?.({ stage: "load", path: onnxPath });
  return await createRunner(onnxPath, { device, name: model.name, batchSize, numThreads });
}
