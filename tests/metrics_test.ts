import { assertEquals, assertThrows } from "./assert.ts";
import { fixture, manifest } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import { averagePrecision, errorRate, intersectionOverUnion } from "../metrics/matching.ts";

Deno.test("averagePrecision: equals cellpose metrics.average_precision on metrics-gt/pred", async () => {
  const m = (await manifest()).metrics;
  const gt = await fixture("metrics-gt"), pred = await fixture("metrics-pred");
  const r = averagePrecision(gt, pred, m.thresholds);
  assertEquals(r.ap, m.ap);
  assertEquals(r.tp, m.tp);
  assertEquals(r.fp, m.fp);
  assertEquals(r.fn, m.fn);
  assertEquals(averagePrecision(gt, pred), r); // default thresholds [0.5, 0.75, 0.9]
});

Deno.test("errorRate: (FP + FN) / (TP + FN) at IoU 0.5", async () => {
  const gt = await fixture("metrics-gt"), pred = await fixture("metrics-pred");
  assertEquals(errorRate(gt, pred), (7 + 6) / (24 + 6));
  assertEquals(errorRate(gt, gt), 0);
});

Deno.test("averagePrecision: low thresholds use an optimal one-to-one assignment", () => {
  // at IoU >= 0.25, gt 1 may pair with pred 1 or 2 and gt 2 only with pred 1:
  // taking gt1 -> pred1 would leave gt2 unmatched, the assignment matches both
  const gt = { data: new Uint8Array([1, 1, 1, 1, 1, 2, 2, 2, 0, 0]), shape: [1, 10] };
  const pred = { data: new Uint8Array([2, 2, 2, 1, 1, 1, 1, 0, 0, 0]), shape: [1, 10] };
  const iou = intersectionOverUnion(gt, pred);
  assertEquals(iou.shape, [2, 2]);
  assertEquals(Array.from(iou.data), [2 / 7, 3 / 5, 2 / 5, 0]);
  assertEquals(averagePrecision(gt, pred, [0.25]).tp, [2]);
  assertEquals(averagePrecision(gt, pred, [0.5]).tp, [1]);
  assertEquals(averagePrecision(gt, pred, [0.7]), { ap: [0], tp: [0], fp: [2], fn: [2] });
});

Deno.test("averagePrecision: empty prediction, and mismatched shapes", () => {
  const gt = { data: new Uint16Array([1, 1, 0, 2]), shape: [2, 2] };
  const none = { data: new Uint16Array(4), shape: [2, 2] };
  assertEquals(averagePrecision(gt, none, [0.5]), { ap: [0], tp: [0], fp: [0], fn: [2] });
  const e = assertThrows(
    () => averagePrecision(gt, { data: new Uint16Array(6), shape: [2, 3] }),
    CellposeError,
    "same shape",
  );
  assertEquals(e.code, "BAD_SHAPE");
  const big = assertThrows(
    () => averagePrecision(gt, { data: new Uint32Array([0, 3e9, 0, 0]), shape: [2, 2] }),
    CellposeError,
    "renumber",
  );
  assertEquals(big.code, "BAD_VALUE");
});
