/**
 * Training over HTTP (`/v1/train`): a biologist's corrected masks become a model the server then
 * segments with. A thin shell over the library's `train` (cellpose v4's `train_seg` recipe): the
 * request brings images with their label images (multipart `image` + `masks` parts, in pairs)
 * and/or the ids of finished segmentation jobs whose masks were corrected
 * (`PUT /v1/jobs/:id/masks`); a training job runs in its own queue (one at a time, in a worker),
 * reports every step and epoch (loss, learning rate, ETA) as Server-Sent Events, can be cancelled,
 * and saves the model into the server's model folder, where `GET /v1/models` lists it and
 * `POST /v1/models/<name>/load` makes it the model of later segmentations.
 *
 * Routes (under /v1/train):
 * - `POST /` multipart (`image`, `masks` files; `job` ids; parameters as fields or a `params`
 *   JSON field) or JSON `{jobs: [...], ...parameters}` -> 202 the training job
 * - `GET /` -> {jobs}; `GET /:id` -> the job; `GET /:id/events` -> SSE; `DELETE /:id` -> cancel
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { decodeImage } from "./image_input.ts";
 * import { trainRoutes } from "./train_routes.ts";
 * const training = trainRoutes({
 *   modelsDir: "/tmp/models",
 *   maxUploadBytes: 1 << 28,
 *   maxPixels: 1 << 24,
 *   decode: decodeImage,
 *   currentModel: () => "cpsam",
 *   labelledJob: () => {
 *     throw new Error("no segmentation jobs here");
 *   },
 * });
 * const app = new Hono().route("/v1/train", training.app);
 * training.close();
 * ```
 * @module
 */
import { join } from "node:path";
import { Hono } from "hono";
import { badParameter, excerpt } from "../core/check.ts";
import { type ParamSpec, paramSpec, parseParams, TRAIN_PARAMS as TABLE } from "../core/params.ts";
import { CellposeError } from "../core/errors.ts";
import { toLabels } from "../core/labels.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import type { Progress } from "../core/types.ts";
import { resolveModel } from "../models/store.ts";
import { diameterOf } from "../train/dataset.ts";
import type { LabelledImage, TrainProgress } from "../train/train.ts";
import { ServerError } from "./errors.ts";
import type { ImageDecoder } from "./image_input.ts";
import { parseJsonObject, readJsonObject } from "./json_body.ts";
import { type MultipartPart, readMultipart } from "./multipart.ts";
import { createJobQueue, type Job } from "./jobs.ts";
import { jobEventStream } from "./sse.ts";
import { runTraining, type TrainSummary, type WorkerTrainOptions } from "./trainer.ts";
import type { UploadBudget, UploadPace } from "./upload.ts";

/** The training parameters the API takes (the table's; the limit on epochs is the server's). */
export const TRAIN_PARAMS: readonly ParamSpec[] = [
  "model_name",
  "pretrained_model",
  "n_epochs",
  "learning_rate",
  "weight_decay",
  "batch_size",
  "nimg_per_epoch",
  "min_train_masks",
  "train_blocks",
].map((name) => paramSpec(TABLE, name));

/** A finished segmentation job's image and (corrected) masks, from the job store. */
export interface LabelledJob {
  image: NdArray<NumericArray>;
  channelAxis?: number;
  masks: NdArray;
  name: string;
}

/** Options of {@link trainRoutes}. */
export interface TrainRoutesOptions {
  /** the server's model folder: trained models are saved here */
  modelsDir: string;
  /** largest request body in bytes */
  maxUploadBytes: number;
  /** bytes all uploads in progress may hold together (shared with segmentation) */
  uploads?: UploadBudget;
  /** largest image in elements */
  maxPixels: number;
  /** decodes uploaded images (off the event loop: the server's decode worker) */
  decode: ImageDecoder;
  /** [DEFAULT_PACE] how slowly a body may arrive */
  pace?: UploadPace;
  /** [32] images (uploaded and from jobs) in one training */
  maxImages?: number;
  /** [1000] largest n_epochs */
  maxEpochs?: number;
  /** [2] trainings waiting beyond the running one */
  maxQueued?: number;
  /** [60000] ms a cancelled training may take to finish its step before its worker is stopped */
  cancelGraceMs?: number;
  /** finished trainings are forgotten after this long [1 h] */
  resultTtlMs?: number;
  /** name of the model segmentations use now: the default `pretrained_model` */
  currentModel: () => string | undefined;
  /** the server's own `--model` (may be a path; other paths are refused) */
  serverModel?: string;
  /** a segmentation job's image and masks; throws NOT_FOUND / NOT_READY */
  labelledJob: (id: string) => LabelledJob;
  /** where unexpected errors are logged [console.error] */
  log?: (line: string) => void;
}

/** What a training job holds until it runs. */
interface TrainInput {
  options: WorkerTrainOptions;
  modelName: string;
}

/** A finished training. */
export interface TrainedModel extends TrainSummary {
  /** the model's name: use it in `POST /v1/models/<name>/load` */
  modelName: string;
  /** mean seconds per epoch */
  secondsPerEpoch: number;
}

/** The routes and their queue. */
export interface TrainRoutes {
  app: Hono;
  /** cancels every training */
  close(): void;
}

const MODEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Builds the `/v1/train` routes (see the module doc). */
export function trainRoutes(o: TrainRoutesOptions): TrainRoutes {
  const maxImages = o.maxImages ?? 32;
  const maxEpochs = o.maxEpochs ?? 1000;
  const staging = join(o.modelsDir, ".training");
  /** model name of each stored job (its input goes when it starts) */
  const names = new Map<string, string>();
  const jobs = createJobQueue<TrainInput, TrainedModel>(
    (input, { signal, onProgress }) => trainJob(input, signal, onProgress),
    {
      concurrency: 1,
      maxQueued: o.maxQueued ?? 2,
      resultTtlMs: o.resultTtlMs,
      resultBytes: (r) => 8 * (r.trainLosses.length + r.testLosses.length) + 256,
      describe: (r) => ({ ...r }),
    },
  );

  async function trainJob(
    input: TrainInput,
    signal: AbortSignal,
    onProgress: (p: Progress) => void,
  ): Promise<TrainedModel> {
    const dir = join(staging, crypto.randomUUID());
    try {
      const r = await runTraining({ ...input.options, savePath: dir }, {
        signal,
        graceMs: o.cancelGraceMs,
        onProgress: (p) => {
          const event = progressOf(p);
          if (event) onProgress(event);
        },
      });
      const dest = join(o.modelsDir, input.modelName);
      if (await exists(dest)) {
        throw new CellposeError(
          "BAD_PARAMETER",
          `a model ${input.modelName} appeared in ${o.modelsDir} during the training; the new ` +
            "one was not saved",
          { field: "model_name", got: input.modelName },
        );
      }
      await Deno.rename(r.path, dest);
      const epochs = r.trainLosses.length;
      return {
        ...r,
        path: dest,
        modelName: input.modelName,
        secondsPerEpoch: r.seconds / Math.max(1, epochs),
      };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  async function submit(req: Request): Promise<Job<TrainInput, TrainedModel>> {
    const { fields, pairs, jobIds } = await readTrainRequest(req, o, maxImages);
    const n = pairs.length + jobIds.length;
    if (n === 0) {
      throw new CellposeError(
        "BAD_PARAMETER",
        'no training images: send "image" and "masks" file parts (in pairs), or "job" ids of ' +
          "finished segmentations whose masks you corrected",
        { field: "image" },
      );
    }
    if (n > maxImages) {
      throw new CellposeError(
        "TOO_LARGE",
        `${n} training images; the server takes up to ${maxImages} (option trainMaxImages)`,
        { field: "image", got: n },
      );
    }
    const p = parseTrainParams(fields, maxEpochs);
    const images: LabelledImage[] = [];
    for (const [i, pair] of pairs.entries()) {
      images.push(await decodePair(pair, i, o.maxPixels, o.decode));
    }
    for (const id of jobIds) {
      const j = o.labelledJob(id);
      images.push({ image: j.image, channelAxis: j.channelAxis, masks: j.masks, name: j.name });
    }
    const minMasks = (p.min_train_masks as number | undefined) ??
      (paramSpec(TRAIN_PARAMS, "min_train_masks").default as number);
    const counts = images.map((x) => diameterOf(toLabels(x.masks, `${x.name} masks`)).nMasks);
    if (!counts.some((c) => c >= minMasks)) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `no training image has at least min_train_masks = ${minMasks} masks (they have ` +
          `${counts.join(", ")}): label more cells, or lower min_train_masks`,
        { field: "min_train_masks", got: counts },
      );
    }
    const modelName = (p.model_name as string | undefined) ??
      `cellpose_${Math.floor(Date.now() / 1000)}`;
    if (!MODEL_NAME.test(modelName)) {
      throw badParameter("model_name", "a file name: letters, digits, '_', '.', '-'", modelName);
    }
    const taken = jobs.list().some((j) =>
      !["failed", "cancelled"].includes(j.status) && names.get(j.id) === modelName
    );
    if (taken || await exists(join(o.modelsDir, modelName))) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `a model named ${modelName} already exists (or is being trained); choose another ` +
          "model_name",
        { field: "model_name", got: modelName, status: 409 },
      );
    }
    const base = (p.pretrained_model as string | undefined) ?? o.currentModel() ?? "cpsam";
    if (base !== o.serverModel && !MODEL_NAME.test(base)) {
      throw badParameter("pretrained_model", "a model name from GET /v1/models (not a path)", base);
    }
    const resolved = await resolveModel(base, { cacheDir: o.modelsDir, download: false })
      .catch((e) => {
        throw new CellposeError(
          "MODEL_NOT_FOUND",
          `pretrained_model ${base}: ${(e as Error).message}`,
          { field: "pretrained_model", got: base },
        );
      });
    if (resolved.kind !== "checkpoint") {
      throw new CellposeError(
        "BAD_MODEL",
        `pretrained_model ${base} is an ONNX network; training starts from a cellpose checkpoint`,
        { field: "pretrained_model", got: base },
      );
    }
    const options: WorkerTrainOptions = {
      model: resolved.path,
      train: images,
      nEpochs: p.n_epochs as number | undefined,
      learningRate: p.learning_rate as number | undefined,
      weightDecay: p.weight_decay as number | undefined,
      batchSize: p.batch_size as number | undefined,
      nimgPerEpoch: p.nimg_per_epoch as number | undefined,
      minTrainMasks: minMasks,
      trainBlocks: p.train_blocks as number | undefined,
      modelName,
      saveEvery: 1 << 30, // only the final model: a server training is not resumed
    };
    const bytes = images.reduce((s, x) => s + x.image.data.byteLength + x.masks.data.byteLength, 0);
    for (const id of names.keys()) if (!jobs.get(id)) names.delete(id); // expired
    const job = jobs.submit({ options, modelName }, bytes);
    names.set(job.id, modelName);
    return job;
  }

  function getJob(id: string) {
    const job = jobs.get(id);
    if (!job) {
      throw new ServerError("NOT_FOUND", `no training job ${id} (unknown, deleted or expired)`, {
        field: "id",
        got: id,
      });
    }
    return job;
  }

  const app = new Hono();
  app.post("/", async (c) => {
    jobs.checkRoom(0); // refuse before reading the images into a full queue
    const job = await submit(c.req.raw);
    c.header("location", `/v1/train/${job.id}`);
    return c.json(trainView(job, names.get(job.id)), 202);
  });
  app.get("/", (c) => c.json({ jobs: jobs.list().map((j) => trainView(j, names.get(j.id))) }));
  app.get(
    "/:id",
    (c) => c.json(trainView(getJob(c.req.param("id")), names.get(c.req.param("id")))),
  );
  app.get("/:id/events", (c) => {
    const job = getJob(c.req.param("id"));
    const last = Number(c.req.header("last-event-id") ?? 0);
    return jobEventStream(jobs, job, Number.isFinite(last) ? last : 0);
  });
  app.delete("/:id", (c) => {
    const job = getJob(c.req.param("id"));
    const wasRunning = job.status === "queued" || job.status === "running";
    jobs.cancel(job.id);
    return c.json({ ...trainView(job, names.get(job.id)), cancelled: wasRunning });
  });
  return { app, close: () => jobs.close() };
}

/** Progress of a training job: the queue's fields and the training's. */
export interface TrainJobProgress extends Progress {
  stage: "train";
  /** `step` after each batch, `epoch` after each epoch (its mean loss) */
  event: "step" | "epoch";
  /** 1-based */
  epoch: number;
  nEpochs: number;
  loss: number;
  testLoss?: number;
  lr: number;
  /** seconds */
  eta: number;
  elapsed: number;
  step?: number;
  steps?: number;
}

/** A training progress event as the job reports it: steps with their loss, epochs with theirs. */
function progressOf(p: TrainProgress): TrainJobProgress | undefined {
  if (p.stage === "save") return undefined;
  const done = p.epoch * p.steps + p.step;
  const common = {
    stage: "train" as const,
    fraction: done / (p.nEpochs * p.steps),
    epoch: p.epoch + 1,
    nEpochs: p.nEpochs,
    loss: p.loss,
    lr: p.lr,
    eta: p.eta,
    elapsed: p.elapsed,
  };
  // `tilesDone` tells steps apart for the queue's repeat filter; an epoch event has none
  return p.stage === "step"
    ? { ...common, event: "step", step: p.step, steps: p.steps, tilesDone: done }
    : { ...common, event: "epoch", ...(p.testLoss !== undefined ? { testLoss: p.testLoss } : {}) };
}

function trainView(
  job: Job<TrainInput, TrainedModel>,
  modelName?: string,
): Record<string, unknown> {
  const base = `/v1/train/${job.id}`;
  const iso = (t?: number) => (t === undefined ? undefined : new Date(t).toISOString());
  const { tilesDone: _, ...progress } = (job.progress ?? {}) as Progress & Record<string, unknown>;
  return {
    id: job.id,
    kind: "train",
    status: job.status,
    modelName,
    ...progress,
    ...(job.result ?? {}),
    error: job.error,
    createdAt: iso(job.createdAt),
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    links: { self: base, events: `${base}/events` },
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

interface UploadedPair {
  image: MultipartPart;
  masks: MultipartPart;
}

/** Reads the body: uploaded pairs, job ids and raw parameter values. */
async function readTrainRequest(
  req: Request,
  o: TrainRoutesOptions,
  maxImages: number,
): Promise<{ fields: Record<string, unknown>; pairs: UploadedPair[]; jobIds: string[] }> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const fields: Record<string, unknown> = {};
  for (const [k, v] of new URL(req.url).searchParams) fields[k] = v;
  if (type === "application/json") {
    const v = await readJsonObject(req, "body", {
      limit: Math.min(o.maxUploadBytes, 1 << 20),
      pace: o.pace,
    });
    const { jobs, ...rest } = v;
    if (jobs !== undefined && (!Array.isArray(jobs) || jobs.some((j) => typeof j !== "string"))) {
      throw badParameter("jobs", "an array of job ids", jobs);
    }
    return { fields: { ...fields, ...rest }, pairs: [], jobIds: (jobs as string[]) ?? [] };
  }
  if (type !== "multipart/form-data") {
    throw new CellposeError(
      "UNSUPPORTED",
      `content-type ${excerpt(type)} is not accepted; send multipart/form-data with ` +
        '"image" and "masks" parts, or application/json {"jobs": [...]}',
      { field: "content-type", got: excerpt(type) },
    );
  }
  const { parts, received } = await readMultipart(req, {
    limit: o.maxUploadBytes,
    budget: o.uploads,
    pace: o.pace,
    files: ["image", "masks"],
    maxParts: 2 * maxImages + 64,
  });
  try {
    const images: MultipartPart[] = [], masks: MultipartPart[] = [], jobIds: string[] = [];
    for (const part of parts) {
      const k = part.name;
      if (k === "image" || k === "masks") {
        if (part.bytes === undefined) {
          throw badParameter(k, "a file part (a TIFF, PNG or NPY image)", part.text);
        }
        (k === "image" ? images : masks).push(part);
        if (images.length + masks.length > 2 * maxImages) {
          throw new CellposeError(
            "TOO_LARGE",
            `more than ${maxImages} training images; the server takes up to ${maxImages}`,
            { field: k },
          );
        }
      } else if (k === "job") jobIds.push(part.text!);
      else if (k === "params") Object.assign(fields, parseJsonObject(part.text!, "params"));
      else fields[k] = part.text;
    }
    if (images.length !== masks.length) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `${images.length} "image" parts but ${masks.length} "masks" parts: send each image ` +
          "followed by its label image",
        { field: images.length > masks.length ? "masks" : "image" },
      );
    }
    return { fields, pairs: images.map((image, i) => ({ image, masks: masks[i] })), jobIds };
  } finally {
    o.uploads?.give(received); // the decoded images are counted by the queue instead
  }
}

/**
 * Validates the parameters against {@link TRAIN_PARAMS} (unknown names are refused), keyed by
 * their cellpose names.
 */
export function parseTrainParams(
  raw: Record<string, unknown>,
  maxEpochs = 1000,
): Record<string, number | string | undefined> {
  const { token: _, ...params } = raw; // auth, not a parameter
  const byKey = parseParams(TRAIN_PARAMS, params, {
    limits: { n_epochs: maxEpochs },
    what: "training parameter",
  });
  return Object.fromEntries(
    TRAIN_PARAMS.filter((p) => p.key in byKey).map((
      p,
    ) => [p.name, byKey[p.key] as number | string]),
  );
}

/** Decodes an uploaded image and its label image; names the part on failure. */
async function decodePair(
  pair: UploadedPair,
  i: number,
  maxPixels: number,
  decode: ImageDecoder,
): Promise<LabelledImage> {
  const name = pair.image.filename || `image ${i + 1}`;
  const read = async (f: MultipartPart, field: string) => {
    const bytes = f.bytes!;
    if (!bytes.length) throw badParameter(field, "an image file", `${f.filename} (empty)`);
    return await decode(bytes, f.filename || field, maxPixels, field);
  };
  const { image, axes } = await read(pair.image, "image");
  if (axes.zAxis !== undefined) {
    throw new CellposeError("BAD_SHAPE", `${name}: training takes 2-D images, this is a stack`, {
      field: "image",
      got: image.shape,
    });
  }
  const lab = (await read(pair.masks, "masks")).image;
  const shape = lab.shape.filter((d) => d !== 1);
  const spatial = image.shape.length === 2
    ? image.shape
    : image.shape.filter((_, a) =>
      a !== (axes.channelAxis ?? image.shape.indexOf(Math.min(...image.shape)))
    );
  if (shape.length !== 2 || shape[0] !== spatial[0] || shape[1] !== spatial[1]) {
    throw new CellposeError(
      "BAD_SHAPE",
      `masks ${pair.masks.filename} have shape [${lab.shape}], their image ${name} is ` +
        `${spatial[0]} x ${spatial[1]}: send one label image of the same size per image`,
      { field: "masks", got: lab.shape },
    );
  }
  return {
    image,
    channelAxis: axes.channelAxis,
    masks: { data: lab.data, shape },
    name,
  };
}
