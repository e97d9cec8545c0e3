import { join } from "node:path";
import { assert, assertAlmostEquals, assertEquals, assertThrows, maxAbsDiff } from "./assert.ts";
import { fixture, REPO } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { readNpyFile } from "../io/npy.ts";
import { normalizeImage } from "../pipeline/normalize.ts";
import { percentile, percentiles } from "../core/percentile.ts";

Deno.test("normalize: eval fixtures (1st/99th percentile per channel) match cellpose", async () => {
  for (const name of ["eval2ch", "eval3ch", "evaldiam"]) {
    const converted = await fixture(`${name}-converted`) as NdArray<NumericArray>;
    const expected = await fixture(`${name}-normalized`);
    const out = normalizeImage(converted);
    assertEquals(out.shape, expected.shape);
    const d = maxAbsDiff(out.data, expected.data as Float32Array);
    assert(d <= 1e-6, `${name}: max difference ${d}`);
  }
});

Deno.test("normalize: percentiles are numpy's linear interpolation in float32", () => {
  // values and expected results from numpy 2.4: np.percentile(x, q) on the float32 array
  const x = Float32Array.from(
    { length: 1000 },
    (_, i) => ((i * 37) % 101) / 7 + i * 0.001,
  );
  const cases: [number, number][] = [
    [1, 0.4394528567790985],
    [99, 14.808975219726562],
    [2.5, 0.7659893035888672],
    [50, 7.645071506500244],
    [97.3, 14.482462882995605],
    [0, 0],
    [100, 15.224714279174805],
  ];
  for (const [q, v] of cases) assertEquals(percentile(x.slice(), q), v, `q = ${q}`);
  assertEquals(percentile(new Float32Array([5, 1, 9]), 99), 8.920000076293945);
  assertEquals(percentiles(Float32Array.from([40, 0, 30, 10, 20]), [1, 99]), [
    0.3999999761581421,
    39.599998474121094,
  ]);
  assertEquals(percentile(new Float32Array([3]), 1), 3);
});

Deno.test("normalize: options lowhigh, percentile, invert; flat channels become 0", () => {
  // channel 0: ramp 0..99, channel 1: constant, channel 2: tiny range (< 1e-3)
  const n = 100;
  const img = { data: new Float32Array(n * 3), shape: [10, 10, 3] };
  for (let i = 0; i < n; i++) img.data.set([i, 5, 1 + (i % 2) * 1e-4], i * 3);
  const out = normalizeImage(img).data;
  // p1 = 0.99, p99 = 98.01
  assertAlmostEquals(out[0], (0 - 0.99) / (98.01 - 0.99), 1e-6);
  assertAlmostEquals(out[99 * 3], (99 - 0.99) / (98.01 - 0.99), 1e-6);
  for (let i = 0; i < n; i++) {
    assertEquals(out[i * 3 + 1], 0);
    assertEquals(out[i * 3 + 2], 0);
  }
  // invert: 1 - x on normalised channels; the tiny-range channel was normalised (to 0) so it
  // becomes 1, the constant channel was not and stays 0 (cellpose's behaviour)
  const inv = normalizeImage(img, { invert: true }).data;
  assertAlmostEquals(inv[0], 1 - out[0], 1e-6);
  assertEquals([inv[1], inv[2]], [0, 1]);
  const lh = normalizeImage(img, { lowhigh: [0, 50] }).data;
  assertEquals([lh[10 * 3], lh[10 * 3 + 1]], [Math.fround(0.2), Math.fround(0.1)]);
  const lh3 = normalizeImage(img, { lowhigh: [[0, 100], [5, 6], [1, 2]] }).data;
  assertEquals([lh3[50 * 3], lh3[50 * 3 + 1]], [0.5, 0]);
  const pc = normalizeImage(img, { percentile: [0, 100] }).data;
  assertEquals([pc[0], pc[99 * 3]], [0, 1]);
});

Deno.test("normalize: percentiles of a big channel come from the strided subsample", () => {
  // 1 x 2300 x 4900 > 224^3 values: strides 2300 // 224 = 10 and 4900 // 224 = 21.
  // Sampled pixels (y % 10 == 0, x % 21 == 0) hold 100..199, all others 0..99, so the
  // subsample's 1st/99th percentiles are near 100 and 199, far from the full image's.
  const h = 2300, w = 4900;
  const data = new Uint8Array(h * w);
  let k = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++, k++) {
      data[k] = y % 10 === 0 && x % 21 === 0 ? 100 + (k % 100) : k % 100;
    }
  }
  const sample = new Float32Array(230 * 234);
  let s = 0;
  for (let y = 0; y < h; y += 10) for (let x = 0; x < w; x += 21) sample[s++] = data[y * w + x];
  const [lo, hi] = percentiles(sample, [1, 99]);
  assert(lo >= 100 && hi > 190, `subsample percentiles ${lo}, ${hi}`);
  const out = normalizeImage({ data, shape: [1, h, w, 1] }).data;
  const expect = (v: number) => Math.fround(Math.fround(v - lo) / Math.fround(hi - lo));
  for (const p of [0, 1, 12345, h * w - 1]) assertEquals(out[p], expect(data[p]));
});

Deno.test("normalize: norm3D normalises the stack at once, per plane otherwise", () => {
  // plane 1 is plane 0 times 10
  const plane = Float32Array.from({ length: 64 }, (_, i) => i);
  const stack = { data: new Float32Array(128), shape: [2, 8, 8, 1] };
  stack.data.set(plane, 0);
  stack.data.set(plane.map((v) => v * 10), 64);
  const per = normalizeImage(stack, { norm3D: false }).data;
  for (let i = 0; i < 64; i++) assertAlmostEquals(per[i], per[64 + i], 1e-6);
  const all = normalizeImage(stack).data;
  assert(all[64 + 63] > 5 * all[63], "one normalisation keeps the planes' ratio");
});

Deno.test("normalize: tileNormBlocksize matches the reference (tests/data/normalize)", async () => {
  // made with numpy 1.24 + scipy 1.10 (gaussian_filter1d) + OpenCV 4.6 (cv2.resize) following
  // cellpose's normalize99_tile: blocks 30 (2-D, with flat blocks filled from neighbours) and
  // 15 (a 3-plane stack, norm3D)
  const dir = join(REPO, "tests", "data", "normalize");
  for (const [name, blocksize] of [["tile2d", 30], ["tile3d", 15]] as const) {
    const input = await readNpyFile(join(dir, `${name}-in.npy`)) as NdArray<NumericArray>;
    const expected = await readNpyFile(join(dir, `${name}-out.npy`));
    const out = normalizeImage(input, { tileNormBlocksize: blocksize });
    assertEquals(out.shape, expected.shape);
    const d = maxAbsDiff(out.data, expected.data as Float32Array);
    assert(d <= 1e-5, `${name}: max difference ${d}`);
  }
});

Deno.test("normalize: NaN and bad options are typed errors naming them", () => {
  const img = { data: new Float32Array([0, 1, NaN, 3]), shape: [2, 2, 1] };
  const e = assertThrows(() => normalizeImage(img), CellposeError, "NaN");
  assertEquals(e.code, "BAD_VALUE");
  const ok = { data: new Float32Array(12), shape: [2, 2, 3] };
  const bad: [Record<string, unknown>, string][] = [
    [{ percentile: [99, 1] }, "percentile"],
    [{ percentile: [-1, 99] }, "percentile"],
    [{ lowhigh: [1] }, "lowhigh"],
    [{ lowhigh: [[0, 1], [0, 1]] }, "lowhigh"],
    [{ tileNormBlocksize: -3 }, "tileNormBlocksize"],
  ];
  for (const [opts, field] of bad) {
    assertEquals(
      assertThrows(() => normalizeImage(ok, opts), CellposeError, field).code,
      "BAD_PARAMETER",
    );
  }
  const flat = { data: new Float32Array(4), shape: [4] };
  assertEquals(
    assertThrows(() => normalizeImage(flat), CellposeError, "[H, W, C]").code,
    "BAD_SHAPE",
  );
});
