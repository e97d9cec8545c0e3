/**
 * Hostile image files, built here (no stored samples): each small on disk and each made to hang
 * or balloon a naive reader. Used by the hostile-input tests and `deno task bench fuzz`.
 */
import { Zlib } from "fflate";
import { PickleWriter, torchZip, zip64Claim } from "./torch_zip.ts";
import { ifdDataAt, type IfdEntry, ifdTiff } from "./tiff_ifd.ts";

/** One hostile input: its file name and bytes, and what a reader must answer. */
export interface HostileCase {
  name: string;
  file: string;
  bytes: Uint8Array;
  /** the CellposeError code a reader must give */
  code: "BAD_FILE" | "TOO_LARGE" | "BAD_MODEL";
  /** a part of the message */
  message: RegExp;
}

const bombs = new Map<number, Uint8Array>();

/**
 * zlib stream of `n` zero bytes, deflated from a reused 1 MiB buffer (small memory); built once
 * per size.
 */
export function zeroBomb(n: number): Uint8Array {
  const built = bombs.get(n);
  if (built) return built;
  const parts: Uint8Array[] = [];
  const z = new Zlib({ level: 9 }, (chunk) => parts.push(chunk));
  const mib = new Uint8Array(1 << 20);
  for (let left = n; left > 0; left -= mib.length) {
    z.push(mib.subarray(0, Math.min(mib.length, left)), left <= mib.length);
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  bombs.set(n, out);
  return out;
}

/**
 * A Zstandard frame of `blocks` (type, size, byte) blocks: raw blocks carry `size` bytes of
 * `byte`, RLE blocks one byte that stands for `size` (a 128 KiB RLE block is 4 bytes: the
 * largest ratio the format allows).
 */
export function zstdFrame(blocks: ["raw" | "rle", number, number][]): Uint8Array {
  const parts = [new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38])]; // magic, 128 KiB window
  blocks.forEach(([type, size, byte], i) => {
    const h = (i === blocks.length - 1 ? 1 : 0) | ((type === "rle" ? 1 : 0) << 1) | (size << 3);
    const body = type === "rle" ? [byte] : new Array(size).fill(byte);
    parts.push(new Uint8Array([h & 255, (h >> 8) & 255, h >> 16, ...body]));
  });
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}

/**
 * A 16 x 16 8-bit grey TIFF with one strip of `strip` compressed with `compression`;
 * `nextIfd` is the next-directory offset (8 = itself).
 */
function tiff(compression: number, strip: Uint8Array, nextIfd = 0): Uint8Array {
  const { bytes, dataAt } = ifdTiff(
    [
      [256, 3, 1, 16], // ImageWidth
      [257, 3, 1, 16], // ImageLength
      [258, 3, 1, 8], // BitsPerSample
      [259, 3, 1, compression],
      [262, 3, 1, 1], // BlackIsZero
      [273, 4, 1, ifdDataAt(8)], // StripOffsets: the data after the IFD
      [278, 3, 1, 16], // RowsPerStrip
      [279, 4, 1, strip.length], // StripByteCounts
    ],
    strip.length,
    nextIfd,
  );
  bytes.set(strip, dataAt);
  return bytes;
}

/** PackBits runs of 128 zeros (2 bytes each) decoding to `n` bytes. */
function packBitsBomb(n: number): Uint8Array {
  const out = new Uint8Array(2 * Math.ceil(n / 128));
  for (let i = 0; i < out.length; i += 2) out[i] = 0x81; // -127: repeat the next byte 128 times
  return out;
}

/**
 * TIFF LZW codes that grow the dictionary with runs of zeros (code k spells k - 256 zeros), then
 * repeat the longest entry: each 12-bit code then decodes to ~3800 bytes.
 */
function lzwBomb(bytes: number): Uint8Array {
  const codes = [256, 0];
  for (let c = 258; c < 4096; c++) codes.push(c);
  while (codes.length * 12 < bytes * 8 - 24) codes.push(4095);
  codes.push(257);
  const out = new Uint8Array(Math.ceil((codes.length * 12) / 8) + 2);
  let pos = 0, bits = 9, next = 258, old = -1;
  for (const code of codes) {
    for (let k = bits - 1; k >= 0; k--, pos++) {
      if ((code >> k) & 1) out[pos >> 3] |= 0x80 >> (pos & 7);
    }
    // the decoder's dictionary and code width, as `decodeLzw` follows them
    if (code === 256) {
      (bits = 9), (next = 258), (old = -1);
      continue;
    }
    if (old >= 0 && next < 4096) next++;
    old = code;
    if (next + 1 >= 1 << bits && bits < 12) bits++;
  }
  return out.subarray(0, Math.ceil(pos / 8));
}

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A 16 x 16 grey PNG whose IDAT inflates to `n` bytes. */
function pngBomb(n: number): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const v = new DataView(out.buffer);
    v.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 16);
  new DataView(ihdr.buffer).setUint32(4, 16);
  ihdr[8] = 8; // depth; colour type 0 (grey)
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zeroBomb(n)),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}

/** A 2 KB baseline JPEG whose frame header declares `side` x `side` x 3. */
function jpegHuge(side: number): Uint8Array {
  const out = new Uint8Array(2048);
  out.set([0xff, 0xd8]);
  // SOF0: length 17, 8 bits, height, width, 3 components
  out.set([0xff, 0xc0, 0, 17, 8, side >> 8, side & 255, side >> 8, side & 255, 3], 2);
  out.set([1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0], 12);
  out.set([0xff, 0xd9], 2046);
  return out;
}

/**
 * A `width` x `height` 8-bit grey Deflate TIFF cut into blocks of `blockW` x `blockH` (tiles, or
 * strips when `blockW` is the width), every block's offset pointing at the same `stream`.
 */
export function blockTiff(
  width: number,
  height: number,
  blockW: number,
  blockH: number,
  stream: Uint8Array,
): Uint8Array {
  const tiled = blockW !== width;
  const n = Math.ceil(height / blockH) * Math.ceil(width / blockW);
  // the offset and count arrays after the IFD, then the one stream
  const offsetsAt = ifdDataAt(tiled ? 9 : 8), countsAt = offsetsAt + 4 * n;
  const entries: IfdEntry[] = [
    [256, 4, 1, width],
    [257, 4, 1, height],
    [258, 4, 1, 8],
    [259, 4, 1, 8], // Deflate
    [262, 4, 1, 1],
    ...(tiled
      ? [[322, 4, 1, blockW], [323, 4, 1, blockH], [324, 4, n, offsetsAt], [325, 4, n, countsAt]]
      : [[273, 4, n, offsetsAt], [278, 4, 1, blockH], [279, 4, n, countsAt]]) as IfdEntry[],
  ];
  const { bytes, view } = ifdTiff(entries, 8 * n + stream.length);
  const streamAt = countsAt + 4 * n;
  for (let i = 0; i < n; i++) {
    view.setUint32(offsetsAt + 4 * i, streamAt, true);
    view.setUint32(countsAt + 4 * i, stream.length, true);
  }
  bytes.set(stream, streamAt);
  return bytes;
}

/**
 * Large TIFFs for the lazy (block-wise) reader whose strips or tiles each inflate to their full
 * declared size, so no per-block bound refuses them: 512 MiB tiles (every region read would
 * decode at least one), and one strip of 2.5 GB.
 */
export function hostileLargeTiffs(): HostileCase[] {
  const MiB = 1 << 20;
  const tile = zeroBomb(512 * MiB); // 512 KB; the same stream for every block
  return [
    {
      name: "65536 x 65536 TIFF of 512 MiB Deflate tiles, each inflating to its full size",
      file: "huge_tiles.tif",
      bytes: blockTiff(65536, 65536, 32768, 16384, tile),
      code: "BAD_FILE",
      message: /would decode 536870912 bytes of tiles of 32768 x 16384 pixels/,
    },
    {
      name: "65536 x 40000 TIFF of one 2.6 GB Deflate strip",
      file: "huge_strip.tif",
      bytes: blockTiff(65536, 40000, 65536, 40000, tile),
      code: "BAD_FILE",
      message:
        /strips of 65536 x 40000 pixels, 2621440000 bytes each: one of them decodes to more than the 2147483648 bytes/,
    },
  ];
}

/** The hostile image files, one per class of the hardening issue. */
export function hostileImages(): HostileCase[] {
  const MiB = 1 << 20;
  return [
    {
      name: "TIFF whose next directory is itself",
      file: "loop.tif",
      bytes: tiff(1, new Uint8Array(256), 8),
      code: "BAD_FILE",
      message: /loops back to byte 8/,
    },
    {
      name: "Deflate TIFF strip of 512 MiB",
      file: "deflate_bomb.tif",
      bytes: tiff(8, zeroBomb(512 * MiB)),
      code: "BAD_FILE",
      message: /Deflate data decodes to more than its declared 256 bytes/,
    },
    {
      name: "PackBits TIFF strip of 256 MiB",
      file: "packbits_bomb.tif",
      bytes: tiff(32773, packBitsBomb(256 * MiB)),
      code: "BAD_FILE",
      message: /PackBits data decodes to more than its declared 256 bytes/,
    },
    {
      name: "14 KB LZW TIFF strip",
      file: "lzw_bomb.tif",
      bytes: tiff(5, lzwBomb(14_000)),
      code: "BAD_FILE",
      message: /LZW data decodes to more than its declared 256 bytes/,
    },
    {
      name: "JPEG TIFF strip of 2 KB declaring a 20000 x 20000 frame",
      file: "jpeg_frame.tif",
      bytes: tiff(7, jpegHuge(20000)),
      code: "BAD_FILE",
      message: /JPEG data declares a 20000 x 20000 frame of 3 components, larger than its 16 x 16/,
    },
    {
      name: "Zstandard TIFF strip of 16 KB inflating to 512 MiB",
      file: "zstd_bomb.tif",
      bytes: tiff(50000, zstdFrame(new Array(4096).fill(["rle", 128 * 1024, 0]))),
      code: "BAD_FILE",
      message: /Zstandard data is corrupt or decodes to more than its declared 256 bytes/,
    },
    {
      name: "PNG whose IDAT inflates to 512 MiB",
      file: "idat_bomb.png",
      bytes: pngBomb(512 * MiB),
      code: "BAD_FILE",
      message: /Deflate data decodes to more than its declared 272 bytes/,
    },
    {
      name: "2 KB JPEG declaring 10000 x 10000",
      file: "huge.jpg",
      bytes: jpegHuge(10000),
      code: "BAD_FILE",
      message: /declares 10000 x 10000 pixels, which need at least 195313 bytes/,
    },
  ];
}

/**
 * The hostile checkpoints (`.pt`), one per class of the hardening issue: a 4-byte storage read
 * as 12000 x 12000 through zero strides, a zip64 entry claiming 2^40 bytes, a pickle list of
 * 300 000 items.
 */
export function hostileCheckpoints(): HostileCase[] {
  const zeroStride = new PickleWriter().beginDict()
    .tensor("w", "FloatStorage", "0", 1, [12000, 12000], [0, 0]).endDict();
  const huge = new PickleWriter().beginDict()
    .tensor("w", "FloatStorage", "0", 2 ** 38, [2 ** 38], [1]).endDict();
  const list = new PickleWriter().op(0x5d, 0x28);
  for (let i = 0; i < 300_000; i++) list.op(0x4b, 0);
  list.op(0x65, 0x2e);
  return [
    {
      name: "checkpoint with a zero-stride 12000 x 12000 tensor",
      file: "zero_stride.pt",
      bytes: torchZip(zeroStride.bytes(), { "0": new Uint8Array(4) }),
      code: "BAD_MODEL",
      message: /tensor w has 144000000 elements \(shape \[12000,12000\]\), more than the 1 of/,
    },
    {
      name: "checkpoint whose zip64 entry claims 2^40 bytes",
      file: "zip64_claim.pt",
      bytes: zip64Claim(
        { "archive/data.pkl": huge.bytes(), "archive/version": new TextEncoder().encode("3\n") },
        "archive/data/0",
        new Uint8Array(1024),
        2 ** 40,
      ),
      code: "BAD_MODEL",
      message: /zip entry archive\/data\/0 declares 1099511627776 bytes from \d+ compressed/,
    },
    {
      name: "checkpoint whose pickle is a list of 300 000 items",
      file: "pickle_list.pt",
      bytes: torchZip(list.bytes(), {}),
      code: "BAD_MODEL",
      message: /pickle holds more than 100000 values on its stack/,
    },
  ];
}
