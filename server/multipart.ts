/**
 * A streaming `multipart/form-data` reader with limits applied while the body arrives: the number
 * of parts, the size of each text field and which names may be files are checked part by part,
 * so a body of a million fields or an unexpected file is refused after its first bytes, not
 * after all of them. File bytes go once into one buffer (of the declared `Content-Length` when
 * there is one), so a 200 MB image costs about 200 MB, not a copy per parsing stage.
 *
 * @example
 * ```ts
 * import { readMultipart } from "./multipart.ts";
 * const form = new FormData();
 * form.set("diameter", "30");
 * form.set("image", new File([new Uint8Array([1, 2, 3])], "a.png"));
 * const req = new Request("http://x/", { method: "POST", body: form });
 * const { parts } = await readMultipart(req, { limit: 1 << 20, files: ["image"] });
 * console.log(parts.map((p) => [p.name, p.text ?? p.bytes?.length])); // [["diameter", "30"], ["image", 3]]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { excerpt } from "../core/check.ts";
import { bodyChunks, type BodyRules, concatChunks } from "./upload.ts";

/** One part: a text field (`text`) or a file (`bytes`, with the `filename` it was sent with). */
export interface MultipartPart {
  name: string;
  text?: string;
  filename?: string;
  bytes?: Uint8Array;
}

/** Limits of {@link readMultipart}, besides the body's own ({@link BodyRules}). */
export interface MultipartRules extends BodyRules {
  /** names whose parts may be files; a file under another name is refused at once */
  files: readonly string[];
  /** [64] parts at most */
  maxParts?: number;
  /** [1 MiB] bytes of one text field at most */
  maxFieldBytes?: number;
}

const MAX_HEAD_BYTES = 16 * 1024;
const enc = new TextEncoder();
const CRLF = enc.encode("\r\n");
const CRLF2 = enc.encode("\r\n\r\n");

function bad(message: string, field = "body", got?: unknown): CellposeError {
  return new CellposeError("BAD_PARAMETER", message, { field, got });
}

/** The boundary of a `multipart/form-data` content type, or a BAD_PARAMETER naming it. */
function boundaryOf(contentType: string): string {
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  if (!/^multipart\/form-data\s*(;|$)/i.test(contentType) || !m) {
    throw bad(
      `body must be multipart/form-data with a boundary, got content-type ${excerpt(contentType)}`,
      "content-type",
      excerpt(contentType),
    );
  }
  return m[1] ?? m[2];
}

/** name and filename of a part's `Content-Disposition`. */
function disposition(head: string): { name: string; filename?: string } {
  const line = head.split("\r\n").find((l) => /^content-disposition\s*:/i.test(l));
  const name = line && /;\s*name="([^"]*)"/i.exec(line);
  if (!line || !name) {
    throw bad(`a multipart part has no Content-Disposition name (headers ${excerpt(head)})`);
  }
  const file = /;\s*filename="([^"]*)"/i.exec(line);
  return { name: name[1], filename: file ? file[1] : undefined };
}

/**
 * Index of `needle` in `hay`, or -1. Candidates are found with the native `indexOf` of the first
 * byte (about 1 GB/s here; node's `Buffer.indexOf` is JavaScript in Deno, 6x slower, and was
 * the server's largest cost under large uploads).
 */
function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  const last = hay.length - needle.length;
  for (let i = hay.indexOf(needle[0]); i >= 0 && i <= last; i = hay.indexOf(needle[0], i + 1)) {
    let k = 1;
    while (k < needle.length && hay[i + k] === needle[k]) k++;
    if (k === needle.length) return i;
  }
  return -1;
}

/**
 * Reads `req`'s multipart body under `rules`. Throws BAD_PARAMETER (malformed body, a file
 * where a text field belongs), TOO_LARGE (too many parts, a text field or the body too large)
 * and whatever {@link bodyChunks} throws. On success the caller owns the budget share of
 * `received` bytes.
 */
export async function readMultipart(
  req: Request,
  rules: MultipartRules,
): Promise<{ parts: MultipartPart[]; received: number }> {
  const delim = enc.encode(`\r\n--${boundaryOf(req.headers.get("content-type") ?? "")}`);
  const maxParts = rules.maxParts ?? 64;
  const maxField = rules.maxFieldBytes ?? 1 << 20;
  const declared = Number(req.headers.get("content-length") ?? NaN);
  // file bytes are packed into one buffer of the declared length (a lying length: chunks)
  let arena: Uint8Array<ArrayBuffer> | undefined;
  let arenaUsed = 0;
  const parts: MultipartPart[] = [];
  let part: { name: string; filename?: string; chunks: Uint8Array[]; size: number } | undefined;
  let state = "preamble" as "preamble" | "after" | "head" | "body" | "done";
  let pending: Uint8Array = enc.encode("\r\n"); // the first boundary has no CRLF before it
  let received = 0;

  const write = (bytes: Uint8Array) => {
    if (!part || bytes.length === 0) return;
    part.size += bytes.length;
    if (part.filename === undefined) {
      if (part.size > maxField) {
        throw new CellposeError(
          "TOO_LARGE",
          `multipart field ${excerpt(part.name)} is over ${maxField} bytes`,
          { field: part.name, limit: maxField },
        );
      }
      part.chunks.push(bytes.slice());
      return;
    }
    if (arena === undefined && Number.isInteger(declared) && declared <= rules.limit) {
      arena = new Uint8Array(declared);
    }
    if (arena && part.chunks.length === 0 && arenaUsed + bytes.length <= arena.length) {
      arena.set(bytes, arenaUsed);
      arenaUsed += bytes.length;
    } else part.chunks.push(bytes.slice());
  };
  const finish = () => {
    if (!part) return;
    const { name, filename, chunks, size } = part;
    if (filename === undefined) {
      parts.push({ name, text: new TextDecoder().decode(concatChunks(chunks)) });
    } else {
      const inArena = size - chunks.reduce((n, c) => n + c.length, 0);
      const head = arena ? arena.subarray(arenaUsed - inArena, arenaUsed) : new Uint8Array(0);
      const bytes = chunks.length === 0 ? head : concatChunks([head, ...chunks]);
      parts.push({ name, filename, bytes });
    }
    part = undefined;
  };
  /**
   * `pending` followed by `chunk`. Inside a part's body the chunk is not copied: the bytes held
   * back (shorter than a delimiter) are written out first unless a delimiter starts in them.
   */
  const feed = (held: Uint8Array, chunk: Uint8Array): Uint8Array => {
    if (held.length === 0) return chunk;
    if (state === "body") {
      const edge = new Uint8Array(held.length + Math.min(chunk.length, delim.length));
      edge.set(held);
      edge.set(chunk.subarray(0, edge.length - held.length), held.length);
      const at = indexOfBytes(edge, delim);
      if (at < 0 || at >= held.length) {
        write(held);
        return chunk;
      }
    }
    const joined = new Uint8Array(held.length + chunk.length);
    joined.set(held);
    joined.set(chunk, held.length);
    return joined;
  };
  const step = (): boolean => { // false: more bytes needed
    if (state === "preamble" || state === "body") {
      const at = indexOfBytes(pending, delim);
      if (at < 0) {
        const keep = Math.min(pending.length, delim.length - 1);
        if (state === "body") write(pending.subarray(0, pending.length - keep));
        pending = pending.slice(pending.length - keep);
        return false;
      }
      if (state === "body") {
        write(pending.subarray(0, at));
        finish();
      }
      pending = pending.subarray(at + delim.length);
      state = "after";
      return true;
    }
    if (state === "after") {
      if (pending.length < 2) return false;
      if (pending[0] === 0x2d && pending[1] === 0x2d) { // "--": the closing boundary
        state = "done";
        return false;
      }
      const eol = indexOfBytes(pending, CRLF);
      if (eol < 0 || eol > 64 || pending.subarray(0, eol).some((b) => b !== 0x20 && b !== 0x09)) {
        if (eol < 0 && pending.length <= 64) return false;
        throw bad("multipart body is malformed: a boundary is not followed by a line end");
      }
      pending = pending.subarray(eol + 2);
      if (parts.length >= maxParts) {
        throw new CellposeError(
          "TOO_LARGE",
          `multipart body has more than ${maxParts} parts; the server takes up to ${maxParts}`,
          { field: "body", limit: maxParts },
        );
      }
      state = "head";
      return true;
    }
    if (state === "head") {
      const at = indexOfBytes(pending, CRLF2);
      if (at < 0) {
        if (pending.length > MAX_HEAD_BYTES) {
          throw bad(`a multipart part's headers are over ${MAX_HEAD_BYTES} bytes`);
        }
        return false;
      }
      const { name, filename } = disposition(new TextDecoder().decode(pending.subarray(0, at)));
      if (filename !== undefined && !rules.files.includes(name)) {
        throw bad(
          `multipart part ${excerpt(name)} is a file; only ${
            rules.files.map((f) => `"${f}"`).join(", ")
          } may be files`,
          name,
          excerpt(filename),
        );
      }
      part = { name, filename, chunks: [], size: 0 };
      pending = pending.subarray(at + 4);
      state = "body";
      return true;
    }
    return false;
  };

  for await (const chunk of bodyChunks(req, rules)) {
    received += chunk.length;
    if (state === "done") continue; // an epilogue is read (the limit applies) and dropped
    try {
      pending = feed(pending, chunk);
      while (step());
    } catch (e) {
      rules.budget?.give(received);
      throw e;
    }
  }
  if (state !== "done") {
    rules.budget?.give(received);
    throw bad(
      received === 0
        ? "request body is empty"
        : "multipart body ended before its closing boundary (truncated upload?)",
    );
  }
  return { parts, received };
}
