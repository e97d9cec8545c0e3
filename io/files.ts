/**
 * Finds the files a command works on (cellpose's `io.get_image_files` / `get_label_files`):
 * images from files, folders and glob patterns (segment), for training each image's label image
 * (train), and the predicted / true label pairs of `eval`.
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

/** Whether `path` is a file or a folder (following links), or `undefined` when it is neither. */
export async function pathKind(path: string): Promise<"file" | "dir" | undefined> {
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
    const k = await pathKind(input);
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
        if (isImageInput(f, options.imgFilter ?? "") && await pathKind(f) === "file") found.push(f);
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
  if (await pathKind(dir) !== "dir") {
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
      if (await pathKind(base + maskFilter + ext) === "file") {
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

/** One predicted / true label image pair of `cellpose eval`. */
export interface EvalPair {
  /** the image's name (the ground truth's stem without `_masks`) */
  name: string;
  /** the predicted labels */
  pred: string;
  /** the true labels */
  gt: string;
}

/** The label files directly in `dir` (links count as the files they point to), sorted. */
export async function labelFilesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase())) continue;
    // a link counts as the file it points to (folders of links, like a train/val split)
    if (e.isFile || (e.isSymlink && await pathKind(join(dir, e.name)) === "file")) out.push(e.name);
  }
  return out.sort();
}

/**
 * Pairs the ground truth of `gtDir` (its `<name>_masks.*` files, else every label file) with the
 * predictions of `predDir` named by cellpose's rule (`<name>_cp_masks.*`, else the same name or
 * `<name>_masks.*`); returns the pairs and the ground-truth files without a prediction.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { evalPairs } from "./files.ts";
 * const [pred, gt] = [await Deno.makeTempDir(), await Deno.makeTempDir()];
 * for (const f of ["a_masks.tif", "b_masks.png"]) await Deno.writeFile(`${gt}/${f}`, new Uint8Array(1));
 * await Deno.writeFile(`${pred}/a_cp_masks.tif`, new Uint8Array(1));
 * const { pairs, missing } = await evalPairs(pred, gt);
 * assertEquals([pairs.map((p) => p.name), missing], [["a"], ["b_masks.png"]]);
 * ```
 */
export async function evalPairs(
  predDir: string,
  gtDir: string,
): Promise<{ pairs: EvalPair[]; missing: string[] }> {
  const stemOf = (f: string) => basename(f).slice(0, -extname(f).length);
  const predFiles = new Set(await labelFilesIn(predDir));
  const gtAll = await labelFilesIn(gtDir);
  const masks = gtAll.filter((f) => /(?<!_cp)_masks$/.test(stemOf(f)));
  const gtFiles = masks.length ? masks : gtAll;
  const pairs: EvalPair[] = [];
  const missing: string[] = [];
  for (const gt of gtFiles) {
    const base = stemOf(gt).replace(/_masks$/, "");
    const candidates = [
      ...IMAGE_EXTENSIONS.map((e) => `${base}_cp_masks${e}`),
      gt,
      ...IMAGE_EXTENSIONS.map((e) => `${base}_masks${e}`),
    ];
    const pred = candidates.find((c) => predFiles.has(c));
    if (pred) pairs.push({ name: base, pred: join(predDir, pred), gt: join(gtDir, gt) });
    else missing.push(gt);
  }
  return { pairs, missing };
}
