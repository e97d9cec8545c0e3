/**
 * Segmentation jobs over HTTP (`/v1/jobs`): list, status, progress events, result, corrected
 * masks and delete, over the app's one job queue (filled by `POST /v1/segment`,
 * `segment_routes.ts`).
 *
 * Routes (under /v1/jobs):
 * - `GET /` -> {jobs}; `GET /:id` -> the job; `GET /:id/events` -> SSE (`Last-Event-ID` resumes)
 * - `GET /:id/result?format=` -> the result (409 until done); `DELETE /:id` -> cancel and delete
 * - `PUT /:id/masks` a label image of the result's shape -> the job, with the edited masks
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Hono } from "hono";
 * import { createDecoder } from "./decoder.ts";
 * import { createJobQueue } from "./jobs.ts";
 * import { type JobInput, jobRoutes } from "./job_routes.ts";
 * import { storedBytes, type StoredResult } from "./results.ts";
 * import { DEFAULT_PACE, uploadBudget } from "./upload.ts";
 * const jobs = createJobQueue<JobInput, StoredResult>(
 *   () => Promise.reject(new Error("no model")),
 *   { resultBytes: storedBytes },
 * );
 * const decoder = createDecoder({ warm: false });
 * const routes = jobRoutes({
 *   jobs,
 *   decoder,
 *   maxPixels: 1 << 20,
 *   maxUploadBytes: 1 << 20,
 *   uploads: uploadBudget(1 << 20),
 *   pace: DEFAULT_PACE,
 * });
 * const app = new Hono().route("/v1/jobs", routes.app);
 * assertEquals((await (await app.request("/v1/jobs")).json()).jobs, []);
 * jobs.close();
 * decoder.close();
 * ```
 * @module
 */
import { Hono } from "hono";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { jsonError, ServerError, statusOf } from "./errors.ts";
import type { Decoder } from "./decoder.ts";
import { isFinal, type Job, type JobQueue } from "./jobs.ts";
import type { SegmentParams } from "./params.ts";
import { editedResult, encodeResult, resultSummary, type StoredResult } from "./results.ts";
import { jobEventStream } from "./sse.ts";
import type { LabelledJob } from "./train_routes.ts";
import { readBodyLimited, type UploadBudget, type UploadPace } from "./upload.ts";

/** What the queue holds for a job until it runs. */
export interface JobInput {
  image: NdArray<NumericArray>;
  params: SegmentParams;
  name: string;
}

/** The app's segmentation job queue. */
export type SegmentJobs = JobQueue<JobInput, StoredResult>;
/** One segmentation job. */
export type SegmentJob = Job<JobInput, StoredResult>;

/** Options of {@link jobRoutes}. */
export interface JobRoutesOptions {
  jobs: SegmentJobs;
  /** decodes an uploaded label image (`PUT /:id/masks`, the bridge) in a worker */
  decoder: Pick<Decoder, "decode">;
  /** largest label image in elements */
  maxPixels: number;
  /** largest label image upload in bytes */
  maxUploadBytes: number;
  /** bytes all uploads in progress may hold together */
  uploads: UploadBudget;
  /** how slowly the body may arrive */
  pace: UploadPace;
}

/** The job routes and the job-store operations other route groups use. */
export interface JobRoutes {
  app: Hono;
  /** replaces a finished job's masks by an edited label image of the same shape (the bridge) */
  replaceMasks(id: string, bytes: Uint8Array): Promise<void>;
  /** a finished job's image and masks, for training on its (corrected) masks */
  labelledJob(id: string): LabelledJob;
}

/** Builds the `/v1/jobs` routes over `opts.jobs` (see the module doc). */
export function jobRoutes(opts: JobRoutesOptions): JobRoutes {
  const { jobs, uploads, pace } = opts;
  const app = new Hono();

  app.put("/:id/masks", async (c) => {
    const id = c.req.param("id");
    findJob(jobs, id);
    const bytes = await readBodyLimited(c.req.raw, opts.maxUploadBytes, uploads, pace);
    try {
      await replaceMasks(id, bytes);
    } finally {
      uploads.give(bytes.length);
    }
    return c.json(jobView(findJob(jobs, id)));
  });
  app.get("/", (c) => c.json({ jobs: jobs.list().map(jobView) }));
  app.get("/:id", (c) => c.json(jobView(findJob(jobs, c.req.param("id")))));
  app.get("/:id/events", (c) => {
    const job = findJob(jobs, c.req.param("id"));
    const last = Number(c.req.header("last-event-id") ?? 0);
    return jobEventStream(jobs, job, Number.isFinite(last) ? last : 0);
  });
  app.get("/:id/result", (c) => {
    const job = findJob(jobs, c.req.param("id"));
    return resultResponse(job, c.req.query("format") ?? "json");
  });
  app.delete("/:id", (c) => {
    const job = findJob(jobs, c.req.param("id"));
    const wasFinal = isFinal(job.status);
    jobs.remove(job.id);
    return c.json({ id: job.id, status: job.status, deleted: true, cancelled: !wasFinal });
  });

  async function replaceMasks(id: string, bytes: Uint8Array): Promise<void> {
    const job = findJob(jobs, id);
    if (!job.result) {
      throw new ServerError("NOT_READY", `job ${id} is ${job.status}, not done`, {
        field: "job",
      });
    }
    const { image } = await opts.decoder.decode(bytes, "labels", opts.maxPixels, "labels", true);
    job.result = editedResult(job.result, image);
  }

  function labelledJob(id: string): LabelledJob {
    const job = findJob(jobs, id, "job");
    const r = job.result;
    if (!r) {
      throw new ServerError("NOT_READY", `job ${id} is ${job.status}, not done`, {
        field: "job",
        got: id,
      });
    }
    if (!r.image) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `job ${id}'s image was not kept (a stack, or over keepImageMaxPixels): upload it as ` +
          '"image" with its "masks"',
        { field: "job", got: id },
      );
    }
    return { image: r.image.data, channelAxis: r.image.channelAxis, masks: r.masks, name: r.name };
  }

  return { app, replaceMasks, labelledJob };
}

/** The job `id`, else NOT_FOUND naming `field`. */
function findJob(jobs: SegmentJobs, id: string, field = "id"): SegmentJob {
  const job = jobs.get(id);
  if (!job) {
    throw new ServerError("NOT_FOUND", `no job ${id} (unknown, deleted or expired)`, {
      field,
      got: id,
    });
  }
  return job;
}

/** A job's result in `format`, or the error that it failed, was cancelled or is not done yet. */
export function resultResponse(job: SegmentJob, format: string): Response {
  if (job.status === "failed") {
    const e = job.error!;
    const status = e.code === "INTERNAL" ? 500 : statusOf(e.code);
    return jsonError(status, e.code, `job ${job.id} failed: ${e.message}`);
  }
  if (job.status === "cancelled") {
    return jsonError(409, "CANCELLED", `job ${job.id} was cancelled`);
  }
  if (!job.result) {
    return jsonError(
      409,
      "NOT_READY",
      `job ${job.id} is ${job.status}; wait for status "done" (GET /v1/jobs/${job.id}/events)`,
    );
  }
  const out = encodeResult(job.result, format);
  return new Response(out.body as Uint8Array<ArrayBuffer> | string, {
    headers: {
      "content-type": out.contentType,
      "content-disposition": `attachment; filename="${out.filename.replace(/["\\\r\n]/g, "_")}"`,
    },
  });
}

/** The public view of a job: status, latest progress, error or result summary, links. */
export function jobView(job: SegmentJob): Record<string, unknown> {
  const base = `/v1/jobs/${job.id}`;
  const iso = (t?: number) => (t === undefined ? undefined : new Date(t).toISOString());
  return {
    id: job.id,
    status: job.status,
    ...job.progress,
    ...(job.result ? resultSummary(job.result) : {}),
    error: job.error,
    createdAt: iso(job.createdAt),
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    links: { self: base, events: `${base}/events`, result: `${base}/result` },
  };
}
