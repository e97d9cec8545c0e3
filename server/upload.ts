/**
 * Reads a request body into memory under a size limit: a `Content-Length` over the limit is
 * refused before reading, and the streamed bytes are counted so a body without (or lying about)
 * its length is cut off as soon as it passes the limit. An {@link UploadBudget} shared by all
 * requests bounds the bytes being received at once. A slow client is cut off with 408: after
 * `graceMs` the body must keep arriving at `minBytesPerSecond` on average (an {@link UploadPace}),
 * so one byte every 5 s holds a connection for seconds, not forever.
 *
 * @example
 * ```ts
 * import { readBodyLimited } from "./upload.ts";
 * const req = new Request("http://x/", { method: "POST", body: "hello" });
 * console.log((await readBodyLimited(req, 1024)).length); // 5
 * ```
 * @module
 */
import { excerpt } from "../core/check.ts";
import { CellposeError } from "../core/errors.ts";
import { ServerError } from "./errors.ts";
import { LoopTurns } from "./loop_share.ts";

/** How slowly a body may arrive: see {@link bodyChunks}. */
export interface UploadPace {
  /** [10000] ms the first bytes may take */
  graceMs: number;
  /** [16384] after the grace, the body's average rate must stay above this */
  minBytesPerSecond: number;
}

/** The pace the server asks of uploads unless told otherwise. */
export const DEFAULT_PACE: UploadPace = { graceMs: 10_000, minBytesPerSecond: 16_384 };

function tooLarge(
  limit: number,
  got: string,
  option = "server option maxUploadBytes",
): CellposeError {
  return new CellposeError(
    "TOO_LARGE",
    `upload is ${got}; the limit is ${limit} bytes (${option})`,
    { field: "body", limit },
  );
}

/** Bytes held by uploads being received, together; see {@link uploadBudget}. */
export interface UploadBudget {
  /** counts `n` more bytes; throws `QUEUE_FULL` (with `value.retryAfter`) past the limit */
  take(n: number): void;
  /** returns `n` bytes */
  give(n: number): void;
  used(): number;
}

/** A budget of `limit` bytes for all uploads in progress. */
export function uploadBudget(limit: number): UploadBudget {
  let used = 0;
  return {
    take(n) {
      if (used + n > limit) {
        throw new ServerError(
          "QUEUE_FULL",
          `the server is receiving ${used} bytes of uploads already (limit ${limit}, option ` +
            "maxUploadingBytes); retry in a moment",
          { field: "body", retryAfter: 2 },
        );
      }
      used += n;
    },
    give(n) {
      used -= n;
    },
    used: () => used,
  };
}

/** Where {@link bodyChunks} reads from and the limits it applies. */
export interface BodyRules {
  /** largest body in bytes (TOO_LARGE past it) */
  limit: number;
  /** what the TOO_LARGE message names as the limit ["server option maxUploadBytes"] */
  option?: string;
  /** counts the bytes; the caller gives back what it has read once done with it */
  budget?: UploadBudget;
  /** [DEFAULT_PACE] how slowly the body may arrive */
  pace?: UploadPace;
}

/**
 * The chunks of `req`'s body as they arrive, checked against `rules`: `TOO_LARGE` past the limit
 * (a `Content-Length` over it before reading), `QUEUE_FULL` when the budget runs out,
 * `REQUEST_TIMEOUT` when the client sends too slowly (see {@link UploadPace}), `BAD_PARAMETER`
 * for a missing body. On any error the stream is cancelled and the budget given back; on success
 * the caller owns the budget share of every chunk it got.
 */
export async function* bodyChunks(
  req: Request,
  rules: BodyRules,
): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  const { limit, budget } = rules;
  const pace = rules.pace ?? DEFAULT_PACE;
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    throw tooLarge(limit, `${declared} bytes (Content-Length)`, rules.option);
  }
  if (declared !== null && budget) { // refuse early what cannot fit now
    budget.take(Number(declared));
    budget.give(Number(declared));
  }
  if (!req.body) {
    throw new CellposeError("BAD_PARAMETER", "request has no body: send the image", {
      field: "body",
    });
  }
  const reader = req.body.getReader();
  const start = performance.now();
  const turns = new LoopTurns();
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    while (true) {
      // the body must have reached `total` bytes by grace + total / rate
      const due = start + pace.graceMs + (1000 * total) / pace.minBytesPerSecond;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const s = ((performance.now() - start) / 1000).toFixed(1);
          reject(
            new ServerError(
              "REQUEST_TIMEOUT",
              `upload too slow: ${total} bytes in ${s} s; after the first ${
                pace.graceMs / 1000
              } s the body must arrive at ${pace.minBytesPerSecond} bytes/s or more`,
              { field: "body", got: total },
            ),
          );
        }, Math.max(0, due - performance.now()));
      });
      const { done, value } = await Promise.race([reader.read(), late]);
      clearTimeout(timer);
      if (done) break;
      if (total + value.length > limit) {
        throw tooLarge(limit, `over ${limit} bytes`, rules.option);
      }
      budget?.take(value.length);
      total += value.length;
      yield value as Uint8Array<ArrayBuffer>;
      // chunks already buffered resolve as microtasks: let the event loop serve others
      const turn = turns.due(total);
      if (turn) await turn;
    }
  } catch (e) {
    budget?.give(total);
    if (e instanceof CellposeError || e instanceof ServerError) throw e;
    // the client broke the framing (e.g. a bad chunk) or reset the connection
    throw new CellposeError(
      "BAD_PARAMETER",
      `the request body could not be read after ${total} bytes (${excerpt(String(e), 120)})`,
      { field: "body" },
      { cause: e },
    );
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * The whole body of `req` as bytes. Throws `TOO_LARGE` when it exceeds `limit` bytes,
 * `BAD_PARAMETER` when there is no body, `QUEUE_FULL` when `budget` runs out and
 * `REQUEST_TIMEOUT` for a client too slow (`pace`); `option` names the limit in the TOO_LARGE
 * message [maxUploadBytes]. With a budget, the caller owns the returned
 * bytes' share of it and gives it back when done with them.
 */
export async function readBodyLimited(
  req: Request,
  limit: number,
  budget?: UploadBudget,
  pace?: UploadPace,
  option?: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  // with a length known, the bytes go straight into one buffer (no second copy at the end)
  const whole = Number.isInteger(declared) && declared > 0 && declared <= limit
    ? new Uint8Array(declared)
    : undefined;
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let total = 0;
  for await (const c of bodyChunks(req, { limit, budget, pace, option })) {
    if (whole && chunks.length === 0 && total + c.length <= whole.length) whole.set(c, total);
    else chunks.push(c);
    total += c.length;
  }
  if (total === 0) {
    throw new CellposeError("BAD_PARAMETER", "request body is empty: send the image", {
      field: "body",
    });
  }
  if (!whole) return chunks.length === 1 ? chunks[0] : concatChunks(chunks);
  const filled = total - chunks.reduce((n, c) => n + c.length, 0);
  return chunks.length === 0 && filled === whole.length
    ? whole
    : concatChunks([whole.subarray(0, filled), ...chunks]);
}

/** The chunks one after the other in a new buffer. */
export function concatChunks(all: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(all.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of all) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
