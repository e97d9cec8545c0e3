/**
 * Lazy TIFF reading: the first page of a TIFF file opened as an {@link ImageSource} whose regions
 * are decoded on demand (geotiff `readRasters({ window })` on a file-backed source), so only the
 * strips or tiles that a region touches are read and the whole image is never in memory. Sample
 * types are those of {@link readTiff} (8/16/32-bit integers, 16/32/64-bit floats, any geotiff
 * compression); several samples per pixel come back channel-last whatever the planar layout.
 *
 * @example
 * ```ts
 * import { openTiff } from "./tiff_lazy.ts";
 * const src = await openTiff("/data/slide.tif");
 * const region = await src.read({ y0: 4096, x0: 8192, y1: 6144, x1: 10240 });
 * console.log(src.height, src.width, region.shape); // ... [2048, 2048] (grey)
 * await src.close();
 * ```
 * @module
 */
import { fromFile } from "geotiff";
import { CellposeError } from "../core/errors.ts";
import type { NumericArray } from "../core/ndarray.ts";
import type { ImageArray, ImageSource } from "../core/types.ts";
import { badFile } from "./loaded.ts";
import { checkSupported, isTiff, pageInfo } from "./tiff_read.ts";

/** An open TIFF file read region by region; {@link close} releases the file. */
export interface TiffSource extends ImageSource {
  /** the file path */
  readonly path: string;
  /** closes the file */
  close(): Promise<void>;
}

/**
 * Opens the first page of the TIFF at `path` for region reads (see the module doc). Throws
 * CellposeError BAD_FILE naming the file when it is missing, not a TIFF, or of an unsupported
 * sample type; region reads outside the image throw BAD_PARAMETER.
 *
 * @example
 * ```ts
 * import { openTiff } from "./tiff_lazy.ts";
 * import { writeTiff } from "./tiff_write.ts";
 * await writeTiff("/tmp/grey.tif", { data: new Uint16Array(4 * 5), shape: [4, 5] });
 * const src = await openTiff("/tmp/grey.tif");
 * console.log((await src.read({ y0: 1, x0: 2, y1: 3, x1: 5 })).shape); // [2, 3]
 * await src.close();
 * ```
 */
export async function openTiff(path: string): Promise<TiffSource> {
  const head = new Uint8Array(4);
  try {
    using f = await Deno.open(path);
    await f.read(head);
  } catch (e) {
    throw badFile(path, `cannot open (${(e as Error).message})`, e);
  }
  if (!isTiff(head)) throw badFile(path, "not a TIFF file (no II*/MM* header)");
  let tiff;
  try {
    tiff = await fromFile(path);
  } catch (e) {
    throw badFile(path, `corrupt TIFF (${(e as Error).message})`, e);
  }
  const page = await tiff.getImage(0);
  const info = pageInfo(page);
  checkSupported(info, path);
  const { height, width, samples: channels } = info;
  return {
    path,
    height,
    width,
    channels,
    async read(rect): Promise<ImageArray> {
      const { y0, x0, y1, x1 } = rect;
      if (!(0 <= y0 && y0 < y1 && y1 <= height && 0 <= x0 && x0 < x1 && x1 <= width)) {
        throw new CellposeError(
          "BAD_PARAMETER",
          `region [${y0}, ${y1}) x [${x0}, ${x1}) must be a non-empty part of the ` +
            `${height} x ${width} image`,
          rect,
        );
      }
      let data: NumericArray;
      try {
        data = await page.readRasters({
          window: [x0, y0, x1, y1],
          interleave: true,
        }) as unknown as NumericArray;
      } catch (e) {
        throw badFile(path, `cannot decode region (${(e as Error).message})`, e);
      }
      const shape = channels === 1 ? [y1 - y0, x1 - x0] : [y1 - y0, x1 - x0, channels];
      return { data, shape };
    },
    async close() {
      await tiff.close();
    },
  };
}
