/**
 * `POST /v1/segment`: an uploaded image (raw body or multipart, parameters as query or form
 * fields) is validated, decoded in a decode worker and queued as a job (202 with its
 * `location`), or with `?sync=1` answered with its result once done (the job is then not kept).
 * The jobs are followed and read through `/v1/jobs` (`job_routes.ts`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Hono } from "hono";
 * import { createDecoder } from "./decoder.ts";
 * import { createJobQueue } from "./jobs.ts";
 * import type { JobInput } from "./job_routes.ts";
 * import { createModelSlot } from "./model_slot.ts";
 * import { storedBytes, type StoredResult } from "./results.ts";
 * import { segmentRoutes } from "./segment_routes.ts";
 * import { DEFAULT_PACE, uploadBudget } from "./upload.ts";
 * const jobs = createJobQueue<JobInput, StoredResult>(
 *   () => Promise.reject(new Error("no model")),
 *   { resultBytes: storedBytes },
 * );
 * const decoder = createDecoder({ warm: false });
 * const app = new Hono().route(
 *   "/v1/segment",
 *   segmentRoutes({
 *     jobs,
 *     model: createModelSlot(() => Promise.reject(new Error("no model"))),
 *     decoder,
 *     maxUploadBytes: 1 << 20,
 *     uploads: uploadBudget(1 << 20),
 *     pace: DEFAULT_PACE,
 *     maxPixels: 1 << 20,
 *     syncMaxPixels: 1 << 16,
 *   }),
 * );
 * app.onError((e) => Response.json({ error: e.message }, { status: 400 }));
 * assertEquals((await app.request("/v1/segment?sync=2", { method: "POST" })).status, 400);
 * jobs.close();
 * decoder.close();
 * ```
 * @module
 */
import { Hono } from "hono";
import { CellposeError } from "../core/errors.ts";
import { size } from "../core/ndarray.ts";
import type { Decoder } from "./decoder.ts";
import type { RemoteModel } from "./engine.ts";
import { withAxes } from "./image_input.ts";
import {
  type JobInput,
  jobView,
  resultResponse,
  type SegmentJob,
  type SegmentJobs,
} from "./job_routes.ts";
import type { ModelSlot } from "./model_slot.ts";
import { parseSegmentParams, type SegmentParams } from "./params.ts";
import { readSegmentRequest, type SegmentRequest } from "./request.ts";
import { checkFormat } from "./results.ts";
import type { UploadBudget, UploadPace } from "./upload.ts";

/** Options of {@link segmentRoutes}. */
export interface SegmentRoutesOptions {
  jobs: SegmentJobs;
  /** the model jobs run with (refused when none is loaded) */
  model: Pick<ModelSlot<RemoteModel>, "status">;
  /** decodes uploads in workers */
  decoder: Pick<Decoder, "decode">;
  /** largest upload in bytes */
  maxUploadBytes: number;
  /** bytes all uploads in progress may hold together */
  uploads: UploadBudget;
  /** how slowly the body may arrive */
  pace: UploadPace;
  /** parts of a multipart upload at most [readSegmentRequest's default] */
  maxFormParts?: number;
  /** largest decoded image in elements */
  maxPixels: number;
  /** largest image `?sync=1` accepts, in elements */
  syncMaxPixels: number;
}

/** Query names that are not segmentation parameters. */
const CONTROL = ["sync", "format", "token"];

/** Builds the `POST /v1/segment` route (mount it at `/v1/segment`; see the module doc). */
export function segmentRoutes(opts: SegmentRoutesOptions): Hono {
  const { jobs, uploads } = opts;
  const app = new Hono();

  app.post("/", async (c) => {
    const sync = flag(c.req.query("sync"), "sync");
    const format = c.req.query("format") ?? "json";
    checkFormat(format);
    jobs.checkRoom(0); // refuse before reading a large upload into a full queue
    const req = await readSegmentRequest(c.req.raw, {
      limit: opts.maxUploadBytes,
      budget: uploads,
      pace: opts.pace,
      maxParts: opts.maxFormParts,
    }, CONTROL);
    let job;
    try {
      job = await submit(req, sync);
    } finally {
      uploads.give(req.received); // from here the queue counts the decoded image instead
    }
    if (sync) return await syncResult(job, format);
    c.header("location", `/v1/jobs/${job.id}`);
    return c.json(jobView(job), 202);
  });

  /** Validates, decodes and queues a read request (the part of `POST /v1/segment` after upload). */
  async function submit(req: SegmentRequest, sync: boolean) {
    const params = parseSegmentParams(req.params);
    const name = req.filename ?? "image";
    // in a decode worker: a hostile file cannot hold up this thread (health, cancel, uploads)
    const { image, axes } = await opts.decoder.decode(
      req.bytes,
      name,
      opts.maxPixels,
      "image",
      true,
    );
    const input: JobInput = { image, params: withAxes(params, axes, image.shape.length), name };
    if (sync && size(image.shape) > opts.syncMaxPixels) {
      throw new CellposeError(
        "TOO_LARGE",
        `sync=1 takes images up to ${opts.syncMaxPixels} elements, this one has ` +
          `${size(image.shape)}: submit it without sync and poll /v1/jobs/<id>`,
        { field: "sync" },
      );
    }
    const loaded = opts.model.status();
    if (loaded.state === "none" || loaded.state === "failed") {
      throw new CellposeError(
        "MODEL_NOT_FOUND",
        loaded.state === "failed"
          ? `model ${loaded.name} failed to load (${loaded.error?.message}); ` +
            "POST /v1/models/<name>/load another"
          : "no model is loaded: POST /v1/models/<name>/load first",
        { status: 503 },
      );
    }
    // the parameters count too: a `normalize.lowhigh` of many pairs is not free to hold
    return jobs.submit(input, image.data.byteLength + paramBytes(params));
  }

  /**
   * Waits for a `sync=1` job and answers with its result; the job is not kept. (Deno does not
   * report a client that disconnects from a POST, so such a job runs to its end, then goes.)
   */
  async function syncResult(job: SegmentJob, format: string) {
    await jobs.settled(job.id);
    const res = resultResponse(job, format);
    res.headers.set("x-job-id", job.id);
    jobs.remove(job.id);
    return res;
  }

  return app;
}

/** Bytes the parameters of a job hold, about (JS arrays of numbers cost ~4x their JSON). */
function paramBytes(params: SegmentParams): number {
  return 4 * JSON.stringify(params).length;
}

function flag(v: string | undefined, field: string): boolean {
  if (v === undefined || v === "0" || v === "false") return false;
  if (v === "" || v === "1" || v === "true") return true;
  throw new CellposeError("BAD_PARAMETER", `${field} must be 1 or 0, got ${JSON.stringify(v)}`, {
    field,
    got: v,
  });
}
