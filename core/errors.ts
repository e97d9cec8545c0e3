/**
 * Typed errors for cellpose-deno. Every error says which value was wrong and what was expected,
 * and carries a machine-readable `code` plus the offending value.
 *
 * @example
 * ```ts
 * import { CellposeError } from "./errors.ts";
 * try {
 *   throw new CellposeError("BAD_SHAPE", "dP must be [2, H, W], got [3, 4]", [3, 4]);
 * } catch (e) {
 *   if (e instanceof CellposeError) console.log(e.code, e.value);
 * }
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
  // server: request refused (HTTP 413, 429/503, 404, 401, 403, 409)
  | "TOO_LARGE"
  | "QUEUE_FULL"
  | "NOT_FOUND"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_READY";

/** The single error class of the project: `code` says the kind, `value` the offending input. */
export class CellposeError extends Error {
  readonly code: CellposeErrorCode;
  readonly value: unknown;
  constructor(code: CellposeErrorCode, message: string, value?: unknown, options?: ErrorOptions) {
    super(message, options);
    this.name = "CellposeError";
    this.code = code;
    this.value = value;
  }
}
