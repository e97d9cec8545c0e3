/**
 * Lazy TIFF reading: a TIFF file opened as an {@link ImageSource} whose regions are decoded on
 * demand (geotiff `readRasters({ window })` on a file-backed source), so only the strips or tiles
 * that a region touches are read and the whole image is never in memory. Sample types are those
 * of {@link readTiff} (8/16/32-bit integers, 16/32/64-bit floats, any geotiff compression);
 * several samples per pixel come back channel-last whatever the planar layout.
 *
 * The image read is the full-resolution level: the largest page not marked reduced-resolution
 * (NewSubfileType bit 0) among the first 64, so a thumbnail stored first and the pyramid levels
 * stored after it (as pages, or as SubIFDs, which are not pages) are skipped. Pages that follow it
 * with the same size and type are its series: channels when the OME-XML or ImageJ description
 * says they are (`SizeC`, `channels=`), read as channels; Z planes or time points are refused
 * (UNSUPPORTED: this is the 2-D block path).
 *
 * A region read decodes every strip or tile it touches whole, and each of those may decode to its
 * full declared size (a few KB of Deflate each, the bounded decoders of `tiff_decoders.ts` only
 * refuse more than that). So the bytes a read would decode are counted from the file's layout
 * before decoding: at most `READ_AMPLIFICATION` (16) times the region's own bytes or twice its
 * whole rows (what strips of a few rows cost any reader), or `MIN_READ_DECODE` (256 MiB) for
 * small regions, and never more than `maxBytes` (the decoded-bytes budget, default 2^31); a file
 * whose single strip or tile passes `maxBytes` is refused when opened. Memory is then bounded per read, and a whole pass decodes each block a bounded number
 * of times (tiles: within `READ_AMPLIFICATION` times the image's bytes; strips: once per block
 * column, as any reader of strips does, plus `MIN_READ_DECODE` per read): a file of huge
 * strips (one strip for a whole 40000 x 40000 image, decoded again for each of its ~400 blocks)
 * is refused with the reason instead of decoding for hours.
 *
 * @example
 * ```ts ignore
 * import { openTiff } from "./tiff_lazy.ts";
 * const src = await openTiff("/data/slide.tif");
 * const region = await src.read({ y0: 4096, x0: 8192, y1: 6144, x1: 10240 });
 * console.log(src.height, src.width, region.shape); // ... [2048, 2048] (grey)
 * await src.close();
 * ```
 * @module
 */
import { fromFile, type GeoTIFF, type GeoTIFFImage } from "geotiff";
import { CellposeError } from "../core/errors.ts";
import type { NumericArray } from "../core/ndarray.ts";
import type { ImageArray, ImageSource } from "../core/types.ts";
import { badFile, checkReadDecode, DEFAULT_MAX_DECODED_BYTES } from "./loaded.ts";
import { blockBytes } from "./tiff_decoders.ts";
import { countFileDirectories } from "./tiff_ifd.ts";
import { checkSupported, isTiff, pageAxes, pageInfo, sameSeries } from "./tiff_read.ts";

/** Pages looked at for the full-resolution level. */
const SCAN_PAGES = 64;

/** Options of {@link openTiff}. */
export interface OpenTiffOptions {
  /** [2^31] decoded bytes one region read may take at most (see the module doc) */
  maxBytes?: number;
}

/** How a page is cut into strips or tiles, and what one of them decodes to. */
interface Blocks {
  /** rows and columns of one block */
  rows: number;
  cols: number;
  /** bytes one block decodes to at most */
  bytes: number;
  /** blocks per pixel area (the samples of a planar page are blocks of their own) */
  planes: number;
}

function blocksOf(img: GeoTIFFImage): Blocks {
  const samples = img.getSamplesPerPixel();
  const planar = img.planarConfiguration === 2;
  const rows = img.getTileHeight(), cols = img.getTileWidth();
  const bits = Array.from({ length: samples }, (_, s) => img.getBitsPerSample(s));
  const bytes = blockBytes({
    tileWidth: cols,
    tileHeight: rows,
    bitsPerSample: bits,
    planarConfiguration: img.planarConfiguration,
  });
  return { rows, cols, bytes, planes: planar ? samples : 1 };
}

/** The full-resolution page and the pages of its series (see the module doc). */
async function fullResolution(tiff: GeoTIFF, path: string): Promise<GeoTIFFImage[]> {
  const count = await tiff.getImageCount();
  let best: GeoTIFFImage | undefined, bestAt = 0, bestSize = -1;
  for (let i = 0; i < Math.min(count, SCAN_PAGES); i++) {
    const img = await tiff.getImage(i);
    const subfile = Number(img.getFileDirectory().getValue("NewSubfileType") ?? 0);
    const size = img.getWidth() * img.getHeight();
    if ((subfile & 1) === 0 && size > bestSize) [best, bestAt, bestSize] = [img, i, size];
  }
  if (!best) throw badFile(path, "every page is marked reduced-resolution");
  const info = pageInfo(best);
  checkSupported(info, path);
  const pages = [best];
  for (let i = bestAt + 1; i < count; i++) {
    const img = await tiff.getImage(i);
    if (!sameSeries(info, pageInfo(img))) break;
    pages.push(img);
  }
  return pages;
}

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
export async function openTiff(path: string, options: OpenTiffOptions = {}): Promise<TiffSource> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DECODED_BYTES;
  const head = new Uint8Array(4);
  try {
    using f = await Deno.open(path);
    await f.read(head);
  } catch (e) {
    throw badFile(path, `cannot open (${(e as Error).message})`, e);
  }
  if (!isTiff(head)) throw badFile(path, "not a TIFF file (no II*/MM* header)");
  try {
    countFileDirectories(path);
  } catch (e) {
    throw badFile(path, `corrupt or truncated TIFF (${(e as Error).message})`, e);
  }
  let tiff;
  try {
    tiff = await fromFile(path);
  } catch (e) {
    throw badFile(path, `corrupt TIFF (${(e as Error).message})`, e);
  }
  let pages: GeoTIFFImage[];
  try {
    pages = await fullResolution(tiff, path);
  } catch (e) {
    await tiff.close();
    throw e;
  }
  const info = pageInfo(pages[0]);
  const { height, width, samples } = info;
  // OME-XML and ImageJ descriptions are on the file's first page
  const first = await tiff.getImage(0);
  const description = String(
    await first.getFileDirectory().loadValue("ImageDescription") ?? "",
  ).replace(/\0+$/, "");
  const lead = pages.length > 1 ? pageAxes(description, pages.length) : { axes: "", shape: [] };
  if (lead.axes !== "" && (lead.axes !== "C" || samples > 1)) {
    await tiff.close();
    throw new CellposeError(
      "UNSUPPORTED",
      `${path}: a stack of ${pages.length} pages (${lead.axes}YX${samples > 1 ? "S" : ""}); ` +
        "the large-image path reads one 2-D image (with channels as pages or samples)",
      lead.axes,
    );
  }
  const used = lead.axes === "C" ? pages.slice(0, lead.shape[0]) : [pages[0]];
  const channels = used.length * samples;
  const blocks = blocksOf(pages[0]);
  const kind = pages[0].isTiled ? "tiles" : "strips";
  const layout = `${kind} of ${blocks.cols} x ${blocks.rows} pixels, ${blocks.bytes} bytes each`;
  if (!(blocks.rows > 0 && blocks.cols > 0) || blocks.bytes > maxBytes) {
    await tiff.close();
    throw badFile(
      path,
      blocks.bytes > maxBytes
        ? `${layout}: one of them decodes to more than the ${maxBytes} bytes a read may ` +
          "decode (maxBytes); rewrite the file with smaller tiles or strips"
        : `${kind} of ${blocks.cols} x ${blocks.rows} pixels`,
    );
  }
  const regionBytes = (h: number, w: number) => h * w * channels * Math.ceil(info.bits / 8);
  /** decoded bytes of the blocks a region touches, all pages */
  const decodes = (y0: number, x0: number, y1: number, x1: number) => {
    const n = (Math.floor((y1 - 1) / blocks.rows) - Math.floor(y0 / blocks.rows) + 1) *
      (Math.floor((x1 - 1) / blocks.cols) - Math.floor(x0 / blocks.cols) + 1);
    return n * blocks.planes * used.length * blocks.bytes;
  };
  return {
    path,
    height,
    width,
    channels,
    blockWidth: blocks.cols,
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
      checkReadDecode(
        path,
        rect,
        {
          bytes: decodes(y0, x0, y1, x1),
          regionBytes: regionBytes(y1 - y0, x1 - x0),
          rowsBytes: regionBytes(y1 - y0, width),
          maxBytes,
        },
        layout,
        "rewrite the file with smaller tiles or strips",
      );
      const parts: NumericArray[] = [];
      try {
        for (const page of used) {
          parts.push(
            await page.readRasters({
              window: [x0, y0, x1, y1],
              interleave: true,
            }) as unknown as NumericArray,
          );
        }
      } catch (e) {
        throw badFile(path, `cannot decode region (${(e as Error).message})`, e);
      }
      let data = parts[0];
      if (parts.length > 1) {
        // one page per channel: interleave
        data = new (data.constructor as { new (n: number): NumericArray })(data.length * channels);
        for (let c = 0; c < channels; c++) {
          const part = parts[c];
          for (let i = 0; i < part.length; i++) data[i * channels + c] = part[i];
        }
      }
      const shape = channels === 1 ? [y1 - y0, x1 - x0] : [y1 - y0, x1 - x0, channels];
      return { data, shape };
    },
    async close() {
      await tiff.close();
    },
  };
}
