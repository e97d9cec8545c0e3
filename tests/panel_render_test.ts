import { assert, assertEquals } from "./assert.ts";
import {
  cellprobToRgba,
  countMasks,
  deleteMask,
  flowsToRgba,
  labelColor,
  overlay,
  paintDisc,
} from "../plugin-ui/src/render.ts";
import { maxLabel } from "../core/labels.ts";

Deno.test("panel render: overlay fills masks, draws outlines on mask borders, leaves background", () => {
  const w = 5, h = 5;
  const labels = new Uint16Array(w * h);
  for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) labels[y * w + x] = 7;
  const grey = new Uint8ClampedArray(4 * w * h).fill(100);
  const out = overlay(grey, labels, w, h, {
    opacity: 0.5,
    outlines: true,
    outlineColor: [255, 0, 0],
  });
  assertEquals(Array.from(out.slice(0, 4)), [100, 100, 100, 100]); // background untouched
  const edge = 4 * (1 * w + 1);
  assertEquals(Array.from(out.slice(edge, edge + 3)), [255, 0, 0]); // border pixel = outline
  const centre = 4 * (2 * w + 2);
  const c = labelColor(7);
  for (let k = 0; k < 3; k++) assert(Math.abs(out[centre + k] - (100 * 0.5 + c[k] * 0.5)) <= 0.5);
  assertEquals(grey[centre], 100, "input is not modified");
});

Deno.test("panel render: label colours are stable and neighbours differ", () => {
  // golden-ratio hue steps, saturation 0.85, lightness 0.5 +- 0.15 by a hash of the label
  // (worked by hand for label 1: hue 0.618, lightness 0.5 -> red 255 * (0.5 - 0.425) = 19)
  assertEquals([1, 2, 3].map(labelColor), [[19, 82, 236], [146, 236, 19], [242, 90, 223]]);
  for (let l = 1; l < 50; l++) {
    assert(labelColor(l).join() !== labelColor(l + 1).join(), `labels ${l}, ${l + 1}`);
  }
});

Deno.test("panel render: delete, brush and erase edit labels in place", () => {
  const w = 10, h = 10;
  const labels = new Uint32Array(w * h);
  labels.fill(2, 0, 30);
  labels.fill(5, 50, 60);
  assertEquals(countMasks(labels), 2);
  assertEquals(deleteMask(labels, 2), 30);
  assertEquals(countMasks(labels), 1);
  assertEquals(deleteMask(labels, 0), 0, "background is not a mask");
  const painted = paintDisc(labels, w, h, 2, 2, 1.5, maxLabel(labels) + 1);
  assertEquals(painted, 9); // 3x3 disc of radius 1.5
  assertEquals(labels[2 * w + 2], 6);
  // the brush does not overwrite other masks unless asked
  assertEquals(paintDisc(labels, w, h, 5, 5, 0, 6), 0);
  assertEquals(labels[5 * w + 5], 5);
  assertEquals(paintDisc(labels, w, h, 2, 2, 1.5, 0), 9); // erase
  assertEquals(countMasks(labels), 1);
});

Deno.test("panel render: flows as colour follow the angle; cellprob 0 is mid grey", () => {
  // a field pointing right (dX = 1) and one pointing left (dX = -1) get different colours
  const n = 4;
  const flows = new Float32Array(2 * n);
  flows.set([1, 2, -1, -2], n);
  const rgba = flowsToRgba(flows, 4, 1);
  assert(rgba.slice(4, 7).join() !== rgba.slice(12, 15).join(), "right and left differ");
  assert(rgba[4] + rgba[5] + rgba[6] > rgba[0] + rgba[1] + rgba[2], "larger flow is brighter");
  assertEquals(rgba[3], 255);
  // cellpose's dx_to_circ on unit flows up, down, right, left and a still pixel: angle =
  // atan2(dX, dY) + pi, channel c = clip(mag / 2 * (cos(angle + c * 2 pi / 3) + 1)): up is pure
  // red (255, 63, 63), down has no red; right and left share red 127 and swap green and blue.
  // Swapping dY and dX gives other colours for every one of them.
  const unit = new Float32Array(10);
  unit.set([-1, 1, 0, 0, 0], 0); // dY
  unit.set([0, 0, 1, -1, 0], 5); // dX
  const circ = flowsToRgba(unit, 5, 1);
  const px = (i: number) => Array.from(circ.slice(4 * i, 4 * i + 3));
  assertEquals([0, 1, 2, 3, 4].map(px), [
    [255, 63, 63],
    [0, 191, 191],
    [127, 237, 17],
    [127, 17, 237],
    [0, 0, 0],
  ]);
  const cp = cellprobToRgba(new Float32Array([0, 10, -10]));
  assertEquals(cp[0], 128);
  assertEquals(cp[4], 255);
  assertEquals(cp[8], 0);
});
