/**
 * The plan of a block-wise run shared by every machine: which image (path and identity), the block
 * layout, the segmentation options with the whole image's normalisation already taken (so every
 * block is normalised alike, as in one pass), the model to use, the work folder where block
 * results go and the label outputs. It is plain JSON (`cellpose plan --out plan.json`, or a Redis
 * key), identified by the hash of its content; the image and the folders are on storage every
 * machine sees.
 *
 * @example
 * ```ts ignore
 * import { createRunPlan, writeRunPlan } from "./run_plan.ts";
 * const plan = await createRunPlan("/shared/slide.tif", {
 *   workDir: "/shared/slide_blocks",
 *   outputs: [{ kind: "tiff", path: "/shared/slide_cp_masks.tif" }],
 *   options: { diameter: 30 },
 *   blockSize: 2048,
 * });
 * await writeRunPlan("/shared/plan.json", plan);
 * console.log(plan.id, plan.blocks.blockSize);
 * ```
 * @module
 */
import { resolve } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { SegmentOptions } from "../core/types.ts";
import { openImageSource, type OpenSource } from "../io/image_source.ts";
import { type BlockPlan, planBlocks } from "../pipeline/blocks.ts";
import { imageNormalization } from "../pipeline/normalize.ts";

/** What identifies the image a plan was made for. */
export interface ImageIdentity {
  /** absolute path of the TIFF file or OME-Zarr folder */
  path: string;
  /** a TIFF file or an OME-Zarr folder */
  kind: "tiff" | "zarr";
  /** image height in pixels */
  height: number;
  /** image width in pixels */
  width: number;
  /** samples per pixel */
  channels: number;
  /** bytes of the TIFF, or of the Zarr level's metadata file */
  bytes: number;
  /** modification time (ms since 1970) of the same file */
  mtime: number;
}

/** A label output of a run. */
export type RunOutput =
  | { kind: "tiff"; path: string; compression?: "none" | "deflate" }
  | { kind: "zarr"; image: string; name: string };

/** The segmentation options a block job takes (JSON: no model, no callbacks). */
export type PlannedOptions = Omit<SegmentOptions, "onProgress" | "signal" | "frame"> & {
  zeroChannels?: number[];
};

/** The plan of a block-wise run (see the module doc). */
export interface RunPlan {
  /** what the file is */
  format: "cellpose-run-plan";
  /** the plan format's version */
  version: 1;
  /** hash of everything below: block results carry it */
  id: string;
  /** the image the plan was made for */
  image: ImageIdentity;
  /** the layout; `blocks.blocks` is recomputed from it by {@link blockPlanOf} */
  blocks: { height: number; width: number; blockSize: number; halo: number; count: number };
  /** the segmentation options of every block */
  options: PlannedOptions;
  /** model name or path as given (a worker's own --pretrained_model wins) */
  model: string;
  /** absolute folder of the block results */
  workDir: string;
  /** the label outputs the merge writes */
  outputs: RunOutput[];
}

/** Options of {@link createRunPlan}. */
export interface CreatePlanOptions {
  /** the folder of the block results */
  workDir: string;
  /** the label outputs the merge writes */
  outputs: RunOutput[];
  /** segmentation options (2-D only), as for `segmentLarge` */
  options?: PlannedOptions;
  /** ["cpsam"] */
  model?: string;
  /** [the segmentLarge default] block side in pixels */
  blockSize?: number;
  /** [the segmentLarge default] pixels of context around each block */
  halo?: number;
}

/** The identity of an open image: its geometry and its file's size and time. */
export async function imageIdentity(source: OpenSource): Promise<ImageIdentity> {
  const path = resolve(source.path);
  const file = source.kind === "tiff" ? path : zarrLevelMetadata(source);
  const st = await Deno.stat(file);
  return {
    path,
    kind: source.kind,
    height: source.height,
    width: source.width,
    channels: source.channels,
    bytes: st.size,
    mtime: st.mtime?.getTime() ?? 0,
  };
}

/** The metadata file of an OME-Zarr source's full-resolution array. */
function zarrLevelMetadata(source: OpenSource): string {
  const { info } = source as unknown as { info: { level: string; zarrFormat: 2 | 3 } };
  const dir = resolve(source.path, info.level);
  return info.zarrFormat === 3 ? `${dir}/zarr.json` : `${dir}/.zarray`;
}

/** SHA-256 of the plan's content (without its id), first 16 hex digits. */
async function planId(plan: Omit<RunPlan, "id">): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify({ ...plan, id: undefined }));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...hash.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Plans a block-wise run of the image at `imagePath` (TIFF or OME-Zarr): the block layout and the
 * whole image's normalisation (one read pass over the image). Throws BAD_PARAMETER for stack
 * options, tile normalisation or a bad layout, BAD_FILE for an unreadable image.
 */
export async function createRunPlan(
  imagePath: string,
  options: CreatePlanOptions,
): Promise<RunPlan> {
  const o = options.options ?? {};
  if (o.do3D || (o.stitchThreshold ?? 0) > 0 || o.zAxis !== undefined) {
    throw new CellposeError(
      "BAD_PARAMETER",
      "a block-wise run segments 2-D images only (no --do_3D, --stitch_threshold)",
      o,
    );
  }
  if (!options.outputs.length) {
    throw new CellposeError("BAD_PARAMETER", "a run needs at least one label output", []);
  }
  const source = await openImageSource(imagePath);
  try {
    const layout = planBlocks(source.height, source.width, options);
    const norm = await imageNormalization(source, layout, o);
    const { channelAxis: _c, ...rest } = o;
    const body: Omit<RunPlan, "id"> = {
      format: "cellpose-run-plan",
      version: 1,
      image: await imageIdentity(source),
      blocks: {
        height: layout.height,
        width: layout.width,
        blockSize: layout.blockSize,
        halo: layout.halo,
        count: layout.blocks.length,
      },
      options: { ...rest, ...norm },
      model: options.model ?? "cpsam",
      workDir: resolve(options.workDir),
      outputs: options.outputs.map((out) =>
        out.kind === "tiff"
          ? { ...out, path: resolve(out.path) }
          : { ...out, image: resolve(out.image) }
      ),
    };
    // JSON round trip: what is hashed is exactly what is stored
    const stored = JSON.parse(JSON.stringify(body));
    return { ...stored, id: await planId(stored) };
  } finally {
    await source.close();
  }
}

/** The block layout of a plan. */
export function blockPlanOf(plan: RunPlan): BlockPlan {
  const { height, width, blockSize, halo } = plan.blocks;
  return planBlocks(height, width, { blockSize, halo });
}

/** Writes `plan` as JSON to `path` (through a temporary file, so no reader sees half of it). */
export async function writeRunPlan(path: string, plan: RunPlan): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, JSON.stringify(plan, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

/**
 * Reads and checks a plan (from a file path, or its JSON text with `fromText`). Throws BAD_FILE
 * naming the file when it is not a cellpose run plan or was edited (its id no longer matches).
 */
export async function readRunPlan(path: string, fromText?: string): Promise<RunPlan> {
  let text = fromText;
  if (text === undefined) {
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new CellposeError("BAD_FILE", `${path}: cannot read (${(e as Error).message})`, path);
    }
  }
  let plan: RunPlan;
  try {
    plan = JSON.parse(text);
  } catch (e) {
    throw new CellposeError("BAD_FILE", `${path}: not JSON (${(e as Error).message})`, path);
  }
  if (plan?.format !== "cellpose-run-plan" || plan.version !== 1) {
    throw new CellposeError(
      "BAD_FILE",
      `${path}: not a cellpose run plan (made by \`cellpose plan\`)`,
      path,
    );
  }
  const { id, ...body } = plan;
  if ((await planId(body)) !== id) {
    throw new CellposeError(
      "BAD_FILE",
      `${path}: the plan was edited after planning (its id ${id} no longer matches); plan again`,
      path,
    );
  }
  return plan;
}

function describe(i: ImageIdentity): string {
  return `${i.path} (${i.kind}, ${i.height} x ${i.width} x ${i.channels}, ${i.bytes} bytes, ` +
    `modified ${new Date(i.mtime).toISOString()})`;
}

/**
 * Opens the plan's image and checks it is still the image the plan was made for (same geometry,
 * size and modification time). Throws BAD_FILE naming both when it is not.
 */
export async function openPlannedImage(plan: RunPlan): Promise<OpenSource> {
  const source = await openImageSource(plan.image.path);
  const now = await imageIdentity(source);
  const was = plan.image;
  const same = now.kind === was.kind && now.height === was.height && now.width === was.width &&
    now.channels === was.channels && now.bytes === was.bytes && now.mtime === was.mtime;
  if (!same) {
    await source.close();
    throw new CellposeError(
      "BAD_FILE",
      `the plan ${plan.id} was made for ${describe(was)}, but that image is now ${
        describe(now)
      }: plan again`,
      now.path,
    );
  }
  return source;
}
