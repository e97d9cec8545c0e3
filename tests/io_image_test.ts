/**
 * readImage dispatch by magic bytes, PNG (palette, 1-bit, grey+alpha, 16-bit RGBA, real dsb2018
 * RGBA), JPEG (grey and colour, made with OpenCV), .npy, PNG writing, and bad inputs.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { DATA, REPO } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import { readImage } from "../io/image.ts";
import { writeNpy } from "../io/npy.ts";
import { encodePng, readPng } from "../io/png.ts";
import { encodeTiff } from "../io/tiff_write.ts";

const PNGS = join(REPO, "tests", "data", "png");
const idx = (h: number, w: number) => Array.from({ length: h * w }, (_, i) => i);

Deno.test("png: palette, 1-bit grey, grey+alpha and 16-bit RGBA decode to known pixels", async () => {
  const pal = await readImage(join(PNGS, "palette.png"));
  assertEquals([pal.axes, pal.image.shape, pal.channelAxis], ["YXC", [6, 10, 3], 2]);
  const colours = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [10, 20, 30]];
  assertEquals(Array.from(pal.image.data), idx(6, 10).flatMap((i) => colours[i % 4]));

  const bit = await readImage(join(PNGS, "grey_1bit.png"));
  assertEquals([bit.axes, bit.image.shape], ["YX", [6, 10]]);
  assertEquals(Array.from(bit.image.data), idx(6, 10).map((i) => (i % 3 === 0 ? 255 : 0)));

  const ga = await readImage(join(PNGS, "grey_alpha.png"));
  assertEquals([ga.axes, ga.image.shape], ["YX", [6, 10]]);
  assertEquals(Array.from(ga.image.data), idx(6, 10).map((i) => i * 4));

  const rgba = await readImage(join(PNGS, "rgba16.png"));
  assertEquals([rgba.axes, rgba.image.shape], ["YXC", [6, 10, 3]]);
  assert(rgba.image.data instanceof Uint16Array);
  assertEquals(
    Array.from(rgba.image.data),
    idx(6, 10).flatMap((i) => [i * 1000, i * 7, 65535 - i]),
  );
});

Deno.test("png: real dsb2018 RGBA image drops alpha and keeps RGB", async () => {
  const img = await readImage(join(DATA, "dsb2018", "4d14a3629b6a.png"));
  assertEquals([img.axes, img.image.shape], ["YXC", [256, 320, 3]]);
  assert(img.image.data instanceof Uint8Array);
  assertEquals(img.name, "4d14a3629b6a.png");
});

Deno.test("png: uint16 labels and uint8 RGB round-trip through encodePng", () => {
  const labels = Uint16Array.from({ length: 30 * 20 }, (_, i) => (i * 389) % 65536);
  const back = readPng(encodePng({ data: labels, shape: [30, 20] }), "l.png");
  assertEquals([back.axes, back.image.data], ["YX", labels]);
  const rgb = Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => i * 4);
  assertEquals(readPng(encodePng({ data: rgb, shape: [5, 4, 3] }), "c.png").image.data, rgb);
  assertThrows(
    () => encodePng({ data: new Float32Array(4), shape: [2, 2] }),
    CellposeError,
    "PNG holds uint8 or uint16 values, got Float32Array",
  );
  assertThrows(
    () => encodePng({ data: new Uint8Array(8), shape: [2, 2, 2] }),
    CellposeError,
    "PNG needs [H, W], [H, W, 3] or [H, W, 4], got [2,2,2]",
  );
});

Deno.test("jpeg: grey JPEG is YX, colour JPEG is YXC in RGB order", async () => {
  const grey = await readImage(join(PNGS, "grey.jpg"));
  assertEquals([grey.axes, grey.image.shape], ["YX", [16, 24]]);
  const want = idx(16, 24).map((i) => (i % 64) * 4);
  // quality 100: the decoded values stay within 3 of the originals
  grey.image.data.forEach((v, i) =>
    assert(Math.abs(v - want[i]) <= 3, `grey pixel ${i}: ${v} vs ${want[i]}`)
  );
  const colour = await readImage(join(PNGS, "colour.jpg"));
  assertEquals([colour.axes, colour.image.shape], ["YXC", [16, 24, 3]]);
  const d = colour.image.data;
  const px = (y: number, x: number) =>
    Array.from(d.subarray((y * 24 + x) * 3, (y * 24 + x) * 3 + 3));
  for (const [got, exp] of [[px(8, 3), [200, 0, 0]], [px(8, 20), [200, 100, 0]]]) {
    got.forEach((v, k) => assert(Math.abs(v - exp[k]) <= 3, `colour ${got} vs ${exp}`));
  }
});

Deno.test("npy: axes guessed from the shape", async () => {
  const cases: [number[], string][] = [
    [[4, 5], "YX"],
    [[4, 5, 3], "YXC"],
    [[6, 4, 5], "YXC"],
    [[3, 280, 260], "CYX"],
    [[6, 4, 5, 2], "ZYXC"],
    [[6, 2, 40, 50], "ZCYX"],
  ];
  for (const [shape, axes] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const img = await readImage(writeNpy({ data: new Float32Array(n), shape }), "a.npy");
    assertEquals([img.axes, img.image.shape], [axes, shape]);
  }
});

Deno.test("readImage: dispatches by magic bytes, not extension", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "really_a_tiff.png");
    await Deno.writeFile(path, encodeTiff({ data: new Uint16Array([1, 2, 3, 4]), shape: [2, 2] }));
    const img = await readImage(path);
    assertEquals([img.name, img.axes, Array.from(img.image.data)], ["really_a_tiff.png", "YX", [
      1,
      2,
      3,
      4,
    ]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readImage: bad inputs give BAD_FILE naming the file and the reason", async () => {
  const random = Uint8Array.from({ length: 256 }, (_, i) => (i * 73 + 19) % 251);
  const cases: [Uint8Array | string, string][] = [
    [random, "random.bin: unrecognised image format (first bytes 13 5c a5 ee 3c 85 ce 1c)"],
    [new Uint8Array(0), "empty.tif: empty file (0 bytes)"],
    [join(PNGS, "bad_truncated.png"), "bad_truncated.png: corrupt or truncated PNG"],
    [join(PNGS, "bad_truncated.jpg"), "bad_truncated.jpg: corrupt or truncated JPEG"],
    [join(PNGS, "does_not_exist.png"), "does_not_exist.png: cannot read file"],
    [
      writeNpy({ data: new Float32Array(0), shape: [0, 4] }),
      "zero.npy: zero-size image (shape [0,4])",
    ],
    [
      writeNpy({ data: new Float32Array(4), shape: [4] }),
      "flat.npy: .npy image must have 2 to 4 dimensions, got shape [4]",
    ],
    [
      writeNpy({ data: new BigInt64Array(4), shape: [2, 2] }),
      "big.npy: 64-bit integer .npy images are not supported",
    ],
    [
      writeNpy({ data: new Uint8Array(16), shape: [4, 4] }).subarray(0, 136),
      "cut.npy: .npy data truncated",
    ],
  ];
  const names = [
    "random.bin",
    "empty.tif",
    undefined,
    undefined,
    undefined,
    "zero.npy",
    "flat.npy",
    "big.npy",
    "cut.npy",
  ];
  for (let i = 0; i < cases.length; i++) {
    const [src, msg] = cases[i];
    const e = await assertRejects(() => readImage(src, names[i]), CellposeError, msg);
    assertEquals(e.code, "BAD_FILE");
  }
});
