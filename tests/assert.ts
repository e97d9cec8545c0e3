/**
 * Typed facade over Deno's standard assertions (the npm package `deno-std` ships them as plain
 * JavaScript whose overloads TypeScript cannot see).
 * @module
 */
import * as eq from "@std/assert/equals.js";
import * as base from "@std/assert/assert.js";
import * as th from "@std/assert/throws.js";
import * as rj from "@std/assert/rejects.js";
import * as ae from "@std/assert/almost_equals.js";

type Ctor<E> = abstract new (...args: never[]) => E;

/** Deep equality. */
export const assertEquals: <T>(actual: T, expected: T, msg?: string) => void = eq.assertEquals;
/** Truthiness. */
export const assert: (expr: unknown, msg?: string) => asserts expr = base.assert;
/** `|a - b| <= tolerance`. */
export const assertAlmostEquals: (a: number, b: number, tolerance?: number, msg?: string) => void =
  ae.assertAlmostEquals;
/** Asserts that `fn` throws an instance of `ErrorClass`, and returns it. */
export const assertThrows: <E extends Error>(
  fn: () => unknown,
  ErrorClass: Ctor<E>,
  msgIncludes?: string,
) => E = th.assertThrows as never;
/** Asserts that the promise rejects with an instance of `ErrorClass`, and returns it. */
export const assertRejects: <E extends Error>(
  fn: () => PromiseLike<unknown>,
  ErrorClass: Ctor<E>,
  msgIncludes?: string,
) => Promise<E> = rj.assertRejects as never;

/**
 * Largest `|a[i] - b[i]|`; a length mismatch fails (a NaN on either side gives NaN, which no
 * tolerance accepts).
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  eq.assertEquals(a.length, b.length, "arrays differ in length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
