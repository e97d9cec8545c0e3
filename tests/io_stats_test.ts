/** Per-mask statistics and their CSV, checked against values counted by hand. */
import { assertEquals, assertThrows } from "./assert.ts";
import { CellposeError } from "../core/errors.ts";
import { maskStats, statsCsv } from "../io/stats.ts";

const masks = {
  data: Uint16Array.from([
    0,
    1,
    1,
    0,
    0,
    1,
    0,
    2,
    3,
    0,
    0,
    2,
  ]),
  shape: [3, 4],
};

Deno.test("stats: area, centroid, bbox and grey mean", () => {
  const grey = { data: Float32Array.from({ length: 12 }, (_, i) => i), shape: [3, 4] };
  assertEquals(maskStats(masks, grey), [
    {
      label: 1,
      area: 3,
      centroid: [1 / 3, 4 / 3],
      bboxStart: [0, 1],
      bboxEnd: [2, 3],
      mean: [(1 + 2 + 5) / 3],
    },
    {
      label: 2,
      area: 2,
      centroid: [1.5, 3],
      bboxStart: [1, 3],
      bboxEnd: [3, 4],
      mean: [(7 + 11) / 2],
    },
    { label: 3, area: 1, centroid: [2, 0], bboxStart: [2, 0], bboxEnd: [3, 1], mean: [8] },
  ]);
});

Deno.test("stats: channels last (YXC) and first (CYX) give the same means", () => {
  const yxc = {
    data: Float32Array.from({ length: 24 }, (_, i) => (i % 2 ? 100 : 0) + (i >> 1)),
    shape: [3, 4, 2],
  };
  const cyx = { data: new Float32Array(24), shape: [2, 3, 4] };
  for (let p = 0; p < 12; p++) {
    for (let c = 0; c < 2; c++) cyx.data[c * 12 + p] = yxc.data[p * 2 + c];
  }
  const a = maskStats(masks, yxc).map((s) => s.mean);
  assertEquals(a, [[8 / 3, 100 + 8 / 3], [9, 109], [8, 108]]);
  assertEquals(maskStats(masks, cyx, { channelAxis: 0 }).map((s) => s.mean), a);
});

Deno.test("stats: 3D masks and the CSV table", () => {
  const m3 = { data: Uint32Array.from([0, 5, 0, 0, 0, 5, 5, 0]), shape: [2, 2, 2] };
  const csv = statsCsv(maskStats(m3));
  assertEquals(
    csv,
    "label,area,centroid_z,centroid_y,centroid_x,bbox_z0,bbox_y0,bbox_x0,bbox_z1,bbox_y1,bbox_x1\n" +
      "5,3,0.6666667,0.3333333,0.6666667,0,0,0,2,2,2\n",
  );
  assertEquals(
    statsCsv(maskStats(masks)).split("\n")[1],
    "1,3,0.3333333,1.333333,0,1,2,3",
  );
});

Deno.test("stats: mismatched image or channel axis is refused", () => {
  assertThrows(
    () => maskStats(masks, { data: new Float32Array(6), shape: [2, 3] }),
    CellposeError,
    "image [2,3] (channel axis undefined) must match masks [3,4]",
  );
  assertThrows(
    () =>
      maskStats({ data: new Uint16Array(24), shape: [2, 3, 4] }, {
        data: new Float32Array(48),
        shape: [2, 2, 3, 4],
      }, { channelAxis: 1 }),
    CellposeError,
    "channelAxis must be 0 or 3 (first or last), got 1",
  );
  assertThrows(
    () => maskStats({ data: new Uint16Array(2), shape: [2] }),
    CellposeError,
    "masks must be [H, W] or [Z, H, W]",
  );
});
