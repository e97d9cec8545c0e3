/**
 * Turns any thrown value into the API's error response `{error: {code, message, field?}}` with
 * the matching HTTP status. {@link CellposeError} codes map to 4xx/5xx; anything else is a 500
 * whose details are logged, not sent.
 *
 * A request-level error names the offending field through its `value`: `{field: "flow_threshold",
 * got: "abc"}` (see {@link badParam}); `value.status` overrides the code's status where one code
 * means different things (`MODEL_NOT_FOUND`: 404 when asked for, 503 when none is loaded) and
 * `value.retryAfter` (seconds) adds a `Retry-After` header.
 *
 * @example
 * ```ts
 * import { errorResponse, badParam } from "./errors.ts";
 * const res = errorResponse(badParam("niter", "abc", "an integer >= 0"));
 * console.log(res.status); // 400
 * ```
 * @module
 */
import { CellposeError, type CellposeErrorCode } from "../core/errors.ts";

/** The JSON body of every error response. */
export interface ApiErrorBody {
  error: { code: string; message: string; field?: string };
}

const STATUS: Record<CellposeErrorCode, number> = {
  BAD_PARAMETER: 400,
  BAD_SHAPE: 422,
  BAD_DTYPE: 422,
  BAD_VALUE: 422,
  BAD_FILE: 422,
  BAD_MODEL: 422,
  UNSUPPORTED: 415,
  MODEL_NOT_FOUND: 404,
  DOWNLOAD_FAILED: 502,
  CANCELLED: 409,
  GPU_UNAVAILABLE: 503,
  TOO_LARGE: 413,
  QUEUE_FULL: 429,
  NOT_FOUND: 404,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_READY: 409,
};

/** HTTP status for an error code. */
export function statusOf(code: CellposeErrorCode): number {
  return STATUS[code] ?? 500;
}

/** A `BAD_PARAMETER` error naming the field, the value received and what was expected. */
export function badParam(field: string, got: unknown, expected: string): CellposeError {
  const shown = typeof got === "string" ? JSON.stringify(got) : String(got);
  return new CellposeError(
    "BAD_PARAMETER",
    `${field} must be ${expected}, got ${shown}`,
    { field, got },
  );
}

/** The field an error names: its `value.field`, else `fallback`. */
function fieldOf(err: CellposeError, fallback?: string): string | undefined {
  const v = err.value as { field?: unknown } | undefined;
  return v && typeof v === "object" && typeof v.field === "string" ? v.field : fallback;
}

/**
 * The JSON error response for `err`. `field` names the request field the error is about when the
 * error itself does not (e.g. "image" for a decoding failure). Errors that are not
 * {@link CellposeError}s become a 500 with a generic message; `log` receives them.
 */
export function errorResponse(
  err: unknown,
  field?: string,
  log: (msg: string) => void = console.error,
): Response {
  if (!(err instanceof CellposeError)) {
    log(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return jsonError(500, "INTERNAL", "internal server error (details in the server log)");
  }
  const headers: Record<string, string> = {};
  const v = (err.value ?? {}) as { retryAfter?: unknown; status?: unknown };
  if (typeof v.retryAfter === "number") {
    headers["Retry-After"] = String(Math.max(1, Math.ceil(v.retryAfter)));
  }
  const status = typeof v.status === "number" ? v.status : statusOf(err.code);
  return jsonError(status, err.code, err.message, fieldOf(err, field), headers);
}

/** A JSON error response with an explicit status and code. */
export function jsonError(
  status: number,
  code: string,
  message: string,
  field?: string,
  headers: Record<string, string> = {},
): Response {
  const body: ApiErrorBody = { error: field ? { code, message, field } : { code, message } };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}
