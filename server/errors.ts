/**
 * The server's own errors ({@link ServerError}: a refused request, an unknown job or viewer,
 * a result not ready) and the API's error response `{error: {code, message, field?}}` with the
 * matching HTTP status. {@link CellposeError} and {@link ServerError} codes map to 4xx/5xx;
 * anything else is a 500 whose details are logged, not sent.
 *
 * A request-level error names the offending field through its `value`: `{field: "flow_threshold",
 * got: "abc"}` (see `badParameter` in `core/check.ts`); `value.status` overrides the code's
 * status where one code means different things (`MODEL_NOT_FOUND`: 404 when asked for, 503 when
 * none is loaded) and `value.retryAfter` (seconds) adds a `Retry-After` header.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { badParameter } from "../core/check.ts";
 * import { errorResponse, ServerError } from "./errors.ts";
 * const res = errorResponse(badParameter("niter", "an integer >= 0", "abc"));
 * assertEquals(res.status, 400);
 * assertEquals((await res.json()).error.field, "niter");
 * const busy = errorResponse(new ServerError("QUEUE_FULL", "queue is full", { retryAfter: 3 }));
 * assertEquals([busy.status, busy.headers.get("retry-after")], [429, "3"]);
 * await busy.body?.cancel();
 * ```
 * @module
 */
import { CellposeError, type CellposeErrorCode } from "../core/errors.ts";

/** The JSON body of every error response. */
export interface ApiErrorBody {
  error: { code: string; message: string; field?: string };
}

/** Machine-readable kinds of the server's own errors (HTTP 429, 404, 401, 403, 409, 408). */
export type ServerErrorCode =
  | "QUEUE_FULL"
  | "NOT_FOUND"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_READY"
  | "REQUEST_TIMEOUT";

/**
 * An error only the HTTP server has: the request was refused (`QUEUE_FULL`, `UNAUTHORIZED`,
 * `FORBIDDEN`, `REQUEST_TIMEOUT` for a client sending too slowly), names nothing it knows
 * (`NOT_FOUND`) or came too early (`NOT_READY`). `value`
 * carries the offending input, as {@link CellposeError}'s does.
 */
export class ServerError extends Error {
  /** the kind */
  readonly code: ServerErrorCode;
  /** the offending value, or `{field, got?, retryAfter?, status?}` */
  readonly value: unknown;
  /** An error of kind `code` about `value`. */
  constructor(code: ServerErrorCode, message: string, value?: unknown, options?: ErrorOptions) {
    super(message, options);
    this.name = "ServerError";
    this.code = code;
    this.value = value;
  }
}

const STATUS: Record<CellposeErrorCode | ServerErrorCode, number> = {
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
  REQUEST_TIMEOUT: 408,
};

/** HTTP status for an error code (500 for one it does not know). */
export function statusOf(code: string): number {
  return STATUS[code as CellposeErrorCode] ?? 500;
}

/** The field an error names: its `value.field`, else `fallback`. */
function fieldOf(err: CellposeError | ServerError, fallback?: string): string | undefined {
  const v = err.value as { field?: unknown } | undefined;
  return v && typeof v === "object" && typeof v.field === "string" ? v.field : fallback;
}

/**
 * The JSON error response for `err`. `field` names the request field the error is about when the
 * error itself does not (e.g. "image" for a decoding failure). Errors that are neither
 * {@link CellposeError}s nor {@link ServerError}s become a 500 with a generic message; `log`
 * receives them.
 */
export function errorResponse(
  err: unknown,
  field?: string,
  log: (msg: string) => void = console.error,
): Response {
  if (!(err instanceof CellposeError || err instanceof ServerError)) {
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
