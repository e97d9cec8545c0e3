/**
 * End-to-end parity of {@link segment} with cellpose v4 on the eval fixtures, using the tiny
 * random cpsam checkpoint converted to ONNX once for this file.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, maxAbsDiff } from "./assert.ts";
import { fixture, FIXTURES, manifest } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { NetRunner, Progress } from "../core/types.ts";
import { convertCheckpoint } from "../models/cpsam_graph.ts";
import { createRunner } from "../models/runtime.ts";
import { segment } from "../pipeline/segment.ts";

/** Converts tiny-cpsam.pt into a temporary folder and opens it on onnxruntime-node. */
async function openTinyModel(): Promise<{ model: NetRunner; close: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "segment_test_" });
  const onnx = join(dir, "tiny.onnx");
  await convertCheckpoint(join(FIXTURES, "tiny-cpsam.pt"), onnx, { precision: "fp32" });
  const model = await createRunner(onnx, { device: "cpu", numThreads: 1 });
  return {
    model,
    close: async () => {
      await model.dispose();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Matches every reference mask to the predicted mask it overlaps most; returns the worst IoU. */
function matchMasks(pred: ArrayLike<number>, ref: ArrayLike<number>) {
  const overlap = new Map<number, Map<number, number>>();
  const areaP = new Map<number, number>(), areaR = new Map<number, number>();
  for (let i = 0; i < ref.length; i++) {
    const p = pred[i], r = ref[i];
    if (p) areaP.set(p, (areaP.get(p) ?? 0) + 1);
    if (r) areaR.set(r, (areaR.get(r) ?? 0) + 1);
    if (p && r) {
      const m = overlap.get(r) ?? new Map<number, number>();
      m.set(p, (m.get(p) ?? 0) + 1);
      overlap.set(r, m);
    }
  }
  let worstIoU = 1;
  const used = new Set<number>();
  for (const [r, aR] of areaR) {
    let best = 0, bestP = 0;
    for (const [p, n] of overlap.get(r) ?? []) if (n > best) [best, bestP] = [n, p];
    const iou = best / (aR + (areaP.get(bestP) ?? 0) - best);
    worstIoU = Math.min(worstIoU, iou);
    if (bestP) used.add(bestP);
  }
  return { nPred: areaP.size, nRef: areaR.size, matched: used.size, worstIoU };
}

Deno.test({
  name: "segment: eval fixtures (flows, cellprob, masks) match cellpose v4 with tiny-cpsam",
  sanitizeResources: false,
  async fn(t) {
    const { model, close } = await openTinyModel();
    const m = await manifest();
    try {
      for (const name of ["eval2ch", "eval3ch", "evaldiam"]) {
        await t.step(name, async () => {
          const kw = m.files[`${name}-masks.npy`].eval_kwargs!;
          const image = await fixture(`${name}-image`) as NdArray<NumericArray>;
          const dP = await fixture(`${name}-dP`);
          const cellprob = await fixture(`${name}-cellprob`);
          const masks = await fixture(`${name}-masks`);
          const r = await segment(image, {
            model,
            channelAxis: kw.channel_axis,
            diameter: kw.diameter,
            device: "cpu",
          });
          assertEquals(r.flows.shape, dP.shape);
          assertEquals(r.cellprob.shape, cellprob.shape);
          assertEquals(r.masks.shape, masks.shape);
          const dFlow = maxAbsDiff(r.flows.data, dP.data as Float32Array);
          const dProb = maxAbsDiff(r.cellprob.data, cellprob.data as Float32Array);
          const match = matchMasks(r.masks.data, masks.data as Uint16Array);
          console.log(
            `${name}: |dP| ${dFlow.toExponential(2)}, |cellprob| ${
              dProb.toExponential(2)
            }, masks ${match.nPred}/${match.nRef}, worst IoU ${match.worstIoU.toFixed(4)}`,
          );
          assert(dFlow <= 1e-3, `dP differs by ${dFlow}`);
          assert(dProb <= 1e-3, `cellprob differs by ${dProb}`);
          assertEquals(match.nPred, match.nRef, "number of masks");
          assertEquals(match.matched, match.nRef, "masks matched one to one");
          assert(match.worstIoU >= 0.99, `worst IoU ${match.worstIoU}`);
          assertEquals(r.nMasks, match.nRef);
          for (const stage of ["convert", "normalize", "network", "dynamics", "total"]) {
            assert(r.timings[stage] >= 0, `timing of ${stage}`);
          }
        });
      }

      await t.step("progress events and cancellation between batches", async () => {
        const image = await fixture("eval2ch-image") as NdArray<NumericArray>;
        const events: Progress[] = [];
        const ctrl = new AbortController();
        const err = await assertRejects(
          () =>
            segment(image, {
              model,
              channelAxis: 2,
              batchSize: 2,
              signal: ctrl.signal,
              onProgress: (p) => {
                events.push(p);
                if (p.stage === "network" && p.tilesDone === 2) ctrl.abort();
              },
            }),
          CellposeError,
          "cancelled",
        );
        assertEquals(err.code, "CANCELLED");
        // 300 x 417 -> 2 x 3 tiles: events 0 of 6, then 2 of 6, then the abort
        assertEquals(events.map((e) => e.stage), ["normalize", "network", "network"]);
        assertEquals(events.slice(1).map((e) => [e.tilesDone, e.tilesTotal]), [[0, 6], [2, 6]]);
      });
    } finally {
      await close();
    }
  },
});

/** A network stand-in for argument checks that fail before any tile is run. */
const unused: NetRunner = {
  name: "unused",
  device: "cpu",
  bsize: 256,
  run: () => Promise.reject(new Error("the network must not run")),
  dispose: () => Promise.resolve(),
};

Deno.test("segment: bad input and parameters are typed errors naming the field", async () => {
  const img = { data: new Uint8Array(64 * 64), shape: [64, 64] };
  const cases: [Record<string, unknown>, string, string][] = [
    [{ diameter: -5 }, "BAD_PARAMETER", "diameter"],
    [{ batchSize: 0 }, "BAD_PARAMETER", "batchSize"],
    [{ batchSize: 2.5 }, "BAD_PARAMETER", "batchSize"],
    [{ tileOverlap: 0.5 }, "BAD_PARAMETER", "tileOverlap"],
    [{ tileOverlap: -0.1 }, "BAD_PARAMETER", "tileOverlap"],
    [{ bsize: 224 }, "BAD_PARAMETER", "bsize"],
    [{ flowThreshold: NaN }, "BAD_PARAMETER", "flowThreshold"],
    [{ channelAxis: 0 }, "BAD_PARAMETER", "channelAxis"],
    [{ normalize: false, invert: true }, "BAD_PARAMETER", "invert"],
    [{ normalize: { percentile: [99, 1] } }, "BAD_PARAMETER", "percentile"],
    [{ do3D: true }, "BAD_PARAMETER", "zAxis"],
    [{ stitchThreshold: 0.5 }, "BAD_PARAMETER", "zAxis"],
    [{ stitchThreshold: 2 }, "BAD_PARAMETER", "stitchThreshold"],
    [{ zAxis: 0 }, "BAD_PARAMETER", "zAxis"],
  ];
  for (const [opts, code, field] of cases) {
    const e = await assertRejects(
      () => segment(img, { model: unused, ...opts }),
      CellposeError,
      field,
    );
    assertEquals(e.code, code, JSON.stringify(opts));
  }
  const shapes: [NdArray<NumericArray>, string, string][] = [
    [{ data: new Uint8Array(0), shape: [0, 64] }, "BAD_SHAPE", "empty"],
    [{ data: new Uint8Array(32), shape: [2, 2, 2, 2, 2] }, "BAD_SHAPE", "dimensions"],
    [{ data: new Float32Array([1, NaN, 3, 4]), shape: [2, 2] }, "BAD_VALUE", "NaN"],
  ];
  for (const [image, code, msg] of shapes) {
    const e = await assertRejects(() => segment(image, { model: unused }), CellposeError, msg);
    assertEquals(e.code, code);
  }
  const e = await assertRejects(() => segment(img, {} as never), CellposeError, "model");
  assertEquals(e.code, "BAD_PARAMETER");
});
