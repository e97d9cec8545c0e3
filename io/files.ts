/**
 * Finds the files a command works on (cellpose's `io.get_image_files` / `get_label_files`):
 * images from files, folders and glob patterns, and for training each image's label image.
 *
 * {@link collectInputs} turns the inputs named on the command line (files, folders, glob
 * patterns) into the list of image files to process. Globs are expanded here, so `'data/*.tif'` works even when quoted (no
 * shell expansion); folders contribute the images directly inside them (and one level down with
 * `lookOneLevelDown`), skipping cellpose's own outputs (`_cp_masks`, `_seg.npy` ...) and ground
 * truth (`_masks`) so a folder can be re-run in place.
 *
 * @example
 * ```ts
 * import { collectInputs } from "./files.ts";
 * const files = await collectInputs(["../shared/data/dsb2018"], {});
 * console.log(files.length); // 48
 * ```
 * @module
 */
import { glob, stat } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { CellposeError } from "../core/errors.ts";

/** File extensions read as images. */
export const IMAGE_EXTENSIONS = [".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy"];

const OUTPUT_SUFFIXES = ["_masks", "_cp_masks", "_seg", "_flows", "_outlines", "_cp_outlines"];

/** Whether a file name is an image input (not a cellpose output or a mask). */
function isImageInput(path: string, imgFilter = ""): boolean {
  const ext = extname(path).toLowerCase();
  if (!IMAGE_EXTENSIONS.includes(ext)) return false;
  const stem = basename(path).slice(0, -ext.length);
  if (OUTPUT_SUFFIXES.some((s) => stem.endsWith(s))) return false;
  return stem.endsWith(imgFilter);
}

const isGlob = (s: string) => /[*?[\]{}]/.test(s);

async function kind(path: string): Promise<"file" | "dir" | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? "dir" : "file";
  } catch {
    return undefined;
  }
}

async function imagesIn(dir: string, oneLevelDown: boolean, imgFilter: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory && oneLevelDown) out.push(...await imagesIn(path, false, imgFilter));
    else if (!e.isDirectory && isImageInput(e.name, imgFilter)) out.push(path);
  }
  return out.sort();
}

/** Options of {@link collectInputs}. */
export interface CollectOptions {
  /** also take images from the sub-folders of each folder */
  lookOneLevelDown?: boolean;
  /** only images whose name (without extension) ends with this */
  imgFilter?: string;
}

/**
 * Expands files, folders and globs into a sorted, de-duplicated list of image paths. A name that
 * matches nothing throws a `BAD_PARAMETER` {@link CellposeError} naming it, before any work starts.
 *
 * @example
 * ```ts
 * import { collectInputs } from "./files.ts";
 * console.log(await collectInputs(["../shared/data/dsb2018/0*.png"], {}));
 * // ["../shared/data/dsb2018/00071198d059.png", "../shared/data/dsb2018/03f583ec5018.png", ...]
 * ```
 */
export async function collectInputs(
  inputs: readonly string[],
  options: CollectOptions,
): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const k = await kind(input);
    if (k === "file") files.push(input);
    else if (k === "dir") {
      const found = await imagesIn(
        input,
        options.lookOneLevelDown ?? false,
        options.imgFilter ?? "",
      );
      if (!found.length) {
        throw new CellposeError(
          "BAD_PARAMETER",
          `folder ${input} holds no images (${IMAGE_EXTENSIONS.join(", ")})`,
          input,
        );
      }
      files.push(...found);
    } else if (isGlob(input)) {
      const found: string[] = [];
      for await (const f of glob(input)) {
        if (isImageInput(f, options.imgFilter ?? "") && await kind(f) === "file") found.push(f);
      }
      if (!found.length) {
        throw new CellposeError("BAD_PARAMETER", `no image matches the pattern ${input}`, input);
      }
      files.push(...found.sort());
    } else {
      throw new CellposeError("BAD_PARAMETER", `no such file or folder: ${input}`, input);
    }
  }
  return [...new Set(files)];
}

/** An image and its label image, for training. */
export interface TrainingPair {
  /** the image */
  image: string;
  /** its labels (`<name><mask_filter>.tif|.tiff|.png|.npy`) */
  labels: string;
}

/** Options of {@link trainingPairs}. */
export interface PairOptions {
  /** suffix of label files (cellpose's `--mask_filter`, default `_masks`) */
  maskFilter?: string;
  /** only images whose name ends with this, which the label name drops (`--img_filter`) */
  imgFilter?: string;
  /** also take images from sub-folders */
  lookOneLevelDown?: boolean;
}

/**
 * The images of `dir` with their label images, as cellpose's training finds them: for
 * `<stem><img_filter>.<ext>` the labels are `<stem><mask_filter>` with a TIFF, PNG or .npy
 * extension. Throws `BAD_PARAMETER` naming the first image that has no label file, or the folder
 * when it holds no images.
 *
 * @example
 * ```ts
 * import { trainingPairs } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.png`, new Uint8Array(1));
 * await Deno.writeFile(`${dir}/a_masks.tif`, new Uint8Array(1));
 * const pairs = await trainingPairs(dir);
 * if (pairs.length !== 1 || !pairs[0].labels.endsWith("a_masks.tif")) throw new Error("no pair");
 * ```
 */
export async function trainingPairs(
  dir: string,
  options: PairOptions = {},
): Promise<TrainingPair[]> {
  const maskFilter = options.maskFilter ?? "_masks";
  const imgFilter = options.imgFilter ?? "";
  if (await kind(dir) !== "dir") {
    throw new CellposeError("BAD_PARAMETER", `no such folder: ${dir}`, dir);
  }
  const images = (await imagesIn(dir, options.lookOneLevelDown ?? false, imgFilter))
    .filter((f) => !basename(f).slice(0, -extname(f).length).endsWith(maskFilter));
  if (!images.length) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `folder ${dir} holds no images (${IMAGE_EXTENSIONS.join(", ")})`,
      dir,
    );
  }
  const pairs: TrainingPair[] = [];
  for (const image of images) {
    const stem = image.slice(0, -extname(image).length);
    const base = imgFilter ? stem.slice(0, -imgFilter.length) : stem;
    let labels: string | undefined;
    for (const ext of [".tif", ".tiff", ".png", ".npy"]) {
      if (await kind(base + maskFilter + ext) === "file") {
        labels = base + maskFilter + ext;
        break;
      }
    }
    if (!labels) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `${image} has no labels: expected ${basename(base)}${maskFilter}.tif (or .tiff, .png, ` +
          `.npy) beside it (--mask_filter ${maskFilter})`,
        image,
      );
    }
    pairs.push({ image, labels });
  }
  return pairs;
}
