/**
 * The checks every layer shares: a `BAD_PARAMETER` error naming the field, the integer range
 * check, and the cancellation check between stages.
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { CellposeError } from "./errors.ts";
 * import { badParameter, checkCancelled, checkInt } from "./check.ts";
 * const err = badParameter("niter", "an integer >= 0", "abc");
 * assertEquals([err.code, err.message], ["BAD_PARAMETER", 'niter must be an integer >= 0, got "abc"']);
 * assertEquals(err.value, { field: "niter", got: "abc" });
 * assertEquals(checkInt("batch_size", 8, 1), 8);
 * assertThrows(() => checkInt("batch_size", 0.5, 1), CellposeError, "batch_size must be an integer >= 1");
 * const stop = new AbortController();
 * checkCancelled(stop.signal, "training"); // not aborted: returns
 * stop.abort();
 * assertThrows(() => checkCancelled(stop.signal, "training"), CellposeError, "training was cancelled");
 * ```
 * @module
 */
import { CellposeError } from "./errors.ts";

/** Characters of a received value shown in a message, at most (see {@link excerpt}). */
export const EXCERPT_CHARS = 80;

/**
 * How a received value is shown in a message: strings and objects as JSON, numbers as written,
 * cut to `max` characters with the full length said ("[1,2,3,… (6000000 chars)"), so that an error
 * never echoes a huge value whole.
 */
export function excerpt(got: unknown, max = EXCERPT_CHARS): string {
  let text: string;
  if (typeof got === "string" || (typeof got === "object" && got !== null)) {
    try {
      text = JSON.stringify(got) ?? String(got);
    } catch {
      text = Object.prototype.toString.call(got); // cyclic or too deep to write out
    }
  } else text = String(got);
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

/**
 * A `BAD_PARAMETER` error: "`field` must be `expected`, got `got`", whose value `{field, got}`
 * names the field (the server answers with it as `error.field`).
 */
export function badParameter(field: string, expected: string, got: unknown): CellposeError {
  const shown = excerpt(got);
  // a long value is kept only as its excerpt: the error may be stored with a job for an hour
  const short = shown.length <= EXCERPT_CHARS || typeof got === "number" ||
    typeof got === "boolean";
  return new CellposeError("BAD_PARAMETER", `${field} must be ${expected}, got ${shown}`, {
    field,
    got: short ? got : shown,
  });
}

/**
 * Returns `v` when it is an integer `>= min`, else throws {@link badParameter} (`expected`
 * defaults to "an integer >= min").
 */
export function checkInt(
  field: string,
  v: number,
  min: number,
  expected = `an integer >= ${min}`,
): number {
  if (!Number.isInteger(v) || v < min) throw badParameter(field, expected, v);
  return v;
}

/**
 * Throws `CANCELLED` ("`what` was cancelled", the signal's reason as its cause) when `signal` is
 * aborted; long runs call it between steps.
 */
export function checkCancelled(signal: AbortSignal | undefined, what = "segmentation"): void {
  if (signal?.aborted) {
    throw new CellposeError("CANCELLED", `${what} was cancelled`, what, { cause: signal.reason });
  }
}
