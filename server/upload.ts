/**
 * Reads a request body into memory under a size limit: a `Content-Length` over the limit is
 * refused before reading, and the streamed bytes are counted so a body without (or lying about)
 * its length is cut off as soon as it passes the limit. An {@link UploadBudget} shared by all
 * requests bounds the bytes being received at once.
 *
 * @example
 * ```ts
 * import { readBodyLimited } from "./upload.ts";
 * const req = new Request("http://x/", { method: "POST", body: "hello" });
 * console.log((await readBodyLimited(req, 1024)).length); // 5
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { ServerError } from "./errors.ts";

function tooLarge(limit: number, got: string): CellposeError {
  return new CellposeError(
    "TOO_LARGE",
    `upload is ${got}; the limit is ${limit} bytes (server option maxUploadBytes)`,
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

/**
 * The whole body of `req` as bytes. Throws `TOO_LARGE` when it exceeds `limit` bytes,
 * `BAD_PARAMETER` when there is no body, and `QUEUE_FULL` when `budget` runs out. With a budget,
 * the caller owns the returned bytes' share of it and gives it back when done with them.
 */
export async function readBodyLimited(
  req: Request,
  limit: number,
  budget?: UploadBudget,
): Promise<Uint8Array<ArrayBuffer>> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    throw tooLarge(limit, `${declared} bytes (Content-Length)`);
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
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let total = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (total + value.length > limit) throw tooLarge(limit, `over ${limit} bytes`);
      budget?.take(value.length);
      total += value.length;
      chunks.push(value as Uint8Array<ArrayBuffer>);
    }
  } catch (e) {
    budget?.give(total);
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    reader.releaseLock();
  }
  if (total === 0) {
    throw new CellposeError("BAD_PARAMETER", "request body is empty: send the image", {
      field: "body",
    });
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
