import { assertEquals, assertThrows } from "./assert.ts";
import { fixture, manifest } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { convertImage } from "../pipeline/channels.ts";

Deno.test("channels: eval fixtures convert exactly (HWC uint16 2ch, CHW uint8 3ch)", async () => {
  const m = await manifest();
  for (const name of ["eval2ch", "eval3ch", "evaldiam"]) {
    const image = await fixture(`${name}-image`) as NdArray<NumericArray>;
    const expected = await fixture(`${name}-converted`);
    const channelAxis = m.files[`${name}-masks.npy`].eval_kwargs!.channel_axis;
    for (const opts of [{ channelAxis }, {}]) {
      const out = convertImage(image, opts);
      assertEquals(out.shape, expected.shape, name);
      assertEquals(out.data.constructor, expected.data.constructor, name);
      assertEquals(out.data, expected.data, `${name} ${JSON.stringify(opts)}`);
    }
  }
});

const seq = (shape: number[]) => ({
  data: Uint16Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i + 1),
  shape,
});

Deno.test("channels: 2-D goes to channel 0, others zero", () => {
  const out = convertImage(seq([2, 3]));
  assertEquals(out.shape, [2, 3, 3]);
  assertEquals(Array.from(out.data), [1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5, 0, 0, 6, 0, 0]);
});

Deno.test("channels: guessed axis, stated axis, more and fewer than 3 channels", () => {
  // [5, 2, 4]: shape[0] > shape[2], channels last (4 channels -> first 3 kept)
  const a = convertImage(seq([5, 2, 4]));
  assertEquals(a.shape, [5, 2, 3]);
  assertEquals(Array.from(a.data.slice(0, 6)), [1, 2, 3, 5, 6, 7]);
  // [2, 4, 5]: shape[0] < shape[2], channels first -> [4, 5, 3] with channel 2 zero
  const b = convertImage(seq([2, 4, 5]));
  assertEquals(b.shape, [4, 5, 3]);
  assertEquals(Array.from(b.data.slice(0, 6)), [1, 21, 0, 2, 22, 0]);
  // stated middle axis: [4, 2, 5] with channelAxis 1 -> [4, 5, 3]
  const c = convertImage(seq([4, 2, 5]), { channelAxis: 1 });
  assertEquals(c.shape, [4, 5, 3]);
  assertEquals(Array.from(c.data.slice(0, 6)), [1, 6, 0, 2, 7, 0]);
  // negative axis counts from the end
  assertEquals(
    convertImage(seq([4, 5, 2]), { channelAxis: -1 }).data,
    convertImage(seq([4, 5, 2]), { channelAxis: 2 }).data,
  );
  // one channel
  const d = convertImage(seq([3, 4, 1]), { channelAxis: 2 });
  assertEquals(Array.from(d.data.slice(0, 6)), [1, 0, 0, 2, 0, 0]);
});

Deno.test("channels: stacks with zAxis", () => {
  // grey stack [Y, Z, X] = [3, 2, 4] with zAxis 1 -> [2, 3, 4, 3]
  const g = convertImage(seq([3, 2, 4]), { zAxis: 1 });
  assertEquals(g.shape, [2, 3, 4, 3]);
  // plane z=1, y=0, x=0 is element (0, 1, 0) = 5
  assertEquals(g.data[(1 * 12) * 3], 5);
  assertEquals(g.data[(1 * 12) * 3 + 1], 0);
  // [C, Z, Y, X] = [2, 3, 4, 5] -> [3, 4, 5, 3]
  const s = convertImage(seq([2, 3, 4, 5]), { zAxis: 1, channelAxis: 0 });
  assertEquals(s.shape, [3, 4, 5, 3]);
  // z=2, y=1, x=3: channel 0 = (0,2,1,3) -> 1 + 2*20 + 5 + 3 = 49, channel 1 = 49 + 60
  const p = ((2 * 4 + 1) * 5 + 3) * 3;
  assertEquals(Array.from(s.data.slice(p, p + 3)), [49, 109, 0]);
});

Deno.test("channels: bad shapes and axes are typed errors naming the field", () => {
  const code = (fn: () => unknown, msg: string) => assertThrows(fn, CellposeError, msg).code;
  assertEquals(code(() => convertImage(seq([0, 4])), "empty"), "BAD_SHAPE");
  assertEquals(code(() => convertImage(seq([2, 2, 2, 2, 2])), "2 to 4 dimensions"), "BAD_SHAPE");
  assertEquals(code(() => convertImage(seq([4])), "2 to 4 dimensions"), "BAD_SHAPE");
  assertEquals(
    code(() => convertImage(seq([4, 5, 2]), { channelAxis: 3 }), "channelAxis"),
    "BAD_PARAMETER",
  );
  assertEquals(
    code(() => convertImage(seq([4, 5, 2]), { channelAxis: 1.5 }), "channelAxis"),
    "BAD_PARAMETER",
  );
  assertEquals(
    code(() => convertImage(seq([4, 5]), { channelAxis: 0 }), "channelAxis"),
    "BAD_PARAMETER",
  );
  assertEquals(code(() => convertImage(seq([2, 4, 5, 3])), "zAxis"), "BAD_PARAMETER");
  assertEquals(
    code(() => convertImage(seq([2, 4, 5, 3]), { zAxis: 0 }), "channelAxis"),
    "BAD_PARAMETER",
  );
  assertEquals(
    code(() => convertImage(seq([2, 4, 5, 3]), { zAxis: 4, channelAxis: 3 }), "zAxis"),
    "BAD_PARAMETER",
  );
  assertEquals(
    code(() => convertImage(seq([2, 4, 5, 3]), { zAxis: 3, channelAxis: 3 }), "differ"),
    "BAD_PARAMETER",
  );
});
