import { assertEquals, assertThrows } from "./assert.ts";
import { REPO } from "./fixtures.ts";
import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { readNpyFile } from "../io/npy.ts";
import { resizeImage } from "../pipeline/resize.ts";

const DIR = join(REPO, "tests", "data", "resize");

Deno.test("resize: bit-exact against cv2.resize INTER_LINEAR float32 (tests/data/resize)", async () => {
  const cases: number[][] = JSON.parse(await Deno.readTextFile(join(DIR, "cases.json")));
  for (const [i, [h, w, c, oh, ow]] of cases.entries()) {
    const input = await readNpyFile(join(DIR, `case${i}-in.npy`)) as NdArray<Float32Array>;
    const expected = await readNpyFile(join(DIR, `case${i}-out.npy`)) as NdArray<Float32Array>;
    assertEquals(input.shape, c ? [h, w, c] : [h, w]);
    const out = resizeImage(input, oh, ow);
    assertEquals(out.shape, expected.shape, `case ${i}`);
    let bad = 0;
    for (let k = 0; k < out.data.length; k++) if (out.data[k] !== expected.data[k]) bad++;
    assertEquals(bad, 0, `case ${i}: ${bad} of ${out.data.length} values differ`);
  }
});

Deno.test("resize: coordinate formula on a hand-checked ramp", () => {
  // 4 -> 8 along X: source x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, ... 3.25 (border kept)
  const ramp = { data: new Float32Array([0, 10, 20, 30]), shape: [1, 4] };
  assertEquals(Array.from(resizeImage(ramp, 1, 8).data), [0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30]);
  // 8 -> 3 along X: no antialiasing, x = (i + 0.5) * 8/3 - 0.5 = 0.8333, 3.5, 6.1667
  const r8 = { data: Float32Array.from({ length: 8 }, (_, i) => i), shape: [1, 8] };
  const out = resizeImage(r8, 1, 3).data;
  assertEquals(out[1], 3.5);
  assertEquals(Math.abs(out[0] - 0.8333333) < 1e-6, true);
});

Deno.test("resize: bad arguments are typed errors", () => {
  const img = { data: new Float32Array(12), shape: [3, 4] };
  assertEquals(
    assertThrows(() => resizeImage(img, 0, 4), CellposeError, "height").code,
    "BAD_PARAMETER",
  );
  assertEquals(
    assertThrows(() => resizeImage(img, 2, 2.5), CellposeError, "width").code,
    "BAD_PARAMETER",
  );
  const flat = { data: new Float32Array(4), shape: [4] };
  assertEquals(
    assertThrows(() => resizeImage(flat, 2, 2), CellposeError, "[H, W]").code,
    "BAD_SHAPE",
  );
});
