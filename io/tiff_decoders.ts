/**
 * Bounded TIFF decoders for geotiff: Deflate, PackBits and LZW that refuse a strip or tile as
 * soon as it decodes to more bytes than its declared size (tile width x height x bytes per
 * pixel), instead of inflating a few KB into gigabytes as the stock decoders do; and JPEG, whose
 * frame header (SOF) is checked against the strip or tile before geotiff's decoder sizes its
 * buffers from it (a 2 KB tile declaring a 20000 x 20000 frame took it 2 minutes and 12 GB); and
 * Zstandard, decoded into a buffer of the declared size and refused past it (the stock decoder
 * inflated a 16 KB strip to 512 MiB and kept the first bytes). LERC and WebP blocks, whose stock
 * decoders have no such bound, are refused. Importing this module registers them in geotiff's
 * decoder registry.
 *
 * @example
 * ```ts
 * import { decodeLzw } from "./tiff_decoders.ts";
 * // codes 256 (clear), 65 ('A'), 257 (end) packed in 9 bits
 * console.log(decodeLzw(new Uint8Array([0x80, 0x10, 0x60, 0x20]), 16)); // Uint8Array [65]
 * ```
 * @module
 */
import { addDecoder, BaseDecoder, getDecoder, type ImageFileDirectory } from "geotiff";
import { Unzlib } from "fflate";
import { ZSTDDecoder } from "zstddec/stream";
import { jpegFrameClaims, minJpegBytes } from "./jpeg.ts";

/** Thrown by a decoder whose output passes `limit` bytes. */
function tooLong(kind: string, limit: number): Error {
  return new Error(
    `${kind} data decodes to more than its declared ${limit} bytes: a compression bomb`,
  );
}

/**
 * Inflates zlib data, refusing output beyond `limit` bytes while inflating: the input goes in
 * 1 KiB slices (Deflate expands at most ~1032 : 1), so no more than ~1 MiB past the limit is
 * ever produced.
 */
export function decodeDeflate(input: Uint8Array, limit: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  const n = inflateBounded(input, limit, (chunk) => chunks.push(chunk));
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) out.set(c, at), (at += c.length);
  return out;
}

/**
 * Inflates zlib data chunk by chunk into `onChunk`, refusing output beyond `limit` bytes while
 * inflating (see {@link decodeDeflate}); returns the number of bytes inflated. With a no-op `onChunk`
 * it measures a stream without holding it.
 */
export function inflateBounded(
  input: Uint8Array,
  limit: number,
  onChunk: (chunk: Uint8Array) => void,
): number {
  let n = 0;
  const inf = new Unzlib((chunk) => {
    n += chunk.length;
    if (n > limit) throw tooLong("Deflate", limit);
    onChunk(chunk);
  });
  for (let i = 0; i < input.length; i += 1024) {
    inf.push(input.subarray(i, i + 1024), i + 1024 >= input.length);
  }
  return n;
}

/** Decodes PackBits runs, refusing output beyond `limit` bytes. */
export function decodePackBits(input: Uint8Array, limit: number): Uint8Array {
  const out = new Uint8Array(limit);
  let o = 0;
  for (let i = 0; i < input.length;) {
    const h = (input[i++] << 24) >> 24;
    if (h === -128) continue;
    const n = h < 0 ? 1 - h : h + 1;
    if (o + n > limit) throw tooLong("PackBits", limit);
    if (h < 0) out.fill(input[i++] ?? 0, o, o + n);
    else out.set(input.subarray(i, i + n), o), (i += n);
    o += n;
  }
  return out.subarray(0, o);
}

/** Decodes TIFF LZW (MSB-first codes, early change), refusing output beyond `limit` bytes. */
export function decodeLzw(input: Uint8Array, limit: number): Uint8Array {
  const prefix = new Uint16Array(4096),
    suffix = new Uint8Array(4096),
    length = new Uint16Array(4096);
  for (let i = 0; i < 256; i++) (suffix[i] = i), (length[i] = 1);
  const out = new Uint8Array(limit);
  let o = 0, bits = 9, next = 258, old = -1, pos = 0;
  const totalBits = input.length * 8;
  const read = (): number => {
    if (pos + bits > totalBits) return 257;
    let v = 0;
    for (let k = 0; k < bits; k++, pos++) v = (v << 1) | ((input[pos >> 3] >> (7 - (pos & 7))) & 1);
    return v;
  };
  /** writes the string of `code` at `o`; returns its first byte */
  const emit = (code: number): number => {
    const n = length[code];
    if (o + n > limit) throw tooLong("LZW", limit);
    for (let k = n - 1, c = code; k >= 0; k--, c = prefix[c]) out[o + k] = suffix[c];
    o += n;
    return out[o - n];
  };
  for (let code = read(); code !== 257; code = read()) {
    if (code === 256) {
      (bits = 9), (next = 258), (old = -1);
      continue;
    }
    let first: number;
    if (code < next) {
      first = emit(code);
      if (old >= 0 && next < 4096) {
        (prefix[next] = old), (suffix[next] = first), (length[next] = length[old] + 1), next++;
      }
    } else if (code === next && old >= 0) {
      if (o + length[old] + 1 > limit) throw tooLong("LZW", limit);
      first = emit(old);
      out[o++] = first;
      if (next < 4096) {
        (prefix[next] = old), (suffix[next] = first), (length[next] = length[old] + 1), next++;
      }
    } else throw new Error(`corrupt LZW data (code ${code} with ${next} known)`);
    old = code;
    if (next + 1 >= 1 << bits && bits < 12) bits++;
  }
  return out.subarray(0, o);
}

interface BlockParameters {
  tileWidth: number;
  tileHeight: number;
  bitsPerSample: number | ArrayLike<number>;
  planarConfiguration: number;
}

/** The most bytes one strip or tile can hold: rows x ceil(width x bits per pixel / 8). */
export function blockBytes(p: BlockParameters): number {
  const bits = typeof p.bitsPerSample === "number"
    ? [p.bitsPerSample]
    : Array.from(p.bitsPerSample);
  const pixelBits = p.planarConfiguration === 2 ? bits[0] : bits.reduce((a, b) => a + b, 0);
  return Number(p.tileHeight) * Math.ceil((Number(p.tileWidth) * pixelBits) / 8);
}

function bounded(decode: (input: Uint8Array, limit: number) => Uint8Array) {
  return class extends BaseDecoder {
    override decodeBlock(buffer: ArrayBuffer): ArrayBuffer {
      const limit = blockBytes(this.parameters as unknown as BlockParameters);
      const out = decode(new Uint8Array(buffer), limit);
      return out.byteLength === out.buffer.byteLength
        ? out.buffer as ArrayBuffer
        : out.slice().buffer as ArrayBuffer;
    }
  };
}

const zstd = new ZSTDDecoder();

/**
 * Decodes Zstandard data into a buffer of `limit` bytes, refusing data that decodes to more (or
 * is corrupt): the decoder's one-shot path, which never sizes anything from the frame's own
 * claims and frees its memory on every path. The decoder must be initialised
 * (`await zstdReady()`).
 */
export function decodeZstd(input: Uint8Array, limit: number): Uint8Array {
  const out = input.length ? zstd.decode(input, Math.max(1, limit)) : new Uint8Array(0);
  if (input.length && out.length === 0) {
    // zstddec returns nothing for an error code (the output too small, or the data corrupt)
    throw new Error(
      `Zstandard data is corrupt or decodes to more than its declared ${limit} bytes`,
    );
  }
  return out;
}

/** Initialises the Zstandard decoder (a WebAssembly module) once. */
export function zstdReady(): Promise<void> {
  return zstd.init();
}

/**
 * Refuses JPEG data (with the file's shared `JPEGTables`) any of whose frame headers
 * ({@link jpegFrameClaims}) is larger than the strip or tile it stands for (beyond the padding
 * to whole 8 x 8 blocks of up to 4 x 4 subsampling, 32 pixels), has more components than the
 * pixel has samples, or is larger than the data could encode ({@link minJpegBytes}): geotiff's
 * decoder allocates a frame's buffers when it reads the header, before any data. With
 * `withData` false only the tables' frames are checked against the block (before the decoder
 * that parses them is made).
 */
export function checkJpegFrame(
  data: Uint8Array,
  p: BlockParameters & { JPEGTables?: ArrayLike<number> },
  withData = true,
): void {
  const samples = p.planarConfiguration === 2 || typeof p.bitsPerSample === "number"
    ? 1
    : Array.from(p.bitsPerSample).length;
  const pad = (n: number) => Math.ceil(Number(n) / 32) * 32;
  const tables = p.JPEGTables ? jpegFrameClaims(Uint8Array.from(p.JPEGTables)) : [];
  for (const f of [...jpegFrameClaims(data), ...tables]) {
    const what =
      `JPEG data declares a ${f.width} x ${f.height} frame of ${f.components} components`;
    if (f.width > pad(p.tileWidth) || f.height > pad(p.tileHeight) || f.components > samples) {
      throw new Error(
        `${what}, larger than its ${p.tileWidth} x ${p.tileHeight} block of ${samples} samples`,
      );
    }
    if (withData && data.length < minJpegBytes(f.width, f.height)) {
      throw new Error(
        `${what}, which need at least ${minJpegBytes(f.width, f.height)} bytes; the block has ` +
          `${data.length}`,
      );
    }
  }
}

/** geotiff's own JPEG decoder, taken from its registry before ours replaces it */
const stockJpeg = getDecoder(7, {} as never);
stockJpeg.catch(() => {}); // reported where it is awaited

let jpegClass: Promise<typeof BaseDecoder> | undefined;

/** geotiff's JPEG decoder behind the frame check (one class for every read). */
function boundedJpeg(): Promise<typeof BaseDecoder> {
  return jpegClass ??= stockJpeg.then((d) => jpegChecked(d.constructor as typeof BaseDecoder));
}

function jpegChecked(stock: typeof BaseDecoder): typeof BaseDecoder {
  return class extends stock {
    // geotiff's decoder parses the shared tables when it is made: their frames are checked first
    constructor(parameters: ConstructorParameters<typeof BaseDecoder>[0]) {
      checkJpegFrame(new Uint8Array(0), parameters as unknown as BlockParameters, false);
      super(parameters);
    }
    override decodeBlock(buffer: ArrayBuffer): ArrayBuffer {
      checkJpegFrame(new Uint8Array(buffer), this.parameters as unknown as BlockParameters);
      return super.decodeBlock(buffer) as ArrayBuffer;
    }
  };
}

/** geotiff's parameters for JPEG blocks: the block size and type, and the shared tables. */
async function jpegParameters(fd: ImageFileDirectory) {
  const tiled = !fd.hasTag("StripOffsets");
  return {
    tileWidth: await fd.loadValue(tiled ? "TileWidth" : "ImageWidth"),
    tileHeight: tiled
      ? await fd.loadValue("TileLength")
      : (await fd.loadValue("RowsPerStrip") || await fd.loadValue("ImageLength")),
    planarConfiguration: await fd.loadValue("PlanarConfiguration"),
    bitsPerSample: await fd.loadValue("BitsPerSample"),
    predictor: await fd.loadValue("Predictor") || 1,
    JPEGTables: await fd.loadValue("JPEGTables"),
  };
}

addDecoder([8, 32946], () => Promise.resolve(bounded(decodeDeflate)));
addDecoder(7, boundedJpeg, jpegParameters as never);
addDecoder(50000, () => zstdReady().then(() => bounded(decodeZstd)));
// geotiff's LERC (with its inner Deflate / Zstandard) and WebP decoders have no bound on what a
// block decodes to: refused, with the reason, rather than trusted
for (const [id, name] of [[34887, "LERC"], [50001, "WebP"]] as const) {
  addDecoder(id, () => {
    throw new Error(`${name}-compressed TIFF is not supported: convert it to Deflate, LZW or none`);
  });
}
addDecoder(32773, () => Promise.resolve(bounded(decodePackBits)));
addDecoder(5, () => Promise.resolve(bounded(decodeLzw)));
