// NumpyRandom against values printed by NumPy's legacy RandomState (numpy 2.4:
// np.random.seed(s); np.random.randn() / choice / rand / permutation). The training fixtures
// check rand and permutation again (tests/train_parity_test.ts).
import { assertEquals, assertThrows } from "./assert.ts";
import { NumpyRandom } from "../core/random.ts";
import { CellposeError } from "../core/errors.ts";

Deno.test("random: randn, choice, rand and permutation equal NumPy's", () => {
  const r = new NumpyRandom(123);
  assertEquals(Array.from({ length: 5 }, () => r.normal()), [
    -1.0856306033005612,
    0.9973454465835858,
    0.28297849805199204,
    -1.506294713918092,
    -0.5786002519685364,
  ]);
  assertEquals(new NumpyRandom(9).choice([0.1, 0.2, 0.3, 0.25, 0.15], 10), [
    0,
    2,
    2,
    1,
    1,
    1,
    2,
    1,
    0,
    2,
  ]);
  const top = new NumpyRandom(2 ** 32 - 1);
  assertEquals(top.random(), 0.0976320289940138);
  assertEquals(top.permutation(20), [
    13,
    16,
    3,
    4,
    1,
    5,
    9,
    8,
    18,
    6,
    10,
    19,
    14,
    2,
    11,
    15,
    17,
    0,
    7,
    12,
  ]);
});

Deno.test("random: seeds outside [0, 2^32) are refused", () => {
  assertThrows(() => new NumpyRandom(-1), CellposeError, "seed");
  assertThrows(() => new NumpyRandom(2 ** 32), CellposeError, "seed");
  assertThrows(() => new NumpyRandom(0.5), CellposeError, "seed");
});
