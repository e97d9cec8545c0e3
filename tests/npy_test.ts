import { assert, assertEquals, assertThrows } from "./assert.ts";
import { join } from "node:path";
import { readNpy, readNpyFile, writeNpy } from "../io/npy.ts";
import { CellposeError } from "../core/errors.ts";
import { REPO } from "./fixtures.ts";

const dir = join(REPO, "tests", "data", "npy");
const base = Array.from({ length: 24 }, (_, i) => i);

const expected: Record<string, number[]> = {
  bool: base.map((v) => v % 2),
  u1: base,
  i1: base.map((v) => v - 5),
};
for (const e of ["le", "be"]) {
  for (const t of ["u2", "u4", "u8"]) expected[`${e}${t}`] = base;
  for (const t of ["i2", "i4", "i8"]) expected[`${e}${t}`] = base.map((v) => v - 5);
  for (const t of ["f2", "f4", "f8"]) expected[`${e}${t}`] = base.map((v) => v * 0.5 - 3);
}

for (const [name, values] of Object.entries(expected)) {
  for (const suffix of ["", "-fortran"]) {
    Deno.test(`npy: reads ${name}${suffix} in C order`, async () => {
      const a = await readNpyFile(join(dir, `${name}${suffix}.npy`));
      assertEquals(a.shape, [2, 3, 4]);
      assertEquals(Array.from(a.data, Number), values);
    });
  }
}

Deno.test("npy: format versions 2 and 3", async () => {
  for (const v of ["v2", "v3"]) {
    const a = await readNpyFile(join(dir, `${v}.npy`));
    assertEquals(a.shape, [3, 4]);
    assertEquals(Array.from(a.data, Number), Array.from({ length: 12 }, (_, i) => i));
  }
});

Deno.test("npy: 0-d and empty arrays", async () => {
  const s = await readNpyFile(join(dir, "scalar.npy"));
  assertEquals(s.shape, []);
  assertEquals(Array.from(s.data, Number), [2.5]);
  const e = await readNpyFile(join(dir, "empty.npy"));
  assertEquals(e.shape, [0, 3]);
  assertEquals(e.data.length, 0);
});

Deno.test("npy: object, complex and structured dtypes give an error naming the dtype", async () => {
  for (const [file, dtype] of [["object", "|O"], ["complex", "<c8"], ["structured", "[("]]) {
    const bytes = await Deno.readFile(join(dir, `${file}.npy`));
    const err = assertThrows(() => readNpy(bytes), CellposeError);
    assertEquals(err.code, "BAD_DTYPE");
    assert(err.message.includes(dtype), err.message);
  }
});

Deno.test("npy: truncated and non-npy bytes are rejected", async () => {
  const bytes = await Deno.readFile(join(dir, "lef4.npy"));
  assertEquals(
    assertThrows(() => readNpy(bytes.subarray(0, bytes.length - 3)), CellposeError).code,
    "BAD_FILE",
  );
  assertEquals(
    assertThrows(() => readNpy(new Uint8Array([1, 2, 3])), CellposeError).code,
    "BAD_FILE",
  );
  const err = await readNpyFile(join(dir, "missing.npy")).catch((e) => e);
  assert(err instanceof CellposeError && err.message.includes("missing.npy"));
});

Deno.test("npy: write then read round trip for every writable dtype", () => {
  const arrays = [
    new Uint8Array([1, 2, 255]),
    new Int8Array([-1, 2, -128]),
    new Uint16Array([1, 65535, 3]),
    new Int16Array([-1, 2, 3]),
    new Uint32Array([1, 2 ** 32 - 1, 3]),
    new Int32Array([-1, 2, 3]),
    new Float32Array([0.5, -1.25, 3]),
    new Float64Array([0.1, -1e300, 3]),
    new BigInt64Array([-1n, 2n, 3n]),
    new BigUint64Array([1n, 2n ** 64n - 1n, 3n]),
  ];
  for (const data of arrays) {
    const back = readNpy(writeNpy({ data, shape: [3, 1] }));
    assertEquals(back.shape, [3, 1]);
    assertEquals(back.data, data);
  }
  const b = readNpy(writeNpy({ data: new Uint8Array([0, 1, 1]), shape: [3] }, { bool: true }));
  assertEquals(Array.from(b.data, Number), [0, 1, 1]);
});
