/**
 * Reads a request body into memory under a size limit: a `Content-Length` over the limit is
 * refused before reading, and the streamed bytes are counted so a body without (or lying about)
 * its length is cut off as soon as it passes the limit.
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

function tooLarge(limit: number, got: string): CellposeError {
  return new CellposeError(
    "TOO_LARGE",
    `upload is ${got}; the limit is ${limit} bytes (server option maxUploadBytes)`,
    { field: "body", limit },
  );
}

/**
 * The whole body of `req` as bytes. Throws `TOO_LARGE` when it exceeds `limit` bytes and
 * `BAD_PARAMETER` when there is no body.
 */
export async function readBodyLimited(
  req: Request,
  limit: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    throw tooLarge(limit, `${declared} bytes (Content-Length)`);
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
      total += value.length;
      if (total > limit) {
        await reader.cancel();
        throw tooLarge(limit, `over ${limit} bytes`);
      }
      chunks.push(value as Uint8Array<ArrayBuffer>);
    }
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
