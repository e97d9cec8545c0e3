/**
 * JSON from requests, bounded: a body of at most `limit` bytes (64 KiB unless told), nesting at
 * most {@link MAX_JSON_DEPTH} deep (checked on the text before `JSON.parse`, so a body nested
 * 200 000 deep is a 400 naming the field, not a stack overflow in whatever walks the value), and
 * errors quoting only an excerpt of what was sent.
 *
 * @example
 * ```ts
 * import { parseJsonObject } from "./json_body.ts";
 * console.log(parseJsonObject('{"diameter": 30}', "params")); // { diameter: 30 }
 * try {
 *   parseJsonObject("[".repeat(100_000), "params");
 * } catch (e) {
 *   console.log((e as Error).message); // params: JSON nested deeper than 32 levels
 * }
 * ```
 * @module
 */
import { badParameter, excerpt } from "../core/check.ts";
import { CellposeError } from "../core/errors.ts";
import { readBodyLimited, type UploadPace } from "./upload.ts";

/** Deepest nesting of arrays and objects accepted in request JSON. */
export const MAX_JSON_DEPTH = 32;

/** Throws BAD_PARAMETER naming `field` when `text` nests arrays/objects over `maxDepth`. */
export function checkJsonDepth(text: string, field: string, maxDepth = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > maxDepth) {
        throw new CellposeError(
          "BAD_PARAMETER",
          `${field}: JSON nested deeper than ${maxDepth} levels`,
          { field, got: excerpt(text) },
        );
      }
    } else if (c === 93 || c === 125) depth--;
  }
}

/** `text` parsed as JSON (depth checked first); a syntax error is BAD_PARAMETER naming `field`. */
export function parseJson(text: string, field: string): unknown {
  checkJsonDepth(text, field);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `${field} must be JSON: ${excerpt((e as Error).message, 120)}`,
      { field, got: excerpt(text) },
    );
  }
}

/** `text` parsed as a JSON object, else BAD_PARAMETER naming `field`. */
export function parseJsonObject(text: string, field: string): Record<string, unknown> {
  const v = parseJson(text, field);
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw badParameter(field, "a JSON object", text);
  }
  return v as Record<string, unknown>;
}

/**
 * The body of `req` as a JSON object: at most `limit` bytes [64 KiB], depth checked; an absent
 * or empty body is `{}` when `optional`.
 */
export async function readJsonObject(
  req: Request,
  field = "body",
  options: { limit?: number; pace?: UploadPace; optional?: boolean } = {},
): Promise<Record<string, unknown>> {
  if (options.optional && !req.body) return {};
  let bytes: Uint8Array;
  try {
    const limit = options.limit ?? 64 * 1024;
    bytes = await readBodyLimited(req, limit, undefined, options.pace, "JSON bodies of this route");
  } catch (e) {
    if (options.optional && e instanceof CellposeError && e.code === "BAD_PARAMETER") return {};
    throw e;
  }
  return parseJsonObject(new TextDecoder().decode(bytes), field);
}
