/**
 * Typed errors for cellpose-deno. Every error says which value was wrong and what was expected,
 * and carries a machine-readable `code` plus the offending value.
 *
 * @example
 * ```ts
 * import { CellposeError } from "./errors.ts";
 * import { assertEquals } from "@std/assert";
 * const err = new CellposeError("BAD_SHAPE", "dP must be [2, H, W], got [3, 4]", [3, 4]);
 * assertEquals([err.code, err.value, err.name], ["BAD_SHAPE", [3, 4], "CellposeError"]);
 * ```
 * @module
 */

/** Machine-readable error kinds. */
export type CellposeErrorCode =
  | "BAD_SHAPE"
  | "BAD_DTYPE"
  | "BAD_VALUE"
  | "BAD_PARAMETER"
  | "BAD_FILE"
  | "UNSUPPORTED"
  | "MODEL_NOT_FOUND"
  | "BAD_MODEL"
  | "DOWNLOAD_FAILED"
  | "CANCELLED"
  | "GPU_UNAVAILABLE"
  /** an input, upload or GPU allocation larger than the limit */
  | "TOO_LARGE";

/** The single error class of the project: `code` says the kind, `value` the offending input. */
export class CellposeError extends Error {
  /** the kind */
  readonly code: CellposeErrorCode;
  /** the offending value (short) */
  readonly value: unknown;
  /** An error of kind `code` about `value`. */
  constructor(code: CellposeErrorCode, message: string, value?: unknown, options?: ErrorOptions) {
    super(message, options);
    this.name = "CellposeError";
    this.code = code;
    this.value = value;
  }
}
