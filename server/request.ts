/**
 * Splits a `POST /v1/segment` request into the image bytes and the raw parameters. Accepted
 * bodies: the image file itself (`image/tiff`, `image/png`, `image/jpeg`, `application/x-npy`,
 * `application/octet-stream`; the format is read from the bytes), or `multipart/form-data` with an `image` file part plus
 * parameters as fields and/or a `params` field holding a JSON object. Query-string parameters
 * apply to both; a body parameter overrides the same name in the query.
 *
 * @example
 * ```ts
 * import { readSegmentRequest } from "./request.ts";
 * const req = new Request("http://x/v1/segment?diameter=30", {
 *   method: "POST",
 *   headers: { "content-type": "image/png" },
 *   body: new Uint8Array([137, 80, 78, 71]),
 * });
 * const { bytes, params } = await readSegmentRequest(req, { limit: 1 << 20 }, ["sync"]);
 * console.log(bytes.length, params); // 4 { diameter: "30" }
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { excerpt } from "../core/check.ts";
import { parseJsonObject } from "./json_body.ts";
import { type MultipartPart, readMultipart } from "./multipart.ts";
import { readBodyLimited, type UploadBudget, type UploadPace } from "./upload.ts";

/** Content types accepted as a raw image body. */
export const IMAGE_CONTENT_TYPES = [
  "image/tiff",
  "image/png",
  "image/jpeg",
  "application/x-npy",
  "application/octet-stream",
] as const;

/** The image bytes and the parameters of a segment request, not yet validated. */
export interface SegmentRequest {
  bytes: Uint8Array;
  /** bytes of the body, taken from the upload budget (the caller gives them back) */
  received: number;
  /** file name of the multipart part, when given */
  filename?: string;
  params: Record<string, unknown>;
}

const RAW_TYPES = new Set<string>([...IMAGE_CONTENT_TYPES, "image/x-tiff", "application/npy"]);

/** Bounds of {@link readSegmentRequest}. */
export interface SegmentRequestRules {
  /** largest body in bytes */
  limit: number;
  /** counts the body's bytes against what all uploads may hold */
  budget?: UploadBudget;
  /** [DEFAULT_PACE] how slowly the body may arrive */
  pace?: UploadPace;
  /** [64] multipart parts at most */
  maxParts?: number;
  /** [1 MiB] bytes of a multipart text field (e.g. `params`) at most */
  maxFieldBytes?: number;
}

/**
 * Reads the request (body bounded by `rules`: size, pace, parts). Query names in `control`
 * (e.g. `sync`, `format`) are left out of `params`.
 */
export async function readSegmentRequest(
  req: Request,
  r: SegmentRequestRules,
  control: readonly string[],
): Promise<SegmentRequest> {
  const params: Record<string, unknown> = {};
  for (const [k, v] of new URL(req.url).searchParams) {
    if (control.includes(k)) continue;
    if (k in params) {
      throw new CellposeError("BAD_PARAMETER", `query parameter ${k} given twice`, { field: k });
    }
    params[k] = v;
  }
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type === "multipart/form-data") {
    const { parts, received } = await readMultipart(req, { ...r, files: ["image"] });
    try {
      return { ...multipartRequest(parts, params), received };
    } catch (e) {
      r.budget?.give(received);
      throw e;
    }
  }
  if (type !== "" && !RAW_TYPES.has(type)) {
    throw new CellposeError(
      "UNSUPPORTED",
      `content-type ${excerpt(type)} is not accepted; send the image as ` +
        `${IMAGE_CONTENT_TYPES.join(", ")} or multipart/form-data with an "image" part`,
      { field: "content-type", got: excerpt(type) },
    );
  }
  const bytes = await readBodyLimited(req, r.limit, r.budget, r.pace);
  return { bytes, received: bytes.length, params };
}

function multipartRequest(
  parts: MultipartPart[],
  params: Record<string, unknown>,
): Omit<SegmentRequest, "received"> {
  let image: MultipartPart | undefined;
  const fields: Record<string, unknown> = {};
  for (const part of parts) {
    const k = part.name;
    if (k === "image") {
      if (image || part.bytes === undefined) {
        throw new CellposeError(
          "BAD_PARAMETER",
          'multipart needs exactly one "image" part holding a file',
          { field: "image" },
        );
      }
      image = part;
    } else if (k === "params") {
      Object.assign(fields, parseJsonObject(part.text!, "params"));
    } else if (k in fields) {
      throw new CellposeError("BAD_PARAMETER", `field ${excerpt(k)} given twice`, { field: k });
    } else {
      fields[k] = part.text;
    }
  }
  if (!image) {
    throw new CellposeError(
      "BAD_PARAMETER",
      'multipart body has no "image" file part',
      { field: "image" },
    );
  }
  if (image.bytes!.length === 0) {
    throw new CellposeError("BAD_PARAMETER", '"image" part is empty', { field: "image" });
  }
  return {
    bytes: image.bytes!,
    filename: image.filename || undefined,
    params: { ...params, ...fields },
  };
}
