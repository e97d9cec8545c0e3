/**
 * TIFF read and write: round trips of the writer through geotiff, the hand-built variants in
 * tests/data/tiff (made by make_tiffs.py without our writer), the real dsb2018 zlib masks, and
 * every bad input with its message.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { DATA, REPO } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import type { NumericArray } from "../core/ndarray.ts";
import jpegJs from "jpeg-js";
import { ifdDataAt, ifdTiff } from "./tiff_ifd.ts";
import { zstdFrame } from "./hostile_cases.ts";
import { readTiff } from "../io/tiff_read.ts";
import { encodeTiff } from "../io/tiff_write.ts";
import { parseImagejDescription } from "../io/imagej.ts";

const TIFFS = join(REPO, "tests", "data", "tiff");
const load = async (name: string) => readTiff(await Deno.readFile(join(TIFFS, name)), name);

/** make_tiffs.py's pattern: value i = (i * 37 + 11) mod m, in the given dtype. */
function pattern(n: number, kind: "u8" | "u16" | "i" | "f"): number[] {
  return Array.from({ length: n }, (_, i) => {
    if (kind === "f") return Math.fround(((i * 37 + 11) % 1000) / 7 - 50);
    if (kind === "i") return ((i * 37 + 11) % 2000) - 1000;
    return (i * 37 + 11) % (kind === "u8" ? 256 : 65536);
  });
}

function labelsOf(n: number, max: number): Uint32Array {
  return Uint32Array.from({ length: n }, (_, i) => (i * 2654435761) % (max + 1));
}

Deno.test("tiff: uint16 labels round-trip, raw and deflate", async () => {
  const data = Uint16Array.from(labelsOf(300 * 170, 65535));
  for (const compression of ["none", "deflate"] as const) {
    const bytes = encodeTiff({ data, shape: [300, 170] }, { compression });
    const back = await readTiff(bytes, "labels.tif");
    assertEquals(back.axes, "YX");
    assertEquals(back.image.shape, [300, 170]);
    assert(back.image.data instanceof Uint16Array);
    assertEquals(back.image.data, data);
  }
});

Deno.test("tiff: uint32 labels past 65535 round-trip with deflate", async () => {
  const data = labelsOf(64 * 80, 200000);
  const back = await readTiff(
    encodeTiff({ data, shape: [64, 80] }, { compression: "deflate" }),
    "u32.tif",
  );
  assert(back.image.data instanceof Uint32Array);
  assertEquals(back.image.data, data);
});

Deno.test("tiff: 3D label stack is an ImageJ stack read back as ZYX", async () => {
  const data = Uint16Array.from(labelsOf(5 * 40 * 30, 900));
  const bytes = encodeTiff({ data, shape: [5, 40, 30] }, { compression: "deflate" });
  const text = new TextDecoder().decode(bytes);
  assert(text.includes("ImageJ=1.53t\nimages=5\nslices=5\n"), "ImageJ description");
  const back = await readTiff(bytes, "stack.tif");
  assertEquals(back.axes, "ZYX");
  assertEquals(back.zAxis, 0);
  assertEquals(back.image.shape, [5, 40, 30]);
  assertEquals(back.image.data, data);
});

Deno.test("tiff: float32 flows as CYX and a ZCYX hyperstack keep axes and values", async () => {
  const flows = Float32Array.from({ length: 2 * 9 * 7 }, (_, i) => Math.sin(i) * 3.25);
  const f = await readTiff(encodeTiff({ data: flows, shape: [2, 9, 7] }, { axes: "CYX" }), "f.tif");
  assertEquals([f.axes, f.channelAxis], ["CYX", 0]);
  assertEquals(f.image.data, flows);
  const hyper = Uint8Array.from({ length: 3 * 2 * 4 * 5 }, (_, i) => i);
  const h = await readTiff(encodeTiff({ data: hyper, shape: [3, 2, 4, 5] }), "h.tif");
  assertEquals([h.axes, h.zAxis, h.channelAxis], ["ZCYX", 0, 1]);
  assertEquals(h.image.data, hyper);
});

Deno.test("tiff: int8/int16/int32/float64 keep their dtype", async () => {
  const cases: NumericArray[] = [
    Int8Array.from([-128, 0, 5, 127]),
    Int16Array.from([-32768, -1, 2, 32767]),
    Int32Array.from([-2147483648, -7, 8, 2147483647]),
    Float64Array.from([-1e300, 0.1, Math.PI, 1e-300]),
  ];
  for (const data of cases) {
    const back = await readTiff(encodeTiff({ data, shape: [2, 2] }), "t.tif");
    assertEquals(back.image.data.constructor, data.constructor);
    assertEquals(back.image.data, data);
  }
});

Deno.test("tiff: hand-built variants decode to the known pattern", async () => {
  const cases: [string, string, number[], "u8" | "u16" | "i" | "f"][] = [
    ["lzw_u16.tif", "YX", [40, 50], "u16"],
    ["packbits_u8.tif", "YX", [12, 10], "u8"],
    ["deflate_tiled_u16.tif", "YX", [12, 10], "u16"],
    ["bigtiff_u16.tif", "YX", [12, 10], "u16"],
    ["bigendian_i16.tif", "YX", [12, 10], "i"],
    ["i32_lzw.tif", "YX", [12, 10], "i"],
    ["f64.tif", "YX", [12, 10], "f"],
    ["rgb_chunky.tif", "YXC", [12, 10, 3], "u8"],
    ["stack_z.tif", "ZYX", [4, 12, 10], "u8"],
    ["ome_czyx.ome.tif", "CZYX", [2, 3, 12, 10], "u16"],
    ["imagej_zcyx.tif", "ZCYX", [3, 2, 12, 10], "u16"],
  ];
  for (const [name, axes, shape, kind] of cases) {
    const img = await load(name);
    assertEquals([img.axes, img.image.shape], [axes, shape], name);
    const n = shape.reduce((a, b) => a * b, 1);
    const want = pattern(n, kind);
    if (kind === "f") {
      // written as float64 from the exact quotient: compare at float64 precision
      const exact = Array.from({ length: n }, (_, i) => ((i * 37 + 11) % 1000) / 7 - 50);
      assertEquals(Array.from(img.image.data), exact, name);
    } else {
      assertEquals(Array.from(img.image.data), want, name);
    }
  }
});

Deno.test("tiff: planar RGB (tiled, PackBits) reads as CYX with the chunky pattern transposed", async () => {
  const img = await load("rgb_planar_tiled.tif");
  assertEquals([img.axes, img.channelAxis, img.image.shape], ["CYX", 0, [3, 12, 10]]);
  const chunky = pattern(12 * 10 * 3, "u8");
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < 120; p++) assertEquals(img.image.data[c * 120 + p], chunky[p * 3 + c]);
  }
});

Deno.test("tiff: real dsb2018 zlib masks read as uint16 labels with the indexed count", async () => {
  const index: { id: string; shape: number[]; cells: number }[] = JSON.parse(
    await Deno.readTextFile(join(DATA, "dsb2018", "index.json")),
  );
  for (const e of index.slice(0, 6)) {
    const name = `${e.id}_masks.tif`;
    const img = await readTiff(await Deno.readFile(join(DATA, "dsb2018", name)), name);
    assertEquals(img.image.shape, e.shape.slice(0, 2));
    assert(img.image.data instanceof Uint16Array);
    assertEquals(new Set(img.image.data).size - 1, e.cells, name);
    // and our writer reproduces them exactly
    const again = await readTiff(encodeTiff(img.image, { compression: "deflate" }), name);
    assertEquals(again.image.data, img.image.data);
  }
});

Deno.test("tiff: bad files give BAD_FILE naming the file and the reason", async () => {
  const bad: [string, string][] = [
    ["bad_1bit.tif", "bad_1bit.tif: unsupported sample format: 1-bit unsigned integer"],
    ["bad_complex.tif", "bad_complex.tif: unsupported sample format: 32-bit format 6"],
    ["bad_zero_width.tif", "bad_zero_width.tif: zero-size image (0 x 12 pixels)"],
    ["bad_truncated.tif", "bad_truncated.tif: corrupt or truncated TIFF"],
  ];
  for (const [name, msg] of bad) {
    const e = await assertRejects(() => load(name), CellposeError, msg);
    assertEquals(e.code, "BAD_FILE");
  }
  // data cut off after intact IFDs: our writer puts pixel data first, so move the IFD up front
  const good = encodeTiff({ data: new Uint8Array(64 * 64).fill(7), shape: [64, 64] });
  const ifd = new DataView(good.buffer).getUint32(4, true);
  const cut = new Uint8Array(8 + (good.length - ifd));
  cut.set(good.subarray(0, 8));
  cut.set(good.subarray(ifd), 8);
  new DataView(cut.buffer).setUint32(4, 8, true);
  // offsets inside the moved IFD still point at the (now missing) pixel data
  await assertRejects(
    () => readTiff(cut, "cut.tif"),
    CellposeError,
    "cut.tif: truncated TIFF: page 0 data ends at byte",
  );
  await assertRejects(
    () => readTiff(new Uint8Array([0x49, 0x49, 42, 0, 8, 0]), "tiny.tif"),
    CellposeError,
    "tiny.tif: truncated TIFF: only 6 bytes",
  );
  await assertRejects(
    () => readTiff(new Uint8Array(64), "zeros.tif"),
    CellposeError,
    "zeros.tif: not a TIFF file",
  );
});

Deno.test("tiff writer: bad arrays and axes are refused", () => {
  assertThrows(
    () => encodeTiff({ data: new Uint8Array(4), shape: [4] }),
    CellposeError,
    "TIFF needs a [..., H, W] array",
  );
  assertThrows(
    () => encodeTiff({ data: new Uint8Array(0), shape: [0, 3] }),
    CellposeError,
    "must not be empty",
  );
  assertThrows(
    () => encodeTiff({ data: new Uint8Array(8), shape: [2, 2, 2] }, { axes: "CZYX" }),
    CellposeError,
    "one letter per dimension",
  );
  assertThrows(
    () => encodeTiff({ data: new Uint8Array(16), shape: [2, 2, 2, 2] }, { axes: "CZYX" }),
    CellposeError,
    "must be in ImageJ page order T, Z, C",
  );
});

Deno.test("imagej description: parse plain stacks and hyperstacks", () => {
  assertEquals(parseImagejDescription("ImageJ=1.53t\nimages=7\n"), {
    images: 7,
    channels: 1,
    slices: 7,
    frames: 1,
  });
  assertEquals(
    parseImagejDescription("ImageJ=1.53t\nimages=12\nchannels=2\nframes=3\nslices=2\n"),
    { images: 12, channels: 2, slices: 2, frames: 3 },
  );
  assertEquals(parseImagejDescription('{"shape": [3, 4]}'), undefined);
});

Deno.test("tiff: maxElements refuses an image by its headers, before decoding", async () => {
  const bytes = encodeTiff({ data: new Uint16Array(2 * 4 * 5), shape: [2, 4, 5] }, {
    compression: "deflate",
  });
  const err = await assertRejects(
    () => readTiff(bytes, "stack.tif", { maxElements: 39 }),
    CellposeError,
  );
  assertEquals([err.code, err.value], ["TOO_LARGE", 40]);
  assertEquals((await readTiff(bytes, "stack.tif", { maxElements: 40 })).image.shape, [2, 4, 5]);
});

Deno.test("tiff: JPEG strips decode; a JPEG frame larger than its strip is refused before decoding", async () => {
  // a 40 x 24 grey gradient as one baseline JPEG strip (jpeg-js's encoder, quality 95: three
  // components Y, Cb, Cr, which geotiff returns as stored: Y the grey value, Cb = Cr = 128)
  const [w, h] = [40, 24];
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) rgba.fill(x * 3 + y * 5, (y * w + x) * 4, (y * w + x) * 4 + 3);
  }
  const jpeg = new Uint8Array(jpegJs.encode({ data: rgba, width: w, height: h }, 95).data);
  const jpegTiff = (strip: Uint8Array) => {
    const at = ifdDataAt(9);
    const { bytes, view } = ifdTiff([
      [256, 3, 1, w],
      [257, 3, 1, h],
      [258, 3, 3, at], // BitsPerSample 8, 8, 8 at the start of the data
      [259, 3, 1, 7], // JPEG
      [262, 3, 1, 2], // RGB
      [273, 4, 1, at + 6],
      [277, 3, 1, 3],
      [278, 3, 1, h],
      [279, 4, 1, strip.length],
    ], 6 + strip.length);
    [0, 2, 4].forEach((o) => view.setUint16(at + o, 8, true));
    bytes.set(strip, at + 6);
    return bytes;
  };
  const { image } = await readTiff(jpegTiff(jpeg), "rgb.tif");
  assertEquals(image.shape, [h, w, 3]);
  let err = 0;
  for (let i = 0; i < w * h; i++) {
    const want = [rgba[i * 4], 128, 128];
    for (let c = 0; c < 3; c++) {
      err = Math.max(err, Math.abs(image.data[i * 3 + c] - want[c]));
    }
  }
  assert(err <= 6, `max JPEG error ${err}`);
  // the same strip whose frame header claims 20000 x 20000 (geotiff's decoder alone took 2 min
  // and 12 GB on it): refused from the header
  const huge = jpeg.slice();
  const sof = huge.findIndex((b, i) => b === 0xff && huge[i + 1] === 0xc0);
  huge.set([20000 >> 8, 20000 & 255, 20000 >> 8, 20000 & 255], sof + 5);
  const t0 = performance.now();
  await assertRejects(
    () => readTiff(jpegTiff(huge), "huge.tif"),
    CellposeError,
    "huge.tif: corrupt or truncated TIFF (JPEG data declares a 20000 x 20000 frame of 3 " +
      "components, larger than its 40 x 24 block of 3 samples)",
  );
  // a second frame header hidden after the real one (a lenient decoder acts on it too)
  const second = new Uint8Array(jpeg.length + 13);
  second.set(jpeg.subarray(0, jpeg.length - 2));
  second.set([0xff, 0xc0, 0, 11, 8, 0x4e, 0x20, 0x4e, 0x20, 1, 1, 0x11, 0], jpeg.length - 2);
  second.set([0xff, 0xd9], jpeg.length + 11);
  await assertRejects(
    () => readTiff(jpegTiff(second), "second.tif"),
    CellposeError,
    "second.tif: corrupt or truncated TIFF (JPEG data declares a 20000 x 20000 frame of 1 " +
      "components, larger than its 40 x 24 block of 3 samples)",
  );
  assert(performance.now() - t0 < 1000);
});

Deno.test("tiff: Zstandard strips decode; more than the strip, or corrupt data, is refused", async () => {
  // 16 x 16 grey: rows 0-7 a raw block of 5s, rows 8-15 an RLE block of 9s
  const strip = (blocks: ["raw" | "rle", number, number][]) => {
    const data = zstdFrame(blocks);
    const at = ifdDataAt(8);
    const { bytes } = ifdTiff([
      [256, 3, 1, 16],
      [257, 3, 1, 16],
      [258, 3, 1, 8],
      [259, 3, 1, 50000], // Zstandard
      [262, 3, 1, 1],
      [273, 4, 1, at],
      [278, 3, 1, 16],
      [279, 4, 1, data.length],
    ], data.length);
    bytes.set(data, at);
    return bytes;
  };
  const { image } = await readTiff(strip([["raw", 128, 5], ["rle", 128, 9]]), "z.tif");
  assertEquals(image.shape, [16, 16]);
  assertEquals([...image.data], [...new Array(128).fill(5), ...new Array(128).fill(9)]);
  await assertRejects(
    () => readTiff(strip([["raw", 128, 5], ["rle", 129, 9]]), "long.tif"),
    CellposeError,
    "long.tif: corrupt or truncated TIFF (Zstandard data is corrupt or decodes to more than its declared 256 bytes",
  );
  const garbage = strip([["raw", 128, 5], ["rle", 128, 9]]);
  garbage.set([1, 2, 3, 4], ifdDataAt(8)); // no Zstandard magic
  await assertRejects(() => readTiff(garbage, "bad.tif"), CellposeError, "bad.tif: corrupt");
});

Deno.test("tiff: LERC and WebP blocks (decoders without a bound) are refused with the reason", async () => {
  for (const [compression, name] of [[34887, "LERC"], [50001, "WebP"]] as const) {
    const at = ifdDataAt(8);
    const { bytes } = ifdTiff([
      [256, 3, 1, 16],
      [257, 3, 1, 16],
      [258, 3, 1, 8],
      [259, 3, 1, compression],
      [262, 3, 1, 1],
      [273, 4, 1, at],
      [278, 3, 1, 16],
      [279, 4, 1, 16],
    ], 16);
    await assertRejects(
      () => readTiff(bytes, `${name}.tif`),
      CellposeError,
      `${name}.tif: corrupt or truncated TIFF (${name}-compressed TIFF is not supported: ` +
        "convert it to Deflate, LZW or none)",
    );
  }
});
