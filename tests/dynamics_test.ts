import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { fixture, manifest } from "./fixtures.ts";
import { assertMasksMatch } from "./match_masks.ts";
import { blockPixels } from "./block_pixels.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { computeMasks, selectBackend } from "../dynamics/compute_masks.ts";
import { cpuBackend } from "../dynamics/cpu_backend.ts";
import { followFlowsCpu } from "../dynamics/follow_flows.ts";
import { followFlowsParallel } from "../dynamics/follow_parallel.ts";
import { WASM_FOLLOW } from "../dynamics/follow_wasm.ts";
import { assembleWat } from "../dynamics/wasm/build.ts";
import { getMasks } from "../dynamics/get_masks.ts";
import { fillHolesAndRemoveSmallMasks } from "../dynamics/fill_holes.ts";
import { flowErrors } from "../dynamics/flow_error.ts";
import { masksToFlows } from "../dynamics/masks_to_flows.ts";

const f32 = (a: NdArray) => a as NdArray<Float32Array>;

for (const name of ["dyn-small", "dyn-large", "dyn-noisy", "dyn-thresh"]) {
  Deno.test(`computeMasks: ${name} equals cellpose v4 (labels identical)`, async () => {
    const p = (await manifest()).files[`${name}-masks.npy`].params ?? {};
    const dP = f32(await fixture(`${name}-dP`));
    const cellprob = f32(await fixture(`${name}-cellprob`));
    const ref = await fixture(`${name}-masks`);
    const masks = await computeMasks(dP, cellprob, {
      device: "cpu",
      niter: p.niter,
      flowThreshold: p.flow_threshold,
      cellprobThreshold: p.cellprob_threshold,
      minSize: p.min_size,
    });
    assert(masks.data instanceof Uint16Array);
    assertEquals(masks.shape, ref.shape);
    const m = assertMasksMatch(masks, ref, 0.99, `${name}: `);
    assert(m.identical, `${name}: same masks but other labels`);
  });
}

Deno.test("computeMasks: dyn3d (dP = 5 x flows, cellprob +-6) equals cellpose v4", async () => {
  const labels = await fixture("dyn3d-labels");
  const flows = f32(await fixture("dyn3d-flows"));
  const ref = await fixture("dyn3d-masks");
  const dP = { data: flows.data.map((v) => 5 * v), shape: flows.shape };
  const cellprob = {
    data: Float32Array.from(labels.data as Uint16Array, (v) => v ? 6 : -6),
    shape: labels.shape,
  };
  const masks = await computeMasks(dP, cellprob, { device: "cpu", niter: 200, minSize: 15 });
  assertEquals(masks.shape, [24, 96, 96]);
  const m = assertMasksMatch(masks, ref, 0.99, "dyn3d: ");
  assert(m.identical, "dyn3d: same masks but other labels");
});

Deno.test("followFlows: float32 truncation of a still point, as PyTorch (numpy float32 values)", () => {
  // zero field on a 256 x 3 image: rows 1..63 end one row up, every other row stays
  const cells = Uint32Array.from({ length: 256 }, (_, y) => y * 3 + 1);
  const end = followFlowsCpu(new Float32Array(2 * 256 * 3), [256, 3], cells, 5);
  for (let y = 0; y < 256; y++) {
    assertEquals([end[2 * y], end[2 * y + 1]], [y >= 1 && y <= 63 ? y - 1 : y, 1], `row ${y}`);
  }
});

Deno.test("followFlows: a uniform field carries points to the border and clamps them", () => {
  const flow = new Float32Array(2 * 4 * 8).fill(1, 32); // dX = 1 px per step
  const end = followFlowsCpu(flow, [4, 8], new Uint32Array([8 + 2, 16 + 5]), 3);
  assertEquals(Array.from(end), [1, 5, 2, 7]);
});

Deno.test("followFlows: 3D points move along Z", () => {
  const shape = [8, 3, 3];
  const flow = new Float32Array(3 * 72).fill(1, 0, 72); // dZ = 1 px per step
  const end = followFlowsCpu(flow, shape, new Uint32Array([22]), 3); // z2 y1 x1
  assertEquals(Array.from(end), [5, 1, 1]);
});

Deno.test("followFlows in WebAssembly: the module loads (tests compare it with TypeScript)", () => {
  assert(WASM_FOLLOW, "follow2d.wasm did not load: the comparisons below would test nothing");
});

for (const name of ["dyn-small", "dyn-large", "dyn-noisy", "dyn-thresh"]) {
  Deno.test(`followFlows in WebAssembly (${name}): end points equal TypeScript's, with and without a frame`, async () => {
    const dP = f32(await fixture(`${name}-dP`)), cp = f32(await fixture(`${name}-cellprob`));
    const [ly, lx] = cp.shape, n = ly * lx;
    const flow = dP.data.map((v) => v / 5);
    const cells = Uint32Array.from(cp.data.keys()).filter((i) => cp.data[i] > 0);
    assertEquals(
      followFlowsCpu(flow, cp.shape, cells, 200, undefined, true),
      followFlowsCpu(flow, cp.shape, cells, 200, undefined, false),
    );
    // a block at (13, 29) in the image: its points walk out of it (the zero-padded border reads)
    const [oy, ox, by, bx] = [13, 29, ly - 40, lx - 50];
    const block = new Float32Array(2 * by * bx), local: number[] = [];
    for (let y = 0; y < by; y++) {
      for (let x = 0; x < bx; x++) {
        const g = (y + oy) * lx + x + ox, i = y * bx + x;
        (block[i] = flow[g]), (block[by * bx + i] = flow[n + g]);
        if (cp.data[g] > 0) local.push(i);
      }
    }
    const frame = { origin: [oy, ox], fullShape: [ly, lx] }, lc = Uint32Array.from(local);
    const wasm = followFlowsCpu(block, [by, bx], lc, 200, frame, true);
    assertEquals(wasm, followFlowsCpu(block, [by, bx], lc, 200, frame, false));
    assert(wasm.some((v, j) => v < 0 || v >= [by, bx][j % 2]), "no point left the block");
  });
}

Deno.test("followFlows in WebAssembly: the committed follow2d.wasm is a fresh build of follow2d.wat", async () => {
  const dir = new URL("../dynamics/wasm/", import.meta.url);
  const built = await assembleWat(new URL("follow2d.wat", dir));
  assertEquals(await Deno.readFile(new URL("follow2d.wasm", dir)), built);
});

Deno.test("followFlows in WebAssembly: CELLPOSE_NO_WASM=1 turns it off", async () => {
  const code = `import { WASM_FOLLOW } from "${
    new URL("../dynamics/follow_wasm.ts", import.meta.url).href
  }"; console.log(WASM_FOLLOW);`;
  const run = (env: Record<string, string>) =>
    new Deno.Command(Deno.execPath(), { args: ["eval", code], env, stderr: "inherit" }).output();
  const [off, on] = await Promise.all([run({ CELLPOSE_NO_WASM: "1" }), run({})]);
  assertEquals(new TextDecoder().decode(off.stdout).trim(), "false");
  assertEquals(new TextDecoder().decode(on.stdout).trim(), "true");
});

Deno.test("followFlowsParallel: three workers give the single-thread end points", async () => {
  const dP = f32(await fixture("dyn-small-dP"));
  const cp = f32(await fixture("dyn-small-cellprob"));
  const n = cp.data.length;
  const cells = Uint32Array.from(cp.data.keys()).filter((i) => cp.data[i] > 0);
  const flow = new Float32Array(2 * n);
  for (const i of cells) (flow[i] = dP.data[i] / 5), (flow[n + i] = dP.data[n + i] / 5);
  const one = followFlowsCpu(flow, cp.shape, cells, 200);
  assertEquals(await followFlowsParallel(flow, cp.shape, cells, 200, undefined, 3, 0), one);
});

for (
  const [name, origin, bshape] of [["dyn-small", [40, 71], [150, 163]], ["dyn3d", [3, 10, 17], [
    17,
    70,
    73,
  ]]] as const
) {
  Deno.test(`followFlows with a frame (${name}): a block follows the whole image's trajectories`, async () => {
    const cp = f32(await fixture(name === "dyn3d" ? "dyn3d-flows" : `${name}-cellprob`));
    const field = f32(await fixture(name === "dyn3d" ? "dyn3d-flows" : `${name}-dP`));
    const shape = name === "dyn3d" ? cp.shape.slice(1) : cp.shape;
    const ndim = shape.length, n = field.data.length / ndim;
    const scale = name === "dyn3d" ? 1 : 1 / 5; // dyn3d holds unit flows, the 2-D dP 5 x flows
    const cellprob = name === "dyn3d" ? (await fixture("dyn3d-labels")).data : cp.data;
    // the whole image's field, zero outside the block (what the block sees)
    const pix = blockPixels(shape, [...origin], [...bshape]);
    const inBlock = new Uint8Array(n);
    for (const g of pix) inBlock[g] = 1;
    const whole = new Float32Array(ndim * n), block = new Float32Array(ndim * pix.length);
    const wholeCells: number[] = [], localCells: number[] = [];
    for (let i = 0; i < pix.length; i++) {
      const g = pix[i];
      if (!(cellprob[g] > 0)) continue;
      wholeCells.push(g), localCells.push(i);
      for (let k = 0; k < ndim; k++) {
        whole[k * n + g] = block[k * pix.length + i] = field.data[k * n + g] * scale;
      }
    }
    const cells = Uint32Array.from(wholeCells), local = Uint32Array.from(localCells);
    const expected = followFlowsCpu(whole, shape, cells, 200);
    // a frame over the whole image is no frame
    const fullFrame = { origin: shape.map(() => 0), fullShape: shape };
    assertEquals(followFlowsCpu(whole, shape, cells, 200, fullFrame), expected);
    const frame = { origin: [...origin], fullShape: shape };
    const got = followFlowsCpu(block, [...bshape], local, 200, frame);
    assertEquals(got, expected.map((v, j) => v - origin[j % ndim]));
    assertEquals(await followFlowsParallel(block, [...bshape], local, 200, frame, 2, 0), got);
    // without the frame the block's own coordinates move some end points
    const plain = followFlowsCpu(block, [...bshape], local, 200);
    assert(plain.some((v, j) => v !== got[j]), "the frame made no difference");
  });
}

Deno.test("getMasks: end points beyond a block cluster in the padding, or count nowhere", () => {
  // 12 points end 3 rows above a 10 x 10 block, 12 points 30 rows above (out of reach)
  const cells = Uint32Array.from({ length: 24 }, (_, i) => i);
  const final = new Int32Array(48);
  for (let j = 0; j < 24; j++) (final[2 * j] = j < 12 ? -3 : -30), (final[2 * j + 1] = 4);
  const { labels, nMasks } = getMasks(final, cells, [10, 10], 0.4);
  assertEquals(nMasks, 1);
  assertEquals(Array.from(labels.slice(0, 24)), [...Array(12).fill(1), ...Array(12).fill(0)]);
  // the size limit refers to the full image's pixel count when given
  assertEquals(getMasks(final, cells, [10, 10], 0.1).nMasks, 0); // 12 > 0.1 * 100
  assertEquals(getMasks(final, cells, [10, 10], 0.1, 1000).nMasks, 1); // 12 <= 0.1 * 1000
});

Deno.test("computeMasks: a frame must hold the block inside its full image", async () => {
  const dP = { data: new Float32Array(2 * 8 * 8), shape: [2, 8, 8] };
  const cellprob = { data: new Float32Array(64).fill(1), shape: [8, 8] };
  for (const frame of [{ origin: [0, 3], fullShape: [8, 10] }, { origin: [0], fullShape: [8] }]) {
    const e = await assertRejects(
      () => computeMasks(dP, cellprob, { device: "cpu", frame }),
      CellposeError,
      "frame",
    );
    assertEquals(e.code, "BAD_PARAMETER");
  }
});

Deno.test("getMasks: points converging to two sinks give two masks; oversized masks go", () => {
  const cells = Uint32Array.from({ length: 24 }, (_, i) => i);
  const final = new Int32Array(48);
  for (let j = 0; j < 24; j++) {
    final[2 * j] = j < 12 ? 1 : 8;
    final[2 * j + 1] = j < 12 ? 1 : 8;
  }
  const { labels, nMasks } = getMasks(final, cells, [10, 10], 0.4);
  assertEquals(nMasks, 2);
  assertEquals(Array.from(labels.slice(0, 24)), [...Array(12).fill(1), ...Array(12).fill(2)]);
  assertEquals(getMasks(final, cells, [10, 10], 0.1).nMasks, 0); // 12 > 0.1 * 100
});

Deno.test("fillHolesAndRemoveSmallMasks: fills a hole over an enclosed mask, drops small ones", () => {
  // 5 x 5 ring of label 1 enclosing label 2 at the centre; label 3 is a single pixel
  const m = new Uint32Array(36);
  for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) m[y * 6 + x] = 1;
  for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) m[y * 6 + x] = 0;
  m[2 * 6 + 2] = 2;
  m[5 * 6 + 5] = 3;
  const n = fillHolesAndRemoveSmallMasks(m, [6, 6], 2);
  assertEquals(n, 1);
  for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) assertEquals(m[y * 6 + x], 1);
  assertEquals(m[35], 0);
});

Deno.test("fillHolesAndRemoveSmallMasks: with label gaps small masks go by label value, as cellpose", () => {
  // labels 1 and 3 have 20 pixels, label 4 has 2 (label 2 was dropped by the flow QC): ranked
  // among the present labels, label 4's count stands at label 3's place (the bug cellpose fixed
  // in commit 2932984 removed label 3); by value label 4 goes and labels 1, 3 stay as 1, 2
  const m = new Uint32Array(64);
  m.fill(1, 0, 20);
  m.fill(3, 24, 44);
  m.fill(4, 60, 62);
  const n = fillHolesAndRemoveSmallMasks(m, [8, 8], 15);
  assertEquals(n, 2);
  assertEquals(Array.from(m.slice(0, 20)), Array(20).fill(1));
  assertEquals(Array.from(m.slice(24, 44)), Array(20).fill(2));
  assertEquals(Array.from(m.slice(60, 62)), [0, 0]);
});

Deno.test("computeMasks: dyn-large's flows tiled 3 x 3 (1500 x 2100) keep cellpose's 1926 masks", async () => {
  const dP = f32(await fixture("dyn-large-dP"));
  const cellprob = f32(await fixture("dyn-large-cellprob"));
  const [ly, lx] = cellprob.shape;
  const tile = (src: Float32Array, planes: number) => {
    const out = new Float32Array(planes * 9 * ly * lx);
    for (let c = 0; c < planes; c++) {
      for (let y = 0; y < 3 * ly; y++) {
        for (let x = 0; x < 3 * lx; x++) {
          out[(c * 3 * ly + y) * 3 * lx + x] = src[(c * ly + (y % ly)) * lx + (x % lx)];
        }
      }
    }
    return out;
  };
  const masks = await computeMasks(
    { data: tile(dP.data, 2), shape: [2, 3 * ly, 3 * lx] },
    { data: tile(cellprob.data, 1), shape: [3 * ly, 3 * lx] },
    { device: "cpu", niter: 200 },
  );
  let max = 0;
  for (const v of masks.data) if (v > max) max = v;
  // current cellpose (fill_holes_and_remove_small_masks by label value) keeps 1926; by rank 1922
  assertEquals(max, 1926);
});

Deno.test("flowErrors: zero for 5 x the mask's own flows, large for reversed flows", async () => {
  const lab = new Uint16Array(20 * 20);
  for (let y = 4; y < 14; y++) for (let x = 3; x < 16; x++) lab[y * 20 + x] = 1;
  const flows = masksToFlows({ data: lab, shape: [20, 20] });
  const labels = Uint32Array.from(lab);
  const good = await flowErrors(labels, flows.data.map((v) => 5 * v), [20, 20], cpuBackend);
  assert(good[0] < 1e-12, `error ${good[0]}`);
  const bad = await flowErrors(labels, flows.data.map((v) => -5 * v), [20, 20], cpuBackend);
  assert(bad[0] > 3, `error ${bad[0]}`);
});

Deno.test("computeMasks: all pixels below the cellprob threshold give all-zero masks", async () => {
  const dP = { data: new Float32Array(2 * 30 * 40).fill(0.5), shape: [2, 30, 40] };
  const cellprob = { data: new Float32Array(30 * 40).fill(-1), shape: [30, 40] };
  const masks = await computeMasks(dP, cellprob, { device: "cpu" });
  assert(masks.data instanceof Uint16Array);
  assertEquals(masks.shape, [30, 40]);
  assert(masks.data.every((v) => v === 0));
});

Deno.test("computeMasks: more than 65535 masks come back as Uint32Array", async () => {
  // 257 x 256 squares of 5 x 5 pixels on a 6-pixel grid
  const ny = 257, nx = 256, ly = ny * 6, lx = nx * 6;
  const lab = new Uint32Array(ly * lx);
  for (let y = 0; y < ly; y++) {
    for (let x = 0; x < lx; x++) {
      if (y % 6 < 5 && x % 6 < 5) lab[y * lx + x] = Math.floor(y / 6) * nx + Math.floor(x / 6) + 1;
    }
  }
  const flows = masksToFlows({ data: lab, shape: [ly, lx] });
  const dP = { data: flows.data.map((v) => 5 * v), shape: flows.shape };
  const cellprob = { data: Float32Array.from(lab, (v) => (v ? 6 : -6)), shape: [ly, lx] };
  const masks = await computeMasks(dP, cellprob, { device: "cpu", niter: 10, flowThreshold: 0 });
  assert(masks.data instanceof Uint32Array);
  assertMasksMatch(masks, { data: lab, shape: [ly, lx] });
});

Deno.test("computeMasks: bad inputs give CellposeErrors naming the value", async () => {
  const dP = { data: new Float32Array(2 * 8 * 8), shape: [2, 8, 8] };
  const cellprob = { data: new Float32Array(8 * 8).fill(1), shape: [8, 8] };
  const shapeErr = await assertRejects(
    () => computeMasks({ data: new Float32Array(2 * 8 * 9), shape: [2, 8, 9] }, cellprob),
    CellposeError,
    "dP must be [2, 8,8]",
  );
  assertEquals(shapeErr.code, "BAD_SHAPE");
  const nan = new Float32Array(2 * 8 * 8);
  nan[70] = NaN;
  const nanErr = await assertRejects(
    () => computeMasks({ data: nan, shape: [2, 8, 8] }, cellprob),
    CellposeError,
    "NaN",
  );
  assertEquals(nanErr.code, "BAD_VALUE");
  const it = await assertRejects(
    () => computeMasks(dP, cellprob, { niter: -1 }),
    CellposeError,
    "niter",
  );
  assertEquals(it.code, "BAD_PARAMETER");
  const tiny = await assertRejects(
    () =>
      computeMasks({ data: new Float32Array(2 * 8), shape: [2, 1, 8] }, {
        data: new Float32Array(8),
        shape: [1, 8],
      }),
    CellposeError,
    "every axis >= 2",
  );
  assertEquals(tiny.code, "BAD_SHAPE");
});

Deno.test("selectBackend: cpu is the TS reference; unknown devices are refused", async () => {
  assertEquals(await selectBackend("cpu"), cpuBackend);
  const e = await assertRejects(
    () => selectBackend("tpu" as "cpu"),
    CellposeError,
    '"tpu"',
  );
  assertEquals(e.code, "BAD_PARAMETER");
  assertThrows(
    () => followFlowsCpu(new Float32Array(4), [4], new Uint32Array(0), 1),
    CellposeError,
  );
});
