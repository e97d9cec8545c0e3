/**
 * Turns the inputs named on the command line (files, folders, glob patterns) into the list of
 * image files to process. Globs are expanded here, so `'data/*.tif'` works even when quoted (no
 * shell expansion); folders contribute the images directly inside them (and one level down with
 * `lookOneLevelDown`), skipping cellpose's own outputs (`_cp_masks`, `_seg.npy` ...) and ground
 * truth (`_masks`) so a folder can be re-run in place.
 *
 * @example
 * ```ts
 * import { collectInputs } from "./inputs.ts";
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
 * import { collectInputs } from "./inputs.ts";
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
