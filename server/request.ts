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
 * const { bytes, params } = await readSegmentRequest(req, 1 << 20, ["sync"]);
 * console.log(bytes.length, params); // 4 { diameter: "30" }
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { readBodyLimited, type UploadBudget } from "./upload.ts";

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

/**
 * Reads the request (body size bounded by `limit`, bytes counted in `budget`). Query names in
 * `control` (e.g. `sync`, `format`) are left out of `params`.
 */
export async function readSegmentRequest(
  req: Request,
  limit: number,
  control: readonly string[],
  budget?: UploadBudget,
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
    const body = await readBodyLimited(req, limit, budget);
    try {
      return { ...(await readMultipart(req, body, params)), received: body.length };
    } catch (e) {
      budget?.give(body.length);
      throw e;
    }
  }
  if (type !== "" && !RAW_TYPES.has(type)) {
    throw new CellposeError(
      "UNSUPPORTED",
      `content-type ${JSON.stringify(type)} is not accepted; send the image as ` +
        `${IMAGE_CONTENT_TYPES.join(", ")} or multipart/form-data with an "image" part`,
      { field: "content-type", got: type },
    );
  }
  const bytes = await readBodyLimited(req, limit, budget);
  return { bytes, received: bytes.length, params };
}

async function readMultipart(
  req: Request,
  body: Uint8Array<ArrayBuffer>,
  params: Record<string, unknown>,
): Promise<Omit<SegmentRequest, "received">> {
  let form: FormData;
  try {
    form = await new Response(body, {
      headers: { "content-type": req.headers.get("content-type")! },
    })
      .formData();
  } catch (e) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `multipart body could not be parsed: ${(e as Error).message}`,
      { field: "body" },
    );
  }
  let image: File | undefined;
  const fields: Record<string, unknown> = {};
  for (const [k, v] of form) {
    if (k === "image") {
      if (image || typeof v === "string") {
        throw new CellposeError(
          "BAD_PARAMETER",
          'multipart needs exactly one "image" part holding a file',
          { field: "image" },
        );
      }
      image = v;
    } else if (typeof v !== "string") {
      throw new CellposeError(
        "BAD_PARAMETER",
        `multipart part ${JSON.stringify(k)} is a file; only "image" may be a file`,
        { field: k },
      );
    } else if (k === "params") {
      Object.assign(fields, parseParamsJson(v));
    } else if (k in fields) {
      throw new CellposeError("BAD_PARAMETER", `field ${k} given twice`, { field: k });
    } else {
      fields[k] = v;
    }
  }
  if (!image) {
    throw new CellposeError(
      "BAD_PARAMETER",
      'multipart body has no "image" file part',
      { field: "image" },
    );
  }
  const bytes = new Uint8Array(await image.arrayBuffer());
  if (bytes.length === 0) {
    throw new CellposeError("BAD_PARAMETER", '"image" part is empty', { field: "image" });
  }
  return { bytes, filename: image.name || undefined, params: { ...params, ...fields } };
}

function parseParamsJson(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `params must be a JSON object: ${(e as Error).message}`,
      { field: "params", got: text.slice(0, 100) },
    );
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new CellposeError("BAD_PARAMETER", "params must be a JSON object", {
      field: "params",
      got: text.slice(0, 100),
    });
  }
  return v as Record<string, unknown>;
}
