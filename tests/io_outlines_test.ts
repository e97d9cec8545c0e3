/**
 * Outlines against OpenCV: the reference `_cp_outlines.txt` files in tests/data/outlines were
 * made by make_outlines.py with cv2.findContours exactly as cellpose's outlines_list does.
 */
import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { DATA, REPO } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { readImage } from "../io/image.ts";
import { readNpyFile } from "../io/npy.ts";
import { masksToOutlines, outlineOverlayPng, outlinePixels, outlinesText } from "../io/outlines.ts";
import { readPng } from "../io/png.ts";

const OUT = join(REPO, "tests", "data", "outlines");

async function masksOf(name: string): Promise<NdArray<NumericArray>> {
  if (name === "synthetic") {
    return (await readNpyFile(join(OUT, "synthetic_masks.npy"))) as NdArray<NumericArray>;
  }
  return (await readImage(join(DATA, "dsb2018", `${name}_masks.tif`))).image;
}

Deno.test("outlines: identical to cv2.findContours as cellpose uses it", async () => {
  for (const name of ["synthetic", "00071198d059", "2cfa857e63be"]) {
    const want = await Deno.readTextFile(join(OUT, `${name}_cp_outlines.txt`));
    assertEquals(outlinesText(masksToOutlines(await masksOf(name))), want, name);
  }
});

Deno.test("outlines: labels ascending, tiny masks empty, a square traced down its left side first", async () => {
  const o = masksToOutlines(await masksOf("synthetic"));
  assertEquals(o.map((x) => x.label), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assertEquals(Array.from(o[0].xy), [1, 1, 1, 2, 1, 3, 2, 3, 3, 3, 3, 2, 3, 1, 2, 1]);
  assertEquals([o[4].xy.length, o[5].xy.length], [0, 0]); // 1 pixel, 2x2: 4 points or fewer
});

Deno.test("outlinePixels: every external contour pixel, holes' borders excluded", async () => {
  const m = await masksOf("synthetic");
  const e = outlinePixels(m);
  const w = m.shape[1];
  // the square 5..11 x 2..8 with a hole at 7..8 x 4..5: its outer ring only
  assertEquals(e.data[5 * w + 2], 1);
  assertEquals(e.data[6 * w + 4], 0); // next to the hole, not on the outer border
  assertEquals(e.data[14 * w + 2], 1); // single pixel mask
  // both components of label 4 are drawn
  assertEquals([e.data[5 * w + 12], e.data[10 * w + 15]], [1, 1]);
  let n = 0;
  for (let i = 0; i < m.data.length; i++) {
    assert(!e.data[i] || m.data[i] !== 0, "outline pixels lie on masks");
    n += e.data[i];
  }
  assertEquals(n, 138); // cellpose masks_to_outlines with cv2 marks 138 pixels
});

Deno.test("outline overlay: red outline pixels on the scaled grey image", () => {
  const img = { data: Float32Array.from({ length: 100 }, (_, i) => i), shape: [10, 10] };
  const masks = { data: new Uint16Array(100), shape: [10, 10] };
  for (let y = 2; y < 6; y++) for (let x = 3; x < 8; x++) masks.data[y * 10 + x] = 1;
  const png = readPng(outlineOverlayPng(img, masks), "overlay.png");
  assertEquals([png.axes, png.image.shape], ["YXC", [10, 10, 3]]);
  const px = (i: number) => Array.from(png.image.data.subarray(3 * i, 3 * i + 3));
  assertEquals(px(2 * 10 + 3), [255, 0, 0]); // outline
  assertEquals(px(3 * 10 + 4), [86, 86, 86]); // interior: floor((34 - 0.99) / (98.01 - 0.99) * 255)
  assertEquals(px(0), [0, 0, 0]); // below the 1st percentile
  assertEquals(px(99), [255, 255, 255]);
});

Deno.test("outline overlay: RGB scaled by the whole image's percentiles, CYX too", () => {
  const rgb = { data: Uint8Array.from({ length: 4 * 5 * 3 }, (_, i) => 60 + i), shape: [4, 5, 3] };
  const cyx = { data: new Uint8Array(60), shape: [3, 4, 5] };
  for (let p = 0; p < 20; p++) {
    for (let k = 0; k < 3; k++) cyx.data[k * 20 + p] = rgb.data[p * 3 + k];
  }
  const masks = { data: new Uint16Array(20), shape: [4, 5] };
  masks.data.fill(2, 0, 3);
  const a = readPng(outlineOverlayPng(rgb, masks), "a.png").image.data;
  assertEquals(Array.from(a.subarray(0, 3)), [255, 0, 0]);
  // p1 = 60.59, p99 = 118.41: floor((81 - 60.59) / 57.82 * 255) = 90 ...
  assertEquals(Array.from(a.subarray(3 * 7, 3 * 8)), [90, 94, 98]);
  assertEquals(readPng(outlineOverlayPng(cyx, masks, { channelAxis: 0 }), "b.png").image.data, a);
});

Deno.test("outlines: bad shapes are refused", () => {
  const m3 = { data: new Uint16Array(8), shape: [2, 2, 2] };
  assertThrows(
    () => masksToOutlines(m3),
    CellposeError,
    "outlines need 2D masks [H, W], got shape [2,2,2]",
  );
  const img = { data: new Float32Array(6), shape: [2, 3] };
  assertThrows(
    () => outlineOverlayPng(img, { data: new Uint16Array(4), shape: [2, 2] }),
    CellposeError,
    "overlay image [2,3] (channel axis undefined) must match masks [2,2]",
  );
});
