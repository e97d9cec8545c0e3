/**
 * `saveOutputs`: writes the chosen outputs of one segmented image (cellpose's `io.save_masks`),
 * named and encoded by the output table (`output_formats.ts`), into `savedir` or beside the
 * image. Every file is written under a hidden temporary name and all are renamed once every one is
 * written; a failure (a full disk, a folder in the way) removes them and the ones already renamed:
 * an image that fails leaves none of its outputs behind.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { join } from "node:path";
 * import { saveOutputs } from "./outputs.ts";
 * const dir = await Deno.makeTempDir();
 * const masks = { data: new Uint16Array([0, 1, 1, 0]), shape: [2, 2] };
 * const r = await saveOutputs(join(dir, "cells.png"), { masks }, ["masks_tif", "rois"]);
 * assertEquals(r.written, [join(dir, "cells_cp_masks.tif"), join(dir, "cells_rois.zip")]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { join, resolve } from "node:path";
import { dirname } from "node:path";
import {
  encodeOutput,
  OUTPUT_KINDS,
  outputFileName,
  type OutputKind,
  outputSkipReason,
  type OutputSource,
} from "./output_formats.ts";
import { partialPath } from "./label_sink.ts";

/** What {@link saveOutputs} did. */
export interface SavedOutputs {
  /** paths written, in the table's order */
  written: string[];
  /** outputs that do not apply to this image, as "kind: reason" */
  skipped: string[];
}

/** Where and how {@link saveOutputs} writes. */
export interface SaveOptions {
  /** the folder for every output (created if needed); default: the image's folder */
  savedir?: string;
  /** the masks suffix of the names, default "_cp_masks" */
  suffix?: string;
}

/**
 * Writes the outputs `kinds` of `src` for the image at `imagePath` and returns their paths; an
 * output that does not apply (PNG labels of a stack, flows not in the result) is skipped with its
 * reason. `src.filename` defaults to the image's absolute path (stored in `_seg.npy`).
 */
export async function saveOutputs(
  imagePath: string,
  src: OutputSource,
  kinds: readonly OutputKind[],
  options: SaveOptions = {},
): Promise<SavedOutputs> {
  const folder = options.savedir ?? dirname(imagePath);
  if (options.savedir) await Deno.mkdir(options.savedir, { recursive: true });
  const source = { ...src, filename: src.filename ?? resolve(imagePath) };
  const skipped: string[] = [];
  const staged: { tmp: string; path: string }[] = [];
  const written: string[] = [];
  try {
    for (const kind of OUTPUT_KINDS) {
      if (!kinds.includes(kind)) continue;
      const reason = outputSkipReason(kind, source);
      if (reason) {
        skipped.push(`${kind}: ${reason}`);
        continue;
      }
      const path = join(folder, outputFileName(kind, imagePath, options.suffix));
      const tmp = partialPath(path);
      staged.push({ tmp, path });
      const { bytes } = encodeOutput(kind, source);
      if (typeof bytes === "string") await Deno.writeTextFile(tmp, bytes);
      else await Deno.writeFile(tmp, bytes);
    }
    for (const { tmp, path } of staged) {
      await Deno.rename(tmp, path);
      written.push(path);
    }
  } catch (e) {
    // a full disk, a folder in the way: none of this image's outputs stay behind
    for (const { tmp } of staged) await Deno.remove(tmp).catch(() => {});
    for (const path of written) await Deno.remove(path).catch(() => {});
    throw e;
  }
  return { written, skipped };
}
