/**
 * TIFF reading through geotiff: 8/16/32-bit integers and 16/32/64-bit floats, one or more samples
 * per pixel (chunky or planar), multi-page stacks, BigTIFF, uncompressed/LZW/Deflate/PackBits/
 * JPEG/zstd, tiled or striped. The pages' axes come from OME-XML (`DimensionOrder`, `SizeZ`,
 * `SizeC`, `SizeT`) or an ImageJ hyperstack description (`channels=`, `slices=`, `frames=`);
 * pages without either are read as Z. Samples become a `C` axis: last for chunky pixels
 * (`YXC`), before `YX` for planar ones (`CYX`), like tifffile. Only the first series is read:
 * pages after the first one whose size or type differs (e.g. a thumbnail) are ignored.
 *
 * @example
 * ```ts
 * import { readTiff } from "./tiff_read.ts";
 * import { encodeTiff } from "./tiff_write.ts";
 * const bytes = encodeTiff({ data: new Uint16Array(2 * 3 * 4), shape: [2, 3, 4] });
 * const { image, axes, zAxis } = await readTiff(bytes, "stack.tif");
 * console.log(image.shape, axes, zAxis); // [2, 3, 4] "ZYX" 0
 * ```
 * @module
 */
import { fromArrayBuffer, type GeoTIFFImage } from "geotiff";
import { CellposeError } from "../core/errors.ts";
import type { NumericArray } from "../core/ndarray.ts";
import { imagejPageAxes, type ImagejSizes, parseImagejDescription } from "./imagej.ts";
import { badFile, DEFAULT_MAX_DECODED_BYTES, type LoadedImage, loadedImage } from "./loaded.ts";
import { omePageAxes, parseOmeXml } from "./ome.ts";
import { countDirectories } from "./tiff_ifd.ts";
// registers the bounded Deflate/PackBits/LZW decoders with geotiff
import "./tiff_decoders.ts";

/** True when the bytes start with a TIFF or BigTIFF header (either byte order). */
export function isTiff(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false;
  const le = bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[3] === 0;
  const be = bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0;
  const v = le ? bytes[2] : be ? bytes[3] : 0;
  return v === 42 || v === 43;
}

const FORMATS: Record<number, string> = { 1: "unsigned integer", 2: "signed integer", 3: "float" };

/** Geometry and sample type of one TIFF page. */
export interface PageInfo {
  /** all samples share one bit depth and format */
  uniform: boolean;
  width: number;
  height: number;
  samples: number;
  bits: number;
  format: number;
  planar: number;
}

/** Reads a page's geometry and sample type from its IFD. */
export function pageInfo(img: GeoTIFFImage): PageInfo {
  const samples = img.getSamplesPerPixel();
  const bits = img.getBitsPerSample(0);
  const format = img.getSampleFormat(0);
  let uniform = true;
  for (let s = 1; s < samples; s++) {
    if (img.getBitsPerSample(s) !== bits || img.getSampleFormat(s) !== format) uniform = false;
  }
  return {
    uniform,
    width: img.getWidth(),
    height: img.getHeight(),
    samples,
    bits,
    format,
    planar: img.planarConfiguration,
  };
}

/** Throws BAD_FILE naming `name` for sample types and sizes this reader does not handle. */
export function checkSupported(p: PageInfo, name: string): void {
  if (!p.uniform) {
    throw badFile(name, "unsupported sample format: samples of one pixel differ in type");
  }
  const ok = (p.format === 1 || p.format === 2)
    ? [8, 16, 32].includes(p.bits)
    : p.format === 3
    ? [16, 32, 64].includes(p.bits)
    : false;
  if (!ok) {
    throw badFile(
      name,
      `unsupported sample format: ${p.bits}-bit ${FORMATS[p.format] ?? `format ${p.format}`} ` +
        "(8/16/32-bit integers and 16/32/64-bit floats are supported)",
    );
  }
  if (p.width === 0 || p.height === 0) {
    throw badFile(name, `zero-size image (${p.width} x ${p.height} pixels)`);
  }
}

/** Fails when a page's strips or tiles reach past the end of the file. */
async function checkExtent(img: GeoTIFFImage, fileSize: number, page: number, name: string) {
  const fd = img.getFileDirectory();
  const tiled = fd.hasTag("TileOffsets");
  const offsets = await fd.loadValue(tiled ? "TileOffsets" : "StripOffsets");
  const counts = await fd.loadValue(tiled ? "TileByteCounts" : "StripByteCounts");
  if (!offsets || !counts) throw badFile(name, `page ${page} has no pixel data offsets`);
  for (let i = 0; i < offsets.length; i++) {
    const end = Number(offsets[i]) + Number(counts[i]);
    if (end > fileSize) {
      throw badFile(
        name,
        `truncated TIFF: page ${page} data ends at byte ${end} but the file has ${fileSize} bytes`,
      );
    }
  }
}

/** True when two pages have the same size and sample layout (one series). */
export function sameSeries(a: PageInfo, b: PageInfo): boolean {
  return a.width === b.width && a.height === b.height && a.samples === b.samples &&
    a.bits === b.bits && a.format === b.format && a.planar === b.planar;
}

/** Axes and sizes of the page dimensions, from OME-XML, an ImageJ description, or as Z. */
export function pageAxes(description: string, nPages: number): { axes: string; shape: number[] } {
  const ome = parseOmeXml(description);
  const ij: ImagejSizes | undefined = ome ? undefined : parseImagejDescription(description);
  const meta = ome ? omePageAxes(ome) : ij ? imagejPageAxes(ij) : undefined;
  if (meta && meta.shape.reduce((a, b) => a * b, 1) === nPages) return meta;
  return nPages > 1 ? { axes: "Z", shape: [nPages] } : { axes: "", shape: [] };
}

/** Options of {@link readTiff} and `readImage`. */
export interface ReadOptions {
  /**
   * Refuse (`TOO_LARGE`, value = the element count) an image whose headers declare more elements,
   * before any pixel is decoded: a small compressed file can claim a huge image.
   */
  maxElements?: number;
  /**
   * Refuse (`TOO_LARGE`) an image that would decode to more bytes (default
   * {@link DEFAULT_MAX_DECODED_BYTES}); each compressed strip or tile is also refused while it
   * inflates as soon as it passes its own declared size.
   */
  maxBytes?: number;
}

/** Reads a TIFF from its bytes. Errors are {@link CellposeError}s `BAD_FILE` naming `name`. */
export async function readTiff(
  bytes: Uint8Array,
  name: string,
  options: ReadOptions = {},
): Promise<LoadedImage> {
  if (!isTiff(bytes)) throw badFile(name, "not a TIFF file (no II*/MM* header)");
  if (bytes.length < 16) throw badFile(name, `truncated TIFF: only ${bytes.length} bytes`);
  try {
    return await decode(bytes, name, options);
  } catch (e) {
    if (e instanceof CellposeError) throw e;
    const msg = (e as Error).message ?? String(e);
    const what = /compression method/i.test(msg)
      ? "unsupported TIFF compression"
      : "corrupt or truncated TIFF";
    throw badFile(name, `${what} (${msg})`, e);
  }
}

async function decode(bytes: Uint8Array, name: string, options: ReadOptions): Promise<LoadedImage> {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  const buffer = whole
    ? bytes.buffer
    : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  try {
    countDirectories(bytes);
  } catch (e) {
    throw badFile(name, `corrupt or truncated TIFF (${(e as Error).message})`, e);
  }
  const tiff = await fromArrayBuffer(buffer as ArrayBuffer);
  const first = await tiff.getImage(0);
  const info = pageInfo(first);
  checkSupported(info, name);
  const count = await tiff.getImageCount();
  const pages: GeoTIFFImage[] = [first];
  for (let i = 1; i < count; i++) {
    const img = await tiff.getImage(i);
    if (!sameSeries(info, pageInfo(img))) break;
    pages.push(img);
  }
  const description = String(await first.getFileDirectory().loadValue("ImageDescription") ?? "")
    .replace(/\0+$/, "");
  const lead = pageAxes(description, pages.length);
  const used = pages.slice(0, lead.shape.reduce((a, b) => a * b, 1));

  const { width: w, height: h, samples: s } = info;
  const perPage = w * h * s;
  const declared = perPage * used.length;
  if (options.maxElements !== undefined && declared > options.maxElements) {
    throw new CellposeError(
      "TOO_LARGE",
      `${name} declares ${declared} elements in its header; the limit is ${options.maxElements}`,
      declared,
    );
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DECODED_BYTES;
  const bytesOut = declared * Math.ceil(info.bits / 8);
  if (bytesOut > maxBytes) {
    throw new CellposeError(
      "TOO_LARGE",
      `${name} declares ${bytesOut} decoded bytes in its header; the limit is ${maxBytes}`,
      bytesOut,
    );
  }
  let out: NumericArray | undefined;
  for (let p = 0; p < used.length; p++) {
    await checkExtent(used[p], bytes.length, p, name);
    const planar = info.planar === 2 && s > 1;
    const rasters = await used[p].readRasters({ interleave: !planar });
    const parts = planar
      ? (rasters as unknown as NumericArray[])
      : [rasters as unknown as NumericArray];
    if (!out) {
      const ctor = parts[0].constructor as { new (n: number): NumericArray };
      out = new ctor(perPage * used.length);
    }
    let at = p * perPage;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
  }
  let axes = lead.axes + "YX";
  let shape = [...lead.shape, h, w];
  if (s > 1) {
    const c = lead.axes.includes("C") ? "S" : "C";
    if (info.planar === 2) {
      axes = lead.axes + c + "YX";
      shape = [...lead.shape, s, h, w];
    } else {
      axes += c;
      shape.push(s);
    }
  }
  return loadedImage({ data: out!, shape }, axes, name);
}
