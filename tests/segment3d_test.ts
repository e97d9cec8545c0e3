/**
 * Stacks: 3-D segmentation (do3D) and 2-D masks stitched across Z (stitchThreshold).
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { fixture, FIXTURES } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { NetRunner, Progress } from "../core/types.ts";
import { convertCheckpoint } from "../models/cpsam_graph.ts";
import { createRunner } from "../models/runtime.ts";
import { runNetwork3D } from "../pipeline/flows3d.ts";
import { segment } from "../pipeline/segment.ts";
import { identity } from "./identity_net.ts";

function randomStack(z: number, y: number, x: number): NdArray<Float32Array> {
  let s = 12345;
  const data = Float32Array.from({ length: z * y * x * 3 }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  });
  return { data, shape: [z, y, x, 3] };
}

Deno.test("3-D: flows of the YX, ZX and ZY slicings land on dZ, dY, dX; cellprob averaged", async () => {
  const [z, y, x] = [3, 20, 30];
  const stack = randomStack(z, y, x);
  const events: Progress[] = [];
  const { flows, cellprob } = await runNetwork3D(stack, identity, {
    onProgress: (p) => events.push(p),
  });
  assertEquals(flows.shape, [3, z, y, x]);
  assertEquals(cellprob.shape, [z, y, x]);
  const n = z * y * x;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const [c0, c1, c2] = stack.data.subarray(3 * i, 3 * i + 3);
    // YX gives (dY, dX) = (c0, c1); ZX gives (dZ, dX) = (c0, c1); ZY gives (dZ, dY) = (c0, c1)
    const expected = [2 * c0, c0 + c1, 2 * c1, c2];
    const got = [flows.data[i], flows.data[n + i], flows.data[2 * n + i], cellprob.data[i]];
    for (let k = 0; k < 4; k++) worst = Math.max(worst, Math.abs(got[k] - expected[k]));
  }
  assert(worst < 1e-5, `worst difference ${worst}`);
  // one tile per slice: 3 YX + 20 ZX + 30 ZY planes
  const last = events[events.length - 1];
  assertEquals([last.tilesDone, last.tilesTotal], [53, 53]);
});

Deno.test("3-D: anisotropy and diameter resize for the network and back", async () => {
  const stack = randomStack(4, 24, 30);
  const seen: number[][] = [];
  const spy: NetRunner = {
    ...identity,
    run: (t) => {
      seen.push(t.shape);
      return identity.run(t);
    },
  };
  const events: Progress[] = [];
  // Z: 4 * 2 * 0.5 = 4 planes, YX halved to 12 x 15: 4 + 12 + 15 slices of one tile each
  const out = await runNetwork3D(stack, spy, {
    anisotropy: 2,
    diameter: 60,
    batchSize: 64,
    onProgress: (p) => events.push(p),
  });
  assertEquals(out.flows.shape, [3, 4, 24, 30]);
  assertEquals(events[events.length - 1].tilesTotal, 31);
  assertEquals(seen.map((s) => s[0]), [4, 12, 15]);
  // smoothing keeps a constant field constant (dZ = dY = dX = 0.5 + 0.5)
  const flat = { data: new Float32Array(2 * 10 * 12 * 3).fill(0.5), shape: [2, 10, 12, 3] };
  const smooth = await runNetwork3D(flat, identity, { flow3DSmooth: 1 });
  assert(smooth.flows.data.every((v) => Math.abs(v - 1) < 1e-6));
});

Deno.test({
  name: "3-D: stitching identical planes gives the 2-D fixture masks in every plane",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "segment3d_test_" });
    const onnx = join(dir, "tiny.onnx");
    await convertCheckpoint(join(FIXTURES, "tiny-cpsam.pt"), onnx, { precision: "fp32" });
    const model = await createRunner(onnx, { device: "cpu", numThreads: 1 });
    try {
      const image = await fixture("eval3ch-image") as NdArray<Uint8Array>; // [3, 280, 260]
      const ref = (await fixture("eval3ch-masks")).data as Uint16Array;
      const nz = 3, n = 280 * 260;
      // stack [Z, C, Y, X]: the same image in every plane
      const data = new Uint8Array(nz * image.data.length);
      for (let z = 0; z < nz; z++) data.set(image.data, z * image.data.length);
      const stack: NdArray<NumericArray> = { data, shape: [nz, 3, 280, 260] };
      const r = await segment(stack, {
        model,
        zAxis: 0,
        channelAxis: 1,
        stitchThreshold: 0.5,
        device: "cpu",
      });
      assertEquals(r.masks.shape, [nz, 280, 260]);
      assertEquals(r.flows.shape, [2, nz, 280, 260]);
      // every reference mask is one label, the same in every plane, covering the same pixels
      const refToLabel = new Map<number, number>();
      let mismatched = 0;
      for (let z = 0; z < nz; z++) {
        for (let i = 0; i < n; i++) {
          const a = ref[i], b = r.masks.data[z * n + i];
          if (!a) continue;
          if (!refToLabel.has(a)) refToLabel.set(a, b);
          if (refToLabel.get(a) !== b) mismatched++;
        }
      }
      assertEquals(mismatched, 0, "reference pixels that carry another label");
      assertEquals(new Set(refToLabel.values()).size, refToLabel.size);
      assert(!refToLabel.has(0) && [...refToLabel.values()].every((v) => v > 0));
      // 3-D segmentation of a small stack runs end to end on the real network
      // (a 2 x 24 x 24 crop: 2 + 24 + 24 slices of one tile each)
      const crop = new Uint8Array(2 * 3 * 24 * 24);
      for (let k = 0; k < crop.length; k++) {
        const x = k % 24, y = Math.floor(k / 24) % 24, c = Math.floor(k / 576) % 3;
        crop[k] = image.data[(c * 280 + 100 + y) * 260 + 100 + x];
      }
      const r3 = await segment({ data: crop, shape: [2, 3, 24, 24] }, {
        model,
        zAxis: 0,
        channelAxis: 1,
        do3D: true,
        device: "cpu",
      });
      assertEquals(r3.masks.shape, [2, 24, 24]);
      assertEquals(r3.flows.shape, [3, 2, 24, 24]);
      assertEquals(r3.cellprob.shape, [2, 24, 24]);
    } finally {
      await model.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("3-D: a stack needs zAxis with do3D or stitchThreshold", async () => {
  const stack = { data: new Uint8Array(2 * 16 * 16), shape: [2, 16, 16] };
  const e1 = await assertRejects(
    () => segment(stack, { model: identity, do3D: true }),
    CellposeError,
    "zAxis",
  );
  assertEquals(e1.code, "BAD_PARAMETER");
  const e2 = await assertRejects(
    () => segment(stack, { model: identity, zAxis: 0 }),
    CellposeError,
    "zAxis",
  );
  assertEquals(e2.code, "BAD_PARAMETER");
  const e3 = await assertRejects(
    () => segment(stack, { model: identity, zAxis: 0, do3D: true, anisotropy: -1 }),
    CellposeError,
    "anisotropy",
  );
  assertEquals(e3.code, "BAD_PARAMETER");
});
