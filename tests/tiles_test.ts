import { assert, assertAlmostEquals, assertEquals, assertThrows } from "./assert.ts";
import { CellposeError } from "../core/errors.ts";
import {
  extractTile,
  padAmounts,
  planTiles,
  taperMask,
  TileAccumulator,
  tileCount,
  tileStarts,
} from "../pipeline/tiles.ts";

/** The formulas of pipeline.md section 4, written out independently of the module. */
function expectedPlan(n: number) {
  const lpad = n >= 256 ? 16 * Math.ceil(n / 16) - n : Math.max(0, 256 - n - 16);
  const pad: [number, number] = [8 + Math.floor(lpad / 2), 8 + lpad - Math.floor(lpad / 2)];
  const L = n + pad[0] + pad[1];
  const count = L <= 256 ? 1 : Math.ceil(1.2 * L / 256);
  const tile = Math.min(256, L);
  const starts: number[] = [];
  for (let i = 0; i < count; i++) {
    starts.push(count === 1 ? 0 : Math.trunc(i * ((L - tile) / (count - 1))));
  }
  if (count > 1) starts[count - 1] = L - tile;
  return { pad, L, starts };
}

Deno.test("tiles: padding and starts follow the formulas for several sizes", () => {
  // hand-checked values: 100 -> 140 + 16 to pad -> [78, 78], L 256, 1 tile;
  // 250 -> 0 + 16 -> [8, 8], L 266, 2 tiles [0, 10];
  // 300 -> [10, 10], L 320, ceil(1.5) = 2 tiles; 417 -> [15, 16], L 448, ceil(2.1) = 3 tiles
  assertEquals(padAmounts(100), [78, 78]);
  assertEquals(planTiles(100, 100).ys, [0]);
  assertEquals(padAmounts(250), [8, 8]);
  assertEquals(planTiles(250, 100).ys, [0, 10]);
  assertEquals(padAmounts(300), [10, 10]);
  assertEquals(padAmounts(417), [15, 16]);
  assertEquals(planTiles(300, 417).xs, [0, 96, 192]);
  assertEquals(padAmounts(256), [8, 8]);
  for (const n of [1, 100, 150, 208, 240, 241, 255, 256, 257, 300, 417, 1000, 1023, 4096]) {
    const e = expectedPlan(n);
    const plan = planTiles(n, 37);
    assertEquals(plan.padY, e.pad, `pad of ${n}`);
    assertEquals(plan.paddedHeight, e.L, `padded size of ${n}`);
    assertEquals(plan.ys, e.starts, `starts of ${n}`);
    assertEquals(plan.tileHeight, 256);
    // tiles cover the padded axis without gaps
    for (let i = 1; i < plan.ys.length; i++) assert(plan.ys[i] - plan.ys[i - 1] <= 256);
    assertEquals(plan.ys[plan.ys.length - 1] + 256, plan.paddedHeight);
  }
  // 1000 -> L 1024, ceil(1.2 * 4) = 5 tiles, linspace(0, 768, 5) = 0, 192, ...
  assertEquals(planTiles(1000, 1000).ys, [0, 192, 384, 576, 768]);
});

Deno.test("tiles: linspace truncation and counts", () => {
  assertEquals(tileStarts(0, 1), [0]);
  assertEquals(tileStarts(10, 3), [0, 5, 10]);
  // 7 / 3 = 2.333..: 0, 2, 4, 7
  assertEquals(tileStarts(7, 4), [0, 2, 4, 7]);
  assertEquals(tileCount(256), 1);
  assertEquals(tileCount(272), 2);
  assertEquals(tileCount(448, 256, 0.1), 3);
  // overlap is clamped to [0.05, 0.5] like cellpose's make_tiles
  assertEquals(tileCount(448, 256, 0), Math.ceil(1.1 * 448 / 256));
  assertEquals(tileCount(448, 256, 0.9), Math.ceil(2 * 448 / 256));
});

Deno.test("tiles: taper is cellpose's sigmoid, centre-cropped from max(224, size)", () => {
  const m = taperMask(256, 256);
  const m1 = (i: number) => 1 / (1 + Math.exp((Math.abs(i - 127.5) - 108) / 7.5));
  for (const [y, x] of [[0, 0], [10, 200], [127, 128], [255, 3]]) {
    assertAlmostEquals(m[y * 256 + x], m1(y) * m1(x), 1e-15);
  }
  // a 100-wide tile is the centre of the 224 mask: B/2 - 20 = 92, c = 111.5, offset 62
  const small = taperMask(100, 100);
  const s1 = (i: number) => 1 / (1 + Math.exp((Math.abs(i + 62 - 111.5) - 92) / 7.5));
  assertAlmostEquals(small[5 * 100 + 7], s1(5) * s1(7), 1e-15);
});

Deno.test("tiles: averaging a constant network output gives back the constant", () => {
  for (const [h, w] of [[100, 100], [300, 417], [417, 1000], [256, 257]]) {
    const plan = planTiles(h, w);
    const acc = new TileAccumulator(plan, 3);
    const out = new Float32Array(3 * 256 * 256);
    for (let c = 0; c < 3; c++) out.fill([0.75, -1.5, 3.25][c], c * 65536, (c + 1) * 65536);
    for (let j = 0; j < plan.ys.length; j++) {
      for (let i = 0; i < plan.xs.length; i++) acc.add(out, 0, j, i);
    }
    const r = acc.result();
    assertEquals(r.shape, [3, h, w]);
    for (let c = 0; c < 3; c++) {
      const v = [0.75, -1.5, 3.25][c];
      let maxErr = 0;
      for (let p = 0; p < h * w; p++) {
        maxErr = Math.max(maxErr, Math.abs(r.data[c * h * w + p] - v));
      }
      assert(maxErr <= 4e-7 * Math.abs(v), `channel ${c} of ${h}x${w}: error ${maxErr}`);
    }
  }
});

Deno.test("tiles: tiles read the padded image and recombine to the image itself", () => {
  const h = 300, w = 417;
  const img = { data: new Float32Array(h * w * 3), shape: [h, w, 3] };
  for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) img.data[p * 3 + c] = p % 1000 + c;
  const plan = planTiles(h, w);
  const tile = new Float32Array(3 * 256 * 256);
  const acc = new TileAccumulator(plan, 3);
  for (let j = 0; j < plan.ys.length; j++) {
    for (let i = 0; i < plan.xs.length; i++) {
      extractTile(img, plan, j, i, tile, 0);
      if (j === 0 && i === 0) {
        // padding rows/columns are zero, the first image pixel sits at (padY, padX)
        assertEquals(tile[0], 0);
        assertEquals(tile[(0 * 256 + 10) * 256 + 15], 0);
        assertEquals(tile[(1 * 256 + 10) * 256 + 15], 1);
        assertEquals(tile[(0 * 256 + 9) * 256 + 15], 0);
      }
      acc.add(tile, 0, j, i);
    }
  }
  const r = acc.result();
  let maxErr = 0;
  for (let p = 0; p < h * w; p++) {
    for (let c = 0; c < 3; c++) {
      maxErr = Math.max(maxErr, Math.abs(r.data[c * h * w + p] - img.data[p * 3 + c]));
    }
  }
  assert(maxErr < 1e-3, `identity network changes the image by ${maxErr}`);
});

Deno.test("tiles: bad sizes are BAD_PARAMETER", () => {
  const e = assertThrows(() => planTiles(0, 10), CellposeError, "height");
  assertEquals(e.code, "BAD_PARAMETER");
  assertThrows(() => planTiles(10, 10, { bsize: 0 }), CellposeError, "bsize");
});
