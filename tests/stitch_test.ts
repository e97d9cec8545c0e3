import { assertEquals, assertThrows } from "./assert.ts";
import { CellposeError } from "../core/errors.ts";
import { stitchPlanes } from "../pipeline/stitch.ts";

/** Builds [Z, 1, W] labels from rows of numbers (one row per plane). */
function planes(rows: number[][]): { labels: Uint32Array; shape: number[] } {
  return { labels: Uint32Array.from(rows.flat()), shape: [rows.length, 1, rows[0].length] };
}

Deno.test("stitch: a mask overlapping enough keeps its label, otherwise it gets a new one", () => {
  // plane 1: label 5 overlaps label 1 with IoU 3/4, label 2 overlaps label 2 with IoU 1/5
  const p = planes([
    [1, 1, 1, 1, 0, 2, 2, 2, 0, 0],
    [0, 5, 5, 5, 0, 0, 0, 2, 2, 2],
  ]);
  const max = stitchPlanes(p.labels, p.shape, 0.5);
  // labels 1..5 of plane 1: 5 -> 1 (stitched), 2 -> new; every unmatched label number gets a
  // new label in order (cellpose's istitch): 1 -> 3, 2 -> 4, 3 -> 5, 4 -> 6
  assertEquals(Array.from(p.labels.slice(10)), [0, 1, 1, 1, 0, 0, 0, 4, 4, 4]);
  assertEquals(max, 4);
  // with a low threshold both are stitched
  const q = planes([
    [1, 1, 1, 1, 0, 2, 2, 2, 0, 0],
    [0, 5, 5, 5, 0, 0, 0, 2, 2, 2],
  ]);
  stitchPlanes(q.labels, q.shape, 0.1);
  assertEquals(Array.from(q.labels.slice(10)), [0, 1, 1, 1, 0, 0, 0, 2, 2, 2]);
});

Deno.test("stitch: of two masks on one label only the best overlap keeps it", () => {
  const p = planes([
    [1, 1, 1, 1, 1, 1, 0, 0],
    [1, 1, 0, 2, 2, 2, 2, 0],
  ]);
  stitchPlanes(p.labels, p.shape, 0.2);
  // IoU(1, 1) = 2/6, IoU(2, 1) = 3/7: label 2 wins label 1, label 1 becomes new label 2
  assertEquals(Array.from(p.labels.slice(8)), [2, 2, 0, 1, 1, 1, 1, 0]);
});

Deno.test("stitch: chains across planes; empty planes before any stitching keep labels", () => {
  const p = planes([
    [0, 0, 0, 0],
    [1, 1, 0, 0],
    [1, 1, 0, 2],
    [0, 0, 0, 0],
    [0, 0, 3, 3],
  ]);
  stitchPlanes(p.labels, p.shape, 0.25);
  assertEquals(Array.from(p.labels), [
    ...[0, 0, 0, 0],
    ...[1, 1, 0, 0], // first non-empty plane: own labels
    ...[1, 1, 0, 2], // 1 stitched; 2 unmatched -> a new label after the max so far (1)
    ...[0, 0, 0, 0],
    ...[0, 0, 5, 5], // after stitching, a plane after an empty one is shifted by the max (2)
  ]);
});

Deno.test("stitch: bad shapes and thresholds are typed errors", () => {
  const e = assertThrows(() => stitchPlanes(new Uint32Array(6), [2, 2], 0.5), CellposeError);
  assertEquals(e.code, "BAD_SHAPE");
  const f = assertThrows(
    () => stitchPlanes(new Uint32Array(4), [1, 2, 2], 1.5),
    CellposeError,
    "stitchThreshold",
  );
  assertEquals(f.code, "BAD_PARAMETER");
});
