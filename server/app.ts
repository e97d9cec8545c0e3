/**
 * The HTTP API as a Hono app: segmentation jobs (`/v1/segment`, `/v1/jobs/...`), models, health,
 * the OpenAPI description and the panel's static files. One model instance serves every job; the
 * job queue bounds concurrency, waiting jobs and stored results (see `jobs.ts`). Every refused
 * request gets a 4xx with `{error: {code, message, field?}}`.
 *
 * {@link createApp} builds the app without listening (`app.fetch` serves requests); `main.ts`'s
 * `startServer` binds it to a port.
 *
 * @example
 * ```ts
 * import { createApp } from "./app.ts";
 * const server = createApp({ model: "../shared/fixtures/tiny-cpsam.pt", device: "cpu" });
 * const res = await server.app.request("/v1/health", { headers: { host: "127.0.0.1" } });
 * console.log((await res.json()).model.state); // "loading" or "loaded"
 * await server.close();
 * ```
 * @module
 */
import { HTTPException } from "hono/http-exception";
import { Hono } from "hono";
import { CellposeError } from "../core/errors.ts";
import { type NdArray, type NumericArray, size } from "../core/ndarray.ts";
import type { Device } from "../core/types.ts";
import { listModels, modelsDir, type Precision } from "../models/store.ts";
import { guard, TOKEN_PATHS, tokenAuth } from "./auth.ts";
import { createEngine, type RemoteModel } from "./engine.ts";
import { bridgeRoutes } from "./bridge.ts";
import { largeRoutes } from "./large.ts";
import { withAxes } from "./image_input.ts";
import { createDecoder } from "./decoder.ts";
import { errorResponse, jsonError, ServerError, statusOf } from "./errors.ts";
import { createJobQueue, isFinal, type Job, type JobQueue } from "./jobs.ts";
import { createModelSlot, type ModelSlot } from "./model_slot.ts";
import { openApiDocument } from "./openapi.ts";
import { panelRoutes } from "./panel.ts";
import { parseSegmentParams, type SegmentParams } from "./params.ts";
import { readSegmentRequest, type SegmentRequest } from "./request.ts";
import { requestGpuAdapter } from "../kernels/gpu.ts";
import {
  checkFormat,
  editedResult,
  encodeResult,
  resultSummary,
  storedBytes,
  type StoredResult,
  storeResult,
} from "./results.ts";
import { jobEventStream } from "./sse.ts";
import { type LabelledJob, trainRoutes } from "./train_routes.ts";
import { DEFAULT_PACE, readBodyLimited, uploadBudget, type UploadPace } from "./upload.ts";

/** Options of {@link createApp}; every one has a default. */
export interface AppOptions {
  /** model name or checkpoint/ONNX path loaded at start and used by every job ["cpsam"] */
  model?: string;
  /** [true] load the model at once (else on `POST /v1/models/:name/load`) */
  preload?: boolean;
  /** where the network runs ["auto"] */
  device?: Device;
  /** network precision ["fp32"] */
  precision?: Precision;
  /** model cache folder [`$CELLPOSE_LOCAL_MODELS_PATH`, else ~/.cellpose/models] */
  modelsDir?: string;
  /** bearer token required on the API (see auth.ts); undefined: none */
  token?: string;
  /** origins allowed cross-origin besides the server's own; "*" allows any [] */
  corsOrigins?: string[];
  /** the server's own origins (the panel); filled in by `startServer` once bound [] */
  ownOrigins?: () => readonly string[];
  /** largest accepted upload in bytes [2 GiB] */
  maxUploadBytes?: number;
  /** bytes all uploads in progress may hold together; more get 429 [4 GiB] */
  maxUploadingBytes?: number;
  /**
   * how slowly a request body may arrive: after `graceMs` [10 s] at `minBytesPerSecond`
   * [16 KiB/s] on average, else 408 (see `upload.ts`)
   */
  uploadPace?: Partial<UploadPace>;
  /** [64] parts of a multipart upload at most */
  maxFormParts?: number;
  /** [120000] ms one image may take to decode before its decode worker is stopped */
  decodeTimeoutMs?: number;
  /** [2] decode workers (uploads decoded at once) */
  decodeWorkers?: number;
  /** largest decoded image in elements (pixels x channels x planes) [2^30] */
  maxPixels?: number;
  /** largest image `?sync=1` accepts, in elements [2^22] */
  syncMaxPixels?: number;
  /** jobs running at once [1] */
  concurrency?: number;
  /** jobs waiting beyond the running ones [16] */
  maxQueued?: number;
  /** bytes of decoded images held by waiting jobs [2 GiB] */
  maxQueuedBytes?: number;
  /** finished jobs and their results are deleted after this long [1 h] */
  resultTtlMs?: number;
  /** results kept together, in bytes; the oldest go first [1 GiB] */
  maxResultBytes?: number;
  /** [3000] a cancelled job still computing this long after is stopped by restarting the worker */
  cancelGraceMs?: number;
  /** [true] keep flows and cell probabilities for `format=flows|cellprob` (12 bytes/pixel) */
  keepFlows?: boolean;
  /**
   * [2^24] a segmented 2-D image up to this many elements is kept with its result, so that its
   * corrected masks can train a model (`POST /v1/train` with `job` ids); 0 keeps none
   */
  keepImageMaxPixels?: number;
  /** [32] images in one training (`POST /v1/train`) */
  trainMaxImages?: number;
  /** [1000] largest `n_epochs` of a training */
  trainMaxEpochs?: number;
  /** folder of the built panel [plugin-ui/dist] */
  panelDir?: string;
  /** folders whose images `POST /v1/segment_large?path=` may name [none] */
  dataDirs?: string[];
  /** where `/v1/segment_large` spools uploads and writes labels [system temporary folder] */
  spoolDir?: string;
  /** [64 GiB] largest upload `/v1/segment_large` spools */
  maxSpoolBytes?: number;
  /** where internal errors are logged [console.error] */
  log?: (line: string) => void;
}

/** What the queue holds for a job until it runs. */
export interface JobInput {
  image: NdArray<NumericArray>;
  params: SegmentParams;
  name: string;
}

/** The app and the state behind it. */
export interface CellposeApp {
  app: Hono;
  jobs: JobQueue<JobInput, StoredResult>;
  model: ModelSlot<RemoteModel>;
  /** cancels every job and frees the model */
  close(): Promise<void>;
}

/** Query names that are not segmentation parameters. */
const CONTROL = ["sync", "format", "token"];
const MODEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Builds the API app (see the module doc). */
export function createApp(options: AppOptions = {}): CellposeApp {
  const log = options.log ?? console.error;
  const modelName = options.model ?? "cpsam";
  const maxUpload = options.maxUploadBytes ?? 2 * 1024 ** 3;
  const maxPixels = options.maxPixels ?? 2 ** 30;
  const syncMaxPixels = options.syncMaxPixels ?? 2 ** 22;
  const uploads = uploadBudget(options.maxUploadingBytes ?? 4 * 1024 ** 3);
  const pace: UploadPace = { ...DEFAULT_PACE, ...options.uploadPace };
  const decoder = createDecoder({
    workers: options.decodeWorkers,
    timeoutMs: options.decodeTimeoutMs,
    log,
  });
  const startedAt = Date.now();

  const engine = createEngine({
    device: options.device,
    precision: options.precision,
    cacheDir: options.modelsDir,
    cancelGraceMs: options.cancelGraceMs,
    log,
  });
  const model = createModelSlot((name) => engine.load(name));
  const jobs = createJobQueue<JobInput, StoredResult>(
    async (input, { signal, onProgress }) => {
      const kept = keptImage(input); // before the image's buffer moves to the worker
      const r = await model.use((m) =>
        engine.segment(m, input.image, input.params, { signal, onProgress })
      );
      return storeResult(r, input.name, options.keepFlows ?? true, kept);
    },
    {
      concurrency: options.concurrency,
      maxQueued: options.maxQueued,
      maxQueuedBytes: options.maxQueuedBytes,
      resultTtlMs: options.resultTtlMs,
      maxResultBytes: options.maxResultBytes,
      resultBytes: storedBytes,
      describe: resultSummary,
    },
  );
  if (options.preload ?? true) {
    model.load(modelName).catch((e) => log(`model ${modelName} failed to load: ${e.message}`));
  }

  const app = new Hono();
  app.onError((err) =>
    err instanceof HTTPException ? err.getResponse() : errorResponse(err, undefined, log)
  );
  app.notFound((c) => jsonError(404, "NOT_FOUND", `no route ${c.req.method} ${c.req.path}`));
  app.use(...guard({
    token: options.token,
    corsOrigins: options.corsOrigins ?? [],
    ownOrigins: options.ownOrigins ?? (() => []),
  }));
  if (options.token) { for (const path of TOKEN_PATHS) app.use(path, tokenAuth(options.token)); }

  app.post("/v1/segment", async (c) => {
    const sync = flag(c.req.query("sync"), "sync");
    const format = c.req.query("format") ?? "json";
    checkFormat(format);
    jobs.checkRoom(0); // refuse before reading a large upload into a full queue
    const req = await readSegmentRequest(c.req.raw, {
      limit: maxUpload,
      budget: uploads,
      pace,
      maxParts: options.maxFormParts,
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

  app.put("/v1/jobs/:id/masks", async (c) => {
    const id = c.req.param("id");
    getJob(id);
    const bytes = await readBodyLimited(c.req.raw, maxUpload, uploads, pace);
    try {
      await replaceMasks(id, bytes);
    } finally {
      uploads.give(bytes.length);
    }
    return c.json(jobView(getJob(id)));
  });
  app.get("/v1/jobs", (c) => c.json({ jobs: jobs.list().map(jobView) }));
  app.get("/v1/jobs/:id", (c) => c.json(jobView(getJob(c.req.param("id")))));
  app.get("/v1/jobs/:id/events", (c) => {
    const job = getJob(c.req.param("id"));
    const last = Number(c.req.header("last-event-id") ?? 0);
    return jobEventStream(jobs, job, Number.isFinite(last) ? last : 0);
  });
  app.get("/v1/jobs/:id/result", (c) => {
    const job = getJob(c.req.param("id"));
    return resultResponse(job, c.req.query("format") ?? "json");
  });
  app.delete("/v1/jobs/:id", (c) => {
    const job = getJob(c.req.param("id"));
    const wasFinal = isFinal(job.status);
    jobs.remove(job.id);
    return c.json({ id: job.id, status: job.status, deleted: true, cancelled: !wasFinal });
  });

  app.get(
    "/v1/models",
    async (c) =>
      c.json({
        current: model.status(),
        models: await listModels({ cacheDir: options.modelsDir }),
      }),
  );
  app.post("/v1/models/:name/load", async (c) => {
    const name = c.req.param("name");
    if (name !== modelName && !MODEL_NAME.test(name)) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `model name ${JSON.stringify(name)} must be a name from GET /v1/models (letters, digits, ` +
          "'_', '.', '-'); paths are only accepted as the server's --model option",
        { field: "name", got: name },
      );
    }
    await model.load(name);
    return c.json({ current: model.status() });
  });

  app.get("/v1/health", async (c) =>
    c.json({
      status: "ok",
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      device: { network: model.status().device ?? null, webgpu: await webgpuInfo() },
      model: model.status(),
      queue: { ...jobs.stats(), uploadingBytes: uploads.used() },
      workerRestarts: engine.restarts(),
      decoding: { pending: decoder.pending(), workerRestarts: decoder.restarts() },
      memory: Deno.memoryUsage(),
    }));
  const training = trainRoutes({
    modelsDir: options.modelsDir ?? modelsDir(),
    maxUploadBytes: maxUpload,
    uploads,
    maxPixels,
    decode: (bytes, name, max, field) => decoder.decode(bytes, name, max, field),
    pace,
    maxImages: options.trainMaxImages,
    maxEpochs: options.trainMaxEpochs,
    currentModel: () => model.status().name,
    serverModel: modelName,
    labelledJob,
    log,
  });
  app.route("/v1/train", training.app);
  app.route(
    "/v1/segment_large",
    largeRoutes({
      engine,
      model,
      dataDirs: options.dataDirs,
      spoolDir: options.spoolDir,
      maxSpoolBytes: options.maxSpoolBytes,
      pace,
    }),
  );
  app.route("/v1/bridge", bridgeRoutes({ maxUploadBytes: maxUpload, replaceMasks, pace }));
  app.get("/openapi.json", (c) => c.json(openApiDocument()));
  app.route("/", panelRoutes(options.panelDir));

  /** Validates, decodes and queues a read request (the part of `POST /v1/segment` after upload). */
  async function submit(req: SegmentRequest, sync: boolean) {
    const params = parseSegmentParams(req.params);
    const name = req.filename ?? "image";
    // in a decode worker: a hostile file cannot hold up this thread (health, cancel, uploads)
    const { image, axes } = await decoder.decode(req.bytes, name, maxPixels, "image", true);
    const input: JobInput = { image, params: withAxes(params, axes, image.shape.length), name };
    if (sync && size(image.shape) > syncMaxPixels) {
      throw new CellposeError(
        "TOO_LARGE",
        `sync=1 takes images up to ${syncMaxPixels} elements, this one has ` +
          `${size(image.shape)}: submit it without sync and poll /v1/jobs/<id>`,
        { field: "sync" },
      );
    }
    const loaded = model.status();
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

  function getJob(id: string): Job<JobInput, StoredResult> {
    const job = jobs.get(id);
    if (!job) {
      throw new ServerError("NOT_FOUND", `no job ${id} (unknown, deleted or expired)`, {
        field: "id",
        got: id,
      });
    }
    return job;
  }

  /** A copy of a 2-D job image small enough to keep for training (see `keepImageMaxPixels`). */
  function keptImage(input: JobInput): StoredResult["image"] {
    const n = size(input.image.shape);
    if (input.params.zAxis !== undefined || n > (options.keepImageMaxPixels ?? 2 ** 24)) return;
    const data = { data: input.image.data.slice(), shape: [...input.image.shape] };
    return { data, channelAxis: input.params.channelAxis };
  }

  /** A finished job's image and masks, for training on its (corrected) masks. */
  function labelledJob(id: string): LabelledJob {
    const job = jobs.get(id);
    if (!job) {
      throw new ServerError("NOT_FOUND", `no job ${id} (unknown, deleted or expired)`, {
        field: "job",
        got: id,
      });
    }
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

  /** Replaces a finished job's masks by an edited label image of the same shape (the bridge). */
  async function replaceMasks(id: string, bytes: Uint8Array): Promise<void> {
    const job = getJob(id);
    if (!job.result) {
      throw new ServerError("NOT_READY", `job ${id} is ${job.status}, not done`, {
        field: "job",
      });
    }
    const { image } = await decoder.decode(bytes, "labels", maxPixels, "labels", true);
    job.result = editedResult(job.result, image);
  }

  /**
   * Waits for a `sync=1` job and answers with its result; the job is not kept. (Deno does not
   * report a client that disconnects from a POST, so such a job runs to its end, then goes.)
   */
  async function syncResult(job: Job<JobInput, StoredResult>, format: string) {
    await jobs.settled(job.id);
    const res = resultResponse(job, format);
    res.headers.set("x-job-id", job.id);
    jobs.remove(job.id);
    return res;
  }

  return {
    app,
    jobs,
    model,
    async close() {
      jobs.close();
      training.close();
      decoder.close();
      await engine.close(); // first: a model still loading must not hold up the exit for long
      await model.close();
    },
  };
}

function resultResponse(job: Job<JobInput, StoredResult>, format: string): Response {
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
function jobView(job: Job<JobInput, StoredResult>): Record<string, unknown> {
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

let gpu: Promise<Record<string, unknown> | null> | undefined;

/** The WebGPU adapter's description, or null without one (asked once). */
function webgpuInfo(): Promise<Record<string, unknown> | null> {
  gpu ??= (async () => {
    const adapter = await requestGpuAdapter();
    if (!adapter) return null;
    const { vendor, architecture, device, description } = adapter.info;
    return {
      vendor,
      architecture,
      device,
      description,
      isFallback: adapter.info.isFallbackAdapter,
    };
  })().catch(() => null);
  return gpu;
}
