/**
 * Opens a large 2-D image for region reads, whatever it is stored in: an OME-Zarr image folder
 * (io/ome_zarr.ts) or a TIFF file (io/tiff_lazy.ts), told apart by what is on disk (a folder, or
 * a file), not by the name.
 *
 * @example
 * ```ts ignore
 * import { openImageSource } from "./image_source.ts";
 * const src = await openImageSource("/data/slide.ome.zarr"); // or "/data/slide.tif"
 * console.log(src.height, src.width, src.channels);
 * await src.close();
 * ```
 * @module
 */
import type { ImageSource } from "../core/types.ts";
import { openOmeZarr } from "./ome_zarr.ts";
import { openTiff } from "./tiff_lazy.ts";

/** An image source that holds a file or folder open until {@link close}. */
export interface OpenSource extends ImageSource {
  /** the path it was opened from */
  readonly path: string;
  /** "zarr" or "tiff" */
  readonly kind: "zarr" | "tiff";
  /** releases the file handles */
  close(): Promise<void>;
}

/**
 * Opens `path` as an OME-Zarr image (a folder: its full-resolution level) or as a TIFF (the full-resolution level of its first series). Errors are those of `openOmeZarr`
 * and `openTiff`: BAD_FILE naming the path.
 */
export async function openImageSource(path: string): Promise<OpenSource> {
  const folder = await Deno.stat(path).then((s) => s.isDirectory, () => false);
  if (folder) return Object.assign(await openOmeZarr(path), { kind: "zarr" as const });
  return Object.assign(await openTiff(path), { kind: "tiff" as const });
}
