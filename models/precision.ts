/**
 * The numeric precisions a converted network comes in, checked once for every entry point
 * (library, CLI, server): `fp32`, `fp16` (weights and arithmetic in float16, for WebGPU), `int8`
 * (int8 weights for the linear layers, activations quantised at run time; for the CPU).
 *
 * @example
 * ```ts
 * import { checkPrecision, precisionSuffix } from "./precision.ts";
 * checkPrecision("int8");
 * if (precisionSuffix("int8") !== "-int8" || precisionSuffix("fp32") !== "") throw new Error();
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";

/** Every precision, the default first. */
export const PRECISIONS = ["fp32", "fp16", "int8"] as const;

/** Numeric precision of a converted network. */
export type Precision = typeof PRECISIONS[number];

/** Throws `BAD_PARAMETER` naming the value unless it is one of {@link PRECISIONS}. */
export function checkPrecision(p: unknown): asserts p is Precision {
  if (!PRECISIONS.includes(p as Precision)) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `precision must be one of ${PRECISIONS.map((v) => `"${v}"`).join(", ")}, got ${
        JSON.stringify(p)?.slice(0, 40)
      }`,
      typeof p === "string" ? p.slice(0, 40) : p,
    );
  }
}

/** What a converted network's file name carries after the model name: "", "-fp16", "-int8". */
export function precisionSuffix(p: Precision): string {
  return p === "fp32" ? "" : `-${p}`;
}
