import { assert, assertEquals, assertThrows, maxAbsDiff } from "./assert.ts";
import { fixture } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import { masksToFlows } from "../dynamics/masks_to_flows.ts";
import { diffuseHeat2D } from "../dynamics/heat.ts";
import { toLabels } from "../core/labels.ts";
import { renumber } from "../dynamics/labels.ts";

for (const name of ["dyn-small", "dyn-large", "dyn-noisy", "dyn-thresh", "dyn3d"]) {
  Deno.test(`masksToFlows: ${name} matches cellpose v4 within 1e-3`, async () => {
    const labels = await fixture(`${name}-labels`);
    const ref = await fixture(`${name}-flows`);
    const flows = masksToFlows(labels);
    assertEquals(flows.shape, ref.shape);
    const err = maxAbsDiff(flows.data, ref.data as Float32Array);
    assert(err <= 1e-3, `max abs error ${err}`);
  });
}

Deno.test("masksToFlows: flows point to the centre; zero on background and for empty labels", () => {
  const f = masksToFlows({ data: new Uint8Array([1, 1, 1]), shape: [1, 3] });
  assertEquals(Array.from(f.data), [0, 0, 0, 1, 0, -1]);
  const empty = masksToFlows({ data: new Uint16Array(12), shape: [3, 4] });
  assertEquals(empty.shape, [2, 3, 4]);
  assert(empty.data.every((v) => v === 0));
  const empty3 = masksToFlows({ data: new Uint16Array(24), shape: [2, 3, 4] });
  assertEquals(empty3.shape, [3, 2, 3, 4]);
});

Deno.test("masksToFlows: integer-valued float labels are accepted", () => {
  const a = masksToFlows({ data: new Float32Array([0, 2, 2, 2]), shape: [2, 2] });
  const b = masksToFlows({ data: new Uint8Array([0, 2, 2, 2]), shape: [2, 2] });
  assertEquals(a, b);
});

Deno.test("masksToFlows: bad label images give CellposeErrors", () => {
  const frac = assertThrows(
    () => masksToFlows({ data: new Float32Array([0, 1.5, 1, 1]), shape: [2, 2] }),
    CellposeError,
    "1.5",
  );
  assertEquals(frac.code, "BAD_VALUE");
  const neg = assertThrows(
    () => masksToFlows({ data: new Int32Array([0, -1, 1, 1]), shape: [2, 2] }),
    CellposeError,
    "-1",
  );
  assertEquals(neg.code, "BAD_VALUE");
  const nan = assertThrows(
    () => masksToFlows({ data: new Float64Array([0, NaN, 1, 1]), shape: [2, 2] }),
    CellposeError,
    "NaN",
  );
  assertEquals(nan.code, "BAD_VALUE");
  const big = assertThrows(
    () => masksToFlows({ data: new BigInt64Array(4), shape: [2, 2] }),
    CellposeError,
    "bigint",
  );
  assertEquals(big.code, "BAD_DTYPE");
  const dims = assertThrows(
    () => masksToFlows({ data: new Uint8Array(4), shape: [4] }),
    CellposeError,
    "[4]",
  );
  assertEquals(dims.code, "BAD_SHAPE");
});

Deno.test("diffuseHeat2D: Jacobi mean over the 3x3 neighbourhood within the mask", () => {
  // 1 x 3 mask, centre in the middle: after 2 iterations [11/81, 12/81 + 1/9, 11/81]
  const T = diffuseHeat2D(new Uint32Array([1, 1, 1]), [1, 3], new Uint32Array([1]), 2);
  const want = [11 / 81, (10 / 9 + 2 / 9) / 9, 11 / 81];
  for (let i = 0; i < 3; i++) assert(Math.abs(T[i] - want[i]) < 1e-15, `T[${i}] = ${T[i]}`);
});

Deno.test("masksToFlows: huge label values give the flows of the compacted labels", () => {
  const big = masksToFlows({ data: new Uint32Array([0, 4e9, 4e9, 4e9, 7, 7]), shape: [2, 3] });
  const small = masksToFlows({ data: new Uint8Array([0, 1, 1, 1, 2, 2]), shape: [2, 3] });
  assertEquals(big, small);
});

Deno.test("renumber: labels 1..N in order of first appearance", () => {
  const l = toLabels({ data: new Float32Array([0, 7, 7, 3, 0, 9, 3]), shape: [7] }, "l");
  assertEquals(renumber(l), 3);
  assertEquals(Array.from(l), [0, 1, 1, 2, 0, 3, 2]);
  const huge = new Uint32Array([5e9 % 2 ** 32, 0, 3e9, 5e9 % 2 ** 32]);
  assertEquals(renumber(huge), 2);
  assertEquals(Array.from(huge), [1, 0, 2, 1]);
});
