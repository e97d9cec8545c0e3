/**
 * `_seg.npy` and the pickle writer. Always: the file's .npy header is an object array (our
 * reader says so) and the pickle frames the data. Where a Python with NumPy is on the machine
 * (Debian's /usr/bin/python3 here), NumPy itself loads the files and the values are compared
 * with cellpose's formulas (dx_to_circ, normalize99) computed there.
 */
import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { DATA } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import { readImage } from "../io/image.ts";
import { readNpy } from "../io/npy.ts";
import { pickleDumps, pyFloat, pyTuple } from "../io/pickle_write.ts";
import { encodeSegNpy } from "../io/seg_npy.ts";

const PY = "/usr/bin/python3";
const hasNumpy = (() => {
  try {
    return new Deno.Command(PY, { args: ["-c", "import numpy"], stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();
/** `.ci/run` installs python3-numpy and sets this: there the NumPy checks run or fail, never skip. */
const numpyRequired = Deno.env.get("CELLPOSE_REQUIRE_NUMPY") === "1";
const skipNumpy = !hasNumpy && !numpyRequired;
if (skipNumpy) {
  console.warn(`io_seg_npy_test: ${PY} has no NumPy; the NumPy cross-checks are skipped`);
}

async function python(script: string): Promise<string> {
  const out = await new Deno.Command(PY, { args: ["-c", script] }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(out.success, new TextDecoder().decode(out.stderr));
  return text;
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const masks = async () => (await readImage(join(DATA, "dsb2018", "00071198d059_masks.tif"))).image;

Deno.test("seg.npy: an object-array .npy framing a protocol-3 pickle of the masks", async () => {
  const m = await masks();
  const bytes = encodeSegNpy({ masks: m, filename: "cells.png" });
  assertThrows(
    () => readNpy(bytes),
    CellposeError,
    ".npy dtype '|O' is not supported (object arrays need pickle",
  );
  const start = 128; // 10 + header padded to 64 bytes
  assertEquals([bytes[start], bytes[start + 1], bytes[bytes.length - 1]], [0x80, 3, 0x2e]);
  const raw = new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength);
  assert(indexOf(bytes, raw) > start, "masks stored as raw uint16 bytes");
  for (
    const key of ["outlines", "masks", "chan_choose", "ismanual", "filename", "flows", "diameter"]
  ) {
    assert(indexOf(bytes, new TextEncoder().encode(key)) > 0, key);
  }
});

Deno.test("seg.npy: bad shapes are refused", () => {
  const m = { data: new Uint16Array(16), shape: [4, 4] };
  assertThrows(
    () => encodeSegNpy({ masks: { data: new Uint16Array(4), shape: [4] }, filename: "a" }),
    CellposeError,
    "_seg.npy masks must be [H, W] or [Z, H, W]",
  );
  assertThrows(
    () =>
      encodeSegNpy({
        masks: m,
        filename: "a",
        flows: { data: new Float32Array(32), shape: [2, 4, 4] },
        cellprob: { data: new Float32Array(9), shape: [3, 3] },
      }),
    CellposeError,
    "_seg.npy flows must be [2, 4, 4] and cellprob [4, 4]",
  );
  assertThrows(
    () =>
      encodeSegNpy({
        masks: { data: new Uint16Array(32), shape: [2, 4, 4] },
        filename: "a",
        flows: { data: new Float32Array(32), shape: [2, 4, 4] },
      }),
    CellposeError,
    "flows are written for 2D results only",
  );
});

Deno.test({
  name: "pickle: Python reads back ints, floats, strings, tuples, lists, dicts and arrays",
  ignore: skipNumpy,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const value = {
        a: [1, -2, 300, 70000, -70000, 2 ** 40, -(2 ** 40), 1.5, pyFloat(3)],
        b: pyTuple([null, true, false, "héllo", pyTuple([]), pyTuple([1, 2, 3, 4])]),
        c: new Map([["k", {}]]),
        d: { data: Float64Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] },
      };
      await Deno.writeFile(join(dir, "v.pkl"), pickleDumps(value));
      const got = await python(
        `import pickle\nv = pickle.load(open(${JSON.stringify(join(dir, "v.pkl"))}, "rb"))\n` +
          `v["d"] = [str(v["d"].dtype), list(v["d"].shape), v["d"].tolist()]\nprint(repr(v))`,
      );
      assertEquals(
        got.trim(),
        "{'a': [1, -2, 300, 70000, -70000, 1099511627776, -1099511627776, 1.5, 3.0], " +
          "'b': (None, True, False, 'héllo', (), (1, 2, 3, 4)), 'c': {'k': {}}, " +
          "'d': ['float64', [2, 3], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]}",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "seg.npy: NumPy loads it and every entry matches cellpose's masks_flows_to_seg",
  ignore: skipNumpy,
  async fn() {
    const m = await masks();
    const [h, w] = m.shape;
    const flows = {
      data: Float32Array.from({ length: 2 * h * w }, (_, i) => Math.sin(i / 50) * 3),
      shape: [2, h, w],
    };
    const cellprob = {
      data: Float32Array.from({ length: h * w }, (_, i) => Math.cos(i / 70) * 5),
      shape: [h, w],
    };
    const dir = await Deno.makeTempDir();
    try {
      const f = (n: string) => JSON.stringify(join(dir, n));
      await Deno.writeFile(
        join(dir, "s_seg.npy"),
        encodeSegNpy({ masks: m, flows, cellprob, filename: "/x/s.png", diameter: 17.5 }),
      );
      await Deno.writeFile(join(dir, "masks.bin"), new Uint8Array(m.data.buffer));
      await Deno.writeFile(join(dir, "flows.bin"), new Uint8Array(flows.data.buffer));
      await Deno.writeFile(join(dir, "prob.bin"), new Uint8Array(cellprob.data.buffer));
      const got = await python(`
import numpy as np
h, w = ${h}, ${w}
d = np.load(${f("s_seg.npy")}, allow_pickle=True).item()
m = np.fromfile(${f("masks.bin")}, np.uint16).reshape(h, w)
dP = np.fromfile(${f("flows.bin")}, np.float32).reshape(2, h, w)
prob = np.fromfile(${f("prob.bin")}, np.float32).reshape(h, w)
def normalize99(x):
    lo, hi = np.percentile(x, 1), np.percentile(x, 99)
    return (x - lo) / (hi - lo)
mag = np.clip(normalize99(np.sqrt(np.sum(dP**2, axis=0))), 0, 1.)
a = np.arctan2(dP[1], dP[0]) + np.pi
rgb = np.stack([(np.cos(a + k * 2 * np.pi / 3) + 1) / 2 * mag for k in range(3)], -1)
rgb = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
cp = (np.clip(normalize99(prob), 0, 1) * 255).astype(np.uint8)
fl = d["flows"]
inner = (d["outlines"] > 0) & (d["outlines"] != m)
print(sorted(d), d["filename"], d["diameter"], d["chan_choose"], d["ismanual"].dtype, d["ismanual"].shape[0], int(m.max()))
print(d["masks"].dtype, bool(np.array_equal(d["masks"], m)), d["outlines"].dtype, int(inner.sum()))
print([list(getattr(x, "shape", [len(x)])) for x in fl])
print(int(np.abs(fl[0][0].astype(int) - rgb).max()), int(np.abs(fl[1][0].astype(int) - cp).max()), int(fl[2].max()))
print(bool(np.array_equal(fl[4], np.concatenate((dP, prob[None]), 0))), fl[4].dtype)
`);
      assertEquals(got.trim().split("\n"), [
        "['chan_choose', 'diameter', 'filename', 'flows', 'ismanual', 'masks', 'outlines'] /x/s.png 17.5 [0, 0] bool 27 27",
        "uint16 True uint16 0",
        "[[1, 256, 256, 3], [1, 256, 256], [1, 256, 256, 3], [0], [3, 256, 256]]",
        "0 0 0",
        "True float32",
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
