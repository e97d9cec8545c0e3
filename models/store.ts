/**
 * The model cache, laid out as cellpose does: `$CELLPOSE_LOCAL_MODELS_PATH` or
 * `~/.cellpose/models`, one file per checkpoint (`cpsam`, fine-tuned models), with the files
 * made from it beside it:
 *
 * ```
 * cpsam                 the torch checkpoint (downloaded or copied in by hand)
 * cpsam.sha256          its SHA-256, written after a verified download
 * cpsam.onnx(.data)     the converted network, fp32 (+ external weights)
 * cpsam-fp16.onnx(.data) the fp16 variant
 * cpsam.onnx.json       what the ONNX file was converted from (checkpoint size, mtime, SHA-256,
 *                       graph builder version)
 * ```
 *
 * This module finds, lists and downloads models; {@link ./load.ts} converts and loads them.
 *
 * @example
 * ```ts ignore
 * import { listModels, modelsDir, resolveModel } from "./store.ts";
 * console.log(modelsDir()); // "/home/me/.cellpose/models"
 * const model = await resolveModel("cpsam", { onProgress: (p) => console.log(p.bytesDone) });
 * console.log(model.path, (await listModels()).map((m) => m.name));
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CellposeError } from "../core/errors.ts";
import { statFile } from "../core/fs.ts";
import { readChecksumFile, sha256File } from "./checksum.ts";
import { readConversionRecord, recordMatches } from "./conversion.ts";
import { downloadFile, type DownloadResult, type ModelProgress } from "./download.ts";
import { type Precision, PRECISIONS, precisionSuffix } from "./precision.ts";

export type { Precision } from "./precision.ts";

/** A downloadable model: where it lives and, when known, its size and SHA-256. */
export interface RegistryEntry {
  /** where to download it */
  url: string;
  /** its size in bytes, when recorded */
  size?: number;
  /** its hex SHA-256, when recorded */
  sha256?: string;
}

/** Where the official cellpose v4 models are served from (cellpose's `_MODEL_URL`). */
const OFFICIAL_MODEL_URL = "https://huggingface.co/mouseland/cellpose-sam/resolve/main";

/**
 * Models that {@link downloadModel} knows. The size and SHA-256 of the official `cpsam` are
 * not recorded here: the download checks the server's `Content-Length` and records the SHA-256
 * it computed in `cpsam.sha256`, which every later conversion checks.
 */
export const MODEL_REGISTRY: Readonly<Record<string, RegistryEntry>> = {
  cpsam: { url: `${OFFICIAL_MODEL_URL}/cpsam` },
};

/**
 * Models shipped with cellpose-deno, trained by the project itself: `pretrained/<name>/<name>.pt`
 * (a cellpose state dict; its model card `pretrained/<name>/README.md`). They resolve with no
 * network and no cache; a file of the same name in the cache takes precedence.
 */
export const BUNDLED_MODELS: readonly string[] = ["nuclei"];

/** Path of bundled model `name` in this checkout, or `undefined` when it is not one. */
export function bundledModelPath(name: string): string | undefined {
  if (!BUNDLED_MODELS.includes(name)) return undefined;
  const url = new URL(`../pretrained/${name}/${name}.pt`, import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url) : undefined;
}

/** Options shared by the store functions. */
export interface StoreOptions {
  /** cache folder; default {@link modelsDir} */
  cacheDir?: string;
}

/** Options of {@link downloadModel}. */
export interface DownloadModelOptions extends StoreOptions {
  /** server folder to fetch `<baseUrl>/<name>` from; default `$CELLPOSE_MODEL_URL`, else the registry URL */
  baseUrl?: string;
  /** expected size in bytes (overrides the registry) */
  size?: number;
  /** expected hex SHA-256 (overrides the registry) */
  sha256?: string;
  /** [3] automatic resumes of a broken transfer */
  retries?: number;
  /** progress events: stage "download" with bytes and rate */
  onProgress?: (p: ModelProgress) => void;
  /** cancels the download; the `.part` file is kept for a resume */
  signal?: AbortSignal;
}

/**
 * The model cache folder: `$CELLPOSE_LOCAL_MODELS_PATH`, else `~/.cellpose/models` (as cellpose).
 *
 * @example
 * ```ts
 * import { modelsDir } from "./store.ts";
 * console.log(modelsDir()); // "/home/me/.cellpose/models"
 * ```
 */
export function modelsDir(): string {
  return Deno.env.get("CELLPOSE_LOCAL_MODELS_PATH") || join(homedir(), ".cellpose", "models");
}

function cacheOf(options: StoreOptions): string {
  return options.cacheDir ?? modelsDir();
}

function isName(s: string): boolean {
  return s !== "" && !/[\\/]/.test(s) && s !== "." && s !== "..";
}

/**
 * Downloads model `name` (default `cpsam`) into the cache unless it is already there, and
 * returns its path, size and SHA-256.
 *
 * @example
 * ```ts ignore
 * import { downloadModel } from "./store.ts";
 * const got = await downloadModel("cpsam", {
 *   onProgress: (p) => console.log(`${p.bytesDone}/${p.bytesTotal} at ${p.bytesPerSecond} B/s`),
 * });
 * console.log(got.path); // "/home/me/.cellpose/models/cpsam"
 * ```
 */
export async function downloadModel(
  name = "cpsam",
  options: DownloadModelOptions = {},
): Promise<DownloadResult> {
  const baseUrl = options.baseUrl ?? Deno.env.get("CELLPOSE_MODEL_URL");
  const entry = MODEL_REGISTRY[name];
  if (!isName(name) || (entry === undefined && !baseUrl)) {
    throw new CellposeError(
      "MODEL_NOT_FOUND",
      `no downloadable model "${name}": known names are ${Object.keys(MODEL_REGISTRY)} ` +
        `(or set CELLPOSE_MODEL_URL to a server that has it)`,
      name,
    );
  }
  const url = baseUrl ? `${baseUrl.replace(/\/+$/, "")}/${name}` : entry.url;
  const dest = join(cacheOf(options), name);
  const size = options.size ?? entry?.size;
  const sha256 = options.sha256 ?? entry?.sha256;
  const existing = await statFile(dest);
  if (existing) {
    const known = (await readChecksumFile(dest)) ?? (await sha256File(dest));
    if (sha256 !== undefined && known !== sha256.toLowerCase()) {
      throw new CellposeError(
        "BAD_MODEL",
        `the cached ${dest} has SHA-256 ${known}, expected ${sha256.toLowerCase()}: delete it ` +
          `(and ${dest}.sha256) to download it again`,
        known,
      );
    }
    return { path: dest, size: existing.size, sha256: known };
  }
  return await downloadFile(url, dest, { ...options, size, sha256 });
}

/** A model located by {@link resolveModel}. */
export interface ResolvedModel {
  /** short name: the file name without `.pt`, `.pth` or `.onnx` */
  name: string;
  /** absolute path of the file */
  path: string;
  /** a torch checkpoint to convert, or a ready ONNX network */
  kind: "checkpoint" | "onnx";
}

/** Options of {@link resolveModel}. */
export interface ResolveOptions extends DownloadModelOptions {
  /** [true] download a registry model (e.g. `cpsam`) that is not in the cache */
  download?: boolean;
}

function located(path: string): ResolvedModel {
  const onnx = path.endsWith(".onnx");
  return { name: modelName(path), path: resolve(path), kind: onnx ? "onnx" : "checkpoint" };
}

/** Name of a model file: its base name without `.pt`, `.pth` or `.onnx`. */
export function modelName(path: string): string {
  return basename(path).replace(/\.(pt|pth|onnx)$/, "");
}

/**
 * Finds a model from what a user typed: the path of a checkpoint (`.pt`, a cellpose v4
 * fine-tuned model file) or an `.onnx` file; else a name in the cache (a file of that name, or
 * with `.pt`, `.pth` or `.onnx` added, as {@link listModels} names them); else a registry name,
 * downloaded on first use (`cpsam`). Throws `MODEL_NOT_FOUND` saying what to do.
 *
 * @example
 * ```ts ignore
 * import { resolveModel } from "./store.ts";
 * console.log(await resolveModel("cpsam")); // { name: "cpsam", path: ".../models/cpsam", kind: "checkpoint" }
 * console.log(await resolveModel("./models/my_finetuned")); // a file path
 * ```
 */
export async function resolveModel(
  pathOrName: string,
  options: ResolveOptions = {},
): Promise<ResolvedModel> {
  const expanded = pathOrName.replace(/^~(?=$|[\\/])/, homedir());
  if (await statFile(expanded)) return located(expanded);
  const cache = cacheOf(options);
  const names = isName(pathOrName);
  if (names) {
    // the names GET /v1/models and `cellpose models list` show: file names less the extension
    for (const ext of ["", ".pt", ".pth", ".onnx"]) {
      const file = pathOrName + ext;
      if (await statFile(join(cache, file))) return located(join(cache, file));
    }
    const bundled = bundledModelPath(pathOrName);
    if (bundled && await statFile(bundled)) return located(bundled);
    const downloadable = MODEL_REGISTRY[pathOrName] !== undefined ||
      !!(options.baseUrl ?? Deno.env.get("CELLPOSE_MODEL_URL"));
    if (downloadable && options.download !== false) {
      return located((await downloadModel(pathOrName, options)).path);
    }
  }
  const cached = (await listModels({ cacheDir: cache })).map((m) => m.name);
  throw new CellposeError(
    "MODEL_NOT_FOUND",
    names
      ? `model "${pathOrName}" is neither a file nor a model in the cache ${cache} ` +
        `(models there, shipped or downloadable: ${
          cached.join(", ") || "none"
        }). Pass the path of a ` +
        `cellpose checkpoint or .onnx file, or copy the model file into ${cache}.`
      : `model file ${resolve(expanded)} not found. Pass the path of a cellpose checkpoint ` +
        `(cpsam or a fine-tuned model) or an .onnx file, or a model name from ` +
        `\`cellpose models list\` (cache: ${cache}).`,
    pathOrName,
  );
}

/**
 * Where the network converted from `checkpoint` at `precision` lives: beside the checkpoint
 * (`<name>.onnx`, `<name>-fp16.onnx`, `<name>-int8.onnx`) when it is in the cache folder; for a checkpoint elsewhere
 * (a user's file, a read-only folder) in `<cache>/converted/<tag>/`, so nothing is ever written
 * next to files the user brought.
 *
 * @example
 * ```ts
 * import { convertedPath } from "./store.ts";
 * console.log(await convertedPath("/home/me/.cellpose/models/cpsam", "fp16"));
 * // "/home/me/.cellpose/models/cpsam-fp16.onnx"
 * ```
 */
export async function convertedPath(
  checkpoint: string,
  precision: Precision,
  options: StoreOptions = {},
): Promise<string> {
  const path = convertedLocation(checkpoint, precision, options);
  await Deno.mkdir(dirname(path), { recursive: true });
  return path;
}

/** {@link convertedPath} without creating its folder (for listing). */
function convertedLocation(
  checkpoint: string,
  precision: Precision,
  options: StoreOptions,
): string {
  const file = `${modelName(checkpoint)}${precisionSuffix(precision)}.onnx`;
  const dir = dirname(resolve(checkpoint));
  if (dir === resolve(cacheOf(options))) return join(dir, file);
  const tag = createHash("sha256").update(dir).digest("hex").slice(0, 8);
  return join(cacheOf(options), "converted", tag, file);
}

/** A converted variant of a model, as listed by {@link listModels}. */
export interface ModelVariant {
  /** the precision it was converted to */
  precision: Precision;
  /** the `.onnx` file */
  path: string;
  /** bytes of the `.onnx` file and its external data */
  size: number;
  /** false when the checkpoint changed since, or an older graph builder made it (the next load rebuilds it) */
  current: boolean;
}

/** A model in the cache or the registry, as listed by {@link listModels}. */
export interface ModelInfo {
  /** the model's name */
  name: string;
  /** the model file (where it is or would be downloaded to) */
  path: string;
  /** a torch checkpoint, or an ONNX network copied into the cache on its own */
  kind: "checkpoint" | "onnx";
  /** the file is in the cache, or shipped with cellpose-deno */
  downloaded: boolean;
  /** shipped with cellpose-deno (`pretrained/<name>/`), see {@link BUNDLED_MODELS} */
  bundled?: boolean;
  /** file size in bytes, when downloaded or known */
  size?: number;
  /** download URL for registry models */
  url?: string;
  /** SHA-256 from the `.sha256` sidecar or the registry */
  sha256?: string;
  /** at least one converted variant exists */
  converted: boolean;
  /** the converted networks in the cache */
  variants: ModelVariant[];
}

/** Files in the cache that are not models: sidecars, partial downloads, cellpose v3 size models. */
const NOT_MODELS = /\.(data|json|sha256|part|npy)$|^\./;

async function variantOf(
  path: string,
  info: Deno.FileInfo,
  precision: Precision,
): Promise<ModelVariant | undefined> {
  const onnx = await statFile(path);
  if (!onnx) return undefined;
  const data = await statFile(`${path}.data`);
  const current = recordMatches(await readConversionRecord(path), info);
  return { precision, path, size: onnx.size + (data?.size ?? 0), current };
}

/**
 * Lists the models in the cache folder and the downloadable ones, with their converted variants.
 *
 * @example
 * ```ts
 * import { listModels } from "./store.ts";
 * for (const m of await listModels()) {
 *   console.log(m.name, m.downloaded, m.size, m.variants.map((v) => v.precision));
 * }
 * ```
 */
export async function listModels(options: StoreOptions = {}): Promise<ModelInfo[]> {
  const cache = cacheOf(options);
  const models = new Map<string, ModelInfo>();
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(cache)) {
      if (e.isFile && !NOT_MODELS.test(e.name)) files.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const checkpoints = new Set(files.filter((f) => !f.endsWith(".onnx")));
  const converted = (f: string) =>
    checkpoints.has(f.replace(/(-fp16|-int8)?\.onnx$/, "")) || checkpoints.has(`${f}.pt`);
  for (const file of files.sort()) {
    if (file.endsWith(".onnx") && converted(file)) continue;
    const path = join(cache, file);
    const name = modelName(file);
    const info = (await statFile(path))!;
    const kind = file.endsWith(".onnx") ? "onnx" : "checkpoint";
    const variants = [];
    for (const p of kind === "checkpoint" ? PRECISIONS : []) {
      const v = await variantOf(convertedLocation(path, p, { cacheDir: cache }), info, p);
      if (v) variants.push(v);
    }
    models.set(name, {
      name,
      path,
      kind,
      downloaded: true,
      size: info.size,
      url: MODEL_REGISTRY[name]?.url,
      sha256: (await readChecksumFile(path)) ?? MODEL_REGISTRY[name]?.sha256,
      converted: variants.length > 0,
      variants,
    });
  }
  for (const name of BUNDLED_MODELS) {
    const path = bundledModelPath(name);
    const info = path && !models.has(name) ? await statFile(path) : undefined;
    if (!path || !info) continue;
    const variants = [];
    for (const p of PRECISIONS) {
      const v = await variantOf(convertedLocation(path, p, { cacheDir: cache }), info, p);
      if (v) variants.push(v);
    }
    models.set(name, {
      name,
      path,
      kind: "checkpoint",
      downloaded: true,
      bundled: true,
      size: info.size,
      converted: variants.length > 0,
      variants,
    });
  }
  for (const [name, entry] of Object.entries(MODEL_REGISTRY)) {
    if (models.has(name)) continue;
    models.set(name, {
      name,
      path: join(cache, name),
      kind: "checkpoint",
      downloaded: false,
      size: entry.size,
      url: entry.url,
      sha256: entry.sha256,
      converted: false,
      variants: [],
    });
  }
  return [...models.values()];
}
