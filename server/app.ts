/**
 * The HTTP API as a Hono app: the shared state (one model instance serves every job; the job
 * queue bounds concurrency, waiting jobs and stored results, see `jobs.ts`), the middleware every
 * request passes (Host/origin checks and CORS, the bearer token, the error handler) and the route
 * groups mounted on it: `/v1/segment` (`segment_routes.ts`), `/v1/jobs` (`job_routes.ts`),
 * `/v1/models` (`model_routes.ts`), `/v1/train`, `/v1/segment_large`, `/v1/bridge`, plus health,
 * the OpenAPI description and the panel's static files. Every refused request gets a 4xx with
 * `{error: {code, message, field?}}`.
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
import { size } from "../core/ndarray.ts";
import type { Device } from "../core/types.ts";
import { modelsDir, type Precision } from "../models/store.ts";
import { guard, TOKEN_PATHS, tokenAuth } from "./auth.ts";
import { createEngine, type RemoteModel } from "./engine.ts";
import { bridgeRoutes } from "./bridge.ts";
import { largeRoutes } from "./large.ts";
import { createDecoder } from "./decoder.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { createJobQueue } from "./jobs.ts";
import { type JobInput, jobRoutes, type SegmentJobs } from "./job_routes.ts";
import { createModelSlot, type ModelSlot } from "./model_slot.ts";
import { modelRoutes } from "./model_routes.ts";
import { openApiDocument } from "./openapi.ts";
import { panelRoutes } from "./panel.ts";
import { requestGpuAdapter } from "../kernels/gpu.ts";
import { resultSummary, storedBytes, type StoredResult, storeResult } from "./results.ts";
import { segmentRoutes } from "./segment_routes.ts";
import { trainRoutes } from "./train_routes.ts";
import { DEFAULT_PACE, uploadBudget, type UploadPace } from "./upload.ts";

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

/** The app and the state behind it. */
export interface CellposeApp {
  app: Hono;
  jobs: SegmentJobs;
  model: ModelSlot<RemoteModel>;
  /** cancels every job and frees the model */
  close(): Promise<void>;
}

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

  const jobsApi = jobRoutes({ jobs, decoder, maxPixels, maxUploadBytes: maxUpload, uploads, pace });
  app.route(
    "/v1/segment",
    segmentRoutes({
      jobs,
      model,
      decoder,
      maxUploadBytes: maxUpload,
      uploads,
      pace,
      maxFormParts: options.maxFormParts,
      maxPixels,
      syncMaxPixels,
    }),
  );
  app.route("/v1/jobs", jobsApi.app);
  app.route(
    "/v1/models",
    modelRoutes({ model, modelsDir: options.modelsDir, serverModel: modelName }),
  );
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
    labelledJob: jobsApi.labelledJob,
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
  app.route(
    "/v1/bridge",
    bridgeRoutes({ maxUploadBytes: maxUpload, replaceMasks: jobsApi.replaceMasks, pace }),
  );
  app.get("/openapi.json", (c) => c.json(openApiDocument()));
  app.route("/", panelRoutes(options.panelDir));

  /** A copy of a 2-D job image small enough to keep for training (see `keepImageMaxPixels`). */
  function keptImage(input: JobInput): StoredResult["image"] {
    const n = size(input.image.shape);
    if (input.params.zAxis !== undefined || n > (options.keepImageMaxPixels ?? 2 ** 24)) return;
    const data = { data: input.image.data.slice(), shape: [...input.image.shape] };
    return { data, channelAxis: input.params.channelAxis };
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
