/**
 * Test helper: compares two label images up to renumbering. Every expected mask must have an
 * actual mask with IoU >= `minIoU` (one to one, as IoU > 0.5 pairs are unique), and no actual
 * mask may be left over.
 *
 * @example
 * ```ts
 * import { assertMasksMatch } from "./match_masks.ts";
 * const a = { data: new Uint16Array([1, 1, 2, 2]), shape: [2, 2] };
 * const b = { data: new Uint16Array([2, 2, 1, 1]), shape: [2, 2] };
 * assertMasksMatch(a, b); // same masks, other labels
 * ```
 * @module
 */
import { assert } from "./assert.ts";
import type { NdArray } from "../core/ndarray.ts";
import { iouPairs } from "../metrics/matching.ts";

/** Result of {@link matchMasks}. */
export interface MaskMatch {
  /** masks in the expected / actual image (largest label) */
  nExpected: number;
  nActual: number;
  /** expected masks with an actual mask at IoU >= minIoU */
  matched: number;
  /** expected labels without such a match */
  missing: number[];
  /** actual labels not matched by any expected mask */
  extra: number[];
  /** smallest and mean best IoU over the expected masks */
  minIoU: number;
  meanIoU: number;
  /** the label images are equal element by element */
  identical: boolean;
}

/** Matches the masks of `actual` to those of `expected` by IoU. */
export function matchMasks(actual: NdArray, expected: NdArray, minIoU = 0.99): MaskMatch {
  const pairs = iouPairs(expected, actual);
  const ne = pairs.nTrue, na = pairs.nPred;
  // best actual mask of every expected mask
  const best = new Float64Array(ne + 1), arg = new Int32Array(ne + 1);
  for (let k = 0; k < pairs.a.length; k++) {
    const e = pairs.a[k];
    if (pairs.iou[k] > best[e]) (best[e] = pairs.iou[k]), (arg[e] = pairs.b[k]);
  }
  const used = new Uint8Array(na + 1);
  const missing: number[] = [];
  let matched = 0, worst = ne ? Infinity : 1, sum = 0;
  for (let e = 1; e <= ne; e++) {
    worst = Math.min(worst, best[e]);
    sum += best[e];
    if (best[e] >= minIoU && !used[arg[e]]) (used[arg[e]] = 1), matched++;
    else missing.push(e);
  }
  const extra: number[] = [];
  for (let a = 1; a <= na; a++) if (!used[a]) extra.push(a);
  let identical = actual.data.length === expected.data.length;
  for (let i = 0; identical && i < actual.data.length; i++) {
    identical = actual.data[i] === expected.data[i];
  }
  return {
    nExpected: ne,
    nActual: na,
    matched,
    missing,
    extra,
    minIoU: worst,
    meanIoU: ne ? sum / ne : 1,
    identical,
  };
}

/** Asserts that `actual` and `expected` hold the same masks up to renumbering. */
export function assertMasksMatch(
  actual: NdArray,
  expected: NdArray,
  minIoU = 0.99,
  msg = "",
): MaskMatch {
  const m = matchMasks(actual, expected, minIoU);
  assert(
    !m.missing.length && !m.extra.length,
    `${msg}masks differ (IoU >= ${minIoU}): ${m.matched}/${m.nExpected} matched, ` +
      `missing expected labels [${m.missing.slice(0, 20)}], extra actual labels ` +
      `[${m.extra.slice(0, 20)}], worst best-IoU ${m.minIoU.toFixed(4)}`,
  );
  return m;
}
