/**
 * cellpose v4's `train_seg` for cpsam networks: every epoch `np.random.seed(epoch)`, the image
 * order (a permutation, or `nimg_per_epoch` draws), batches augmented by
 * `random_rotate_and_resize`, one AdamW step per batch on cellpose's loss with layer drop, the
 * learning rate from cellpose's schedule; the test loss (no layer drop, `np.random.seed(42)`) at
 * epoch 5 and every 10th; the model saved as cellpose saves it (`<save_path>/models/<name>`,
 * every `save_every` epochs and at the end, `diam_labels` set to the mean training diameter).
 *
 * Beyond cellpose: a resume checkpoint (`<model>.resume.pt` with the parameters and AdamW's
 * moments, `<model>.resume.json` with the position and the losses) is written with every save
 * and when `signal` aborts, and {@link train} continues from it exactly (`resume: true`);
 * `trainBlocks` trains only the last blocks; extra augmentations for training from scratch.
 *
 * @example
 * ```ts
 * import { initCpsam } from "../models/cpsam_init.ts";
 * import { train } from "./train.ts";
 * const H = 64, labels = new Uint16Array(H * H);
 * for (let i = 0; i < H * H; i++) labels[i] = ((i % H) >> 4) + 4 * ((i / H) >> 4) + 1;
 * const image = { data: Float32Array.from(labels, (v) => v % 3), shape: [H, H] };
 * const dir = await Deno.makeTempDir();
 * const r = await train({
 *   model: initCpsam({ dim: 16, depth: 1, heads: 1 }),
 *   train: [{ image, masks: { data: labels, shape: [H, H] }, name: "grid" }],
 *   nEpochs: 2,
 *   savePath: dir,
 *   modelName: "tiny",
 * });
 * if (r.trainLosses.length !== 2 || !r.path.endsWith("models/tiny")) throw new Error("?");
 * ```
 * @module
 */
import { checkParam, paramSpec, TRAIN_PARAMS } from "../core/params.ts";
import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { NumpyRandom } from "../core/random.ts";
import type { NormalizeOptions } from "../core/types.ts";
import { readCheckpointFile, type StateDict } from "../models/checkpoint.ts";
import { writeCheckpoint } from "../models/checkpoint_write.ts";
import { resolveModel } from "../models/store.ts";
import { AdamW } from "./adamw.ts";
import { randomRotateAndResize } from "./augment.ts";
import { labelsToFlows, reshapeNorm, type TrainingImage } from "./dataset.ts";
import { extraAugment, type ExtraAugmentOptions } from "./extra_augment.ts";
import { TrainingNet } from "./net.ts";
import { learningRates } from "./schedule.ts";
import type { TrainDevice } from "./session.ts";

/** An image with its label image, as arrays (for scripts; files go through `loadTrainingImage`). */
export interface LabelledImage {
  /** `[H, W]` or with channels (see `channelAxis`) */
  image: NdArray<NumericArray>;
  /** `[H, W]` label image, 0 = background */
  masks: NdArray;
  /** name for messages */
  name?: string;
  /** channel axis of `image` (default: the smallest dimension, as cellpose guesses) */
  channelAxis?: number;
}

/** Options of {@link train}; defaults are cellpose v4's `train_seg`. */
export interface TrainOptions {
  /** the network to start from: a cpsam checkpoint path or model name, or a state dict */
  model: string | StateDict;
  /** training images: prepared ({@link TrainingImage}) or arrays ({@link LabelledImage}) */
  train: (TrainingImage | LabelledImage)[];
  /** test images, whose loss is reported at epoch 5 and every 10th */
  test?: (TrainingImage | LabelledImage)[];
  /** [100] */
  nEpochs?: number;
  /** [1e-5] peak learning rate of the schedule */
  learningRate?: number;
  /** [0.1] AdamW's decoupled weight decay */
  weightDecay?: number;
  /** [1] images per step */
  batchSize?: number;
  /** [number of images] images per epoch (drawn with replacement when different) */
  nimgPerEpoch?: number;
  /** [number of test images] test images per evaluation */
  nimgTestPerEpoch?: number;
  /** [5] images with fewer masks are left out */
  minTrainMasks?: number;
  /** [100] save the model every this many epochs (and at the end) */
  saveEvery?: number;
  /** [false] keep each periodic save as `<name>_epoch_NNNN` */
  saveEach?: boolean;
  /** [current folder] the model goes to `<savePath>/models/<modelName>` */
  savePath?: string;
  /** [`cellpose_<unix time>`] */
  modelName?: string;
  /** [0.4] layer drop (0: off) */
  rdrop?: number;
  /** train only the last k blocks, the neck and the readout */
  trainBlocks?: number;
  /** [0.5] cellpose's `scale_range` */
  scaleRange?: number;
  /** [false] resize images to the model's `diam_mean` by their diameter first (cellpose's `rescale`) */
  rescale?: boolean;
  /** draw scales log-uniformly from this range instead of `scaleRange` */
  scaleLog?: [number, number];
  /** extra augmentations (off by default) */
  augment?: ExtraAugmentOptions;
  /** [`cpu`] where the training graph runs */
  device?: TrainDevice;
  /** onnxruntime CPU threads (default: all cores) */
  numThreads?: number;
  /** [fp32] storage of the saved model */
  precision?: "fp32" | "fp16";
  /** continue from `<model path>.resume.*` when it exists (the same options; `nEpochs` may differ
   * when the epochs already trained keep their learning rates, e.g. extending a run past 99) */
  resume?: boolean;
  /** aborting saves a resume checkpoint, then `train` throws `CANCELLED` */
  signal?: AbortSignal;
  /** called after every step and epoch */
  onProgress?: (p: TrainProgress) => void;
  /** normalisation of the images (cellpose's `normalize`; default 1/99 percentiles) */
  normalize?: NormalizeOptions;
}

/** Progress of {@link train}. */
export interface TrainProgress {
  /** `step` after each batch, `epoch` after each epoch, `save` after writing the model */
  stage: "step" | "epoch" | "save";
  /** 0-based epoch */
  epoch: number;
  /** epochs in all */
  nEpochs: number;
  /** batches done in this epoch */
  step: number;
  /** batches per epoch */
  steps: number;
  /** loss of the last batch (`step`), or the epoch's mean training loss (`epoch`) */
  loss: number;
  /** the test loss of this epoch, when computed */
  testLoss?: number;
  /** learning rate of this epoch */
  lr: number;
  /** seconds since the start (of this run, when resumed) */
  elapsed: number;
  /** estimated seconds left */
  eta: number;
  /** where the model was written (`save`) */
  path?: string;
}

/** What {@link train} returns. */
export interface TrainResult {
  /** the saved model file */
  path: string;
  /** the trained state dict (every key of the input, `diam_labels` updated) */
  model: StateDict;
  /** mean training loss per epoch */
  trainLosses: number[];
  /** test loss per epoch (`null` where not computed) */
  testLosses: (number | null)[];
  /** mean training diameter (floor 5), stored as `diam_labels` */
  diamLabels: number;
  /** images trained on (after `minTrainMasks`) */
  nTrain: number;
  /** names of images left out for too few masks */
  removed: string[];
  /** seconds of this run */
  seconds: number;
}

interface ResumeState {
  version: 1;
  epoch: number;
  batch: number;
  adamStep: number;
  trainLosses: number[];
  testLosses: (number | null)[];
  fingerprint: Record<string, unknown>;
}

function prepare(
  x: TrainingImage | LabelledImage,
  i: number,
  normalize?: NormalizeOptions,
): TrainingImage {
  if ("labels" in x) return x;
  const image = reshapeNorm(x.image, x.channelAxis, normalize);
  const name = x.name ?? `image ${i}`;
  const [, H, W] = image.shape;
  if (x.masks.shape.length !== 2 || x.masks.shape[0] !== H || x.masks.shape[1] !== W) {
    throw new CellposeError(
      "BAD_SHAPE",
      `${name}: labels [${x.masks.shape}] do not match the image's ${H} x ${W}`,
      x.masks.shape,
    );
  }
  return { image, ...labelsToFlows(x.masks), name };
}

const positiveInt = (name: string, v: number) => {
  if (!Number.isInteger(v) || v < 1) {
    throw new CellposeError("BAD_PARAMETER", `${name} must be a positive integer, got ${v}`, v);
  }
};

/** Seed of the per-batch generators (layer drop, extra augmentations). */
const batchSeed = (epoch: number, k: number, salt: number) =>
  (Math.imul(epoch + 1, 0x9e3779b1) ^ Math.imul(k + 1, 0x85ebca77) ^ salt) >>> 0;

async function loadModelState(model: string | StateDict): Promise<StateDict> {
  if (typeof model !== "string") return model;
  const r = await resolveModel(model);
  if (r.kind !== "checkpoint") {
    throw new CellposeError(
      "BAD_MODEL",
      `${model} is an ONNX network; training needs the cellpose checkpoint it was made from`,
      model,
    );
  }
  try {
    return await readCheckpointFile(r.path);
  } catch (e) {
    if (e instanceof CellposeError && e.code !== "BAD_MODEL") {
      throw new CellposeError("BAD_MODEL", `cannot read the model ${model}: ${e.message}`, model, {
        cause: e,
      });
    }
    throw e;
  }
}

/** A recipe default of the parameter table. */
const trainDefault = (key: string) => paramSpec(TRAIN_PARAMS, key).default as number;

/**
 * Trains a cpsam network with cellpose v4's recipe (see the module doc) and saves it. Throws
 * `BAD_PARAMETER` for options out of range or too few usable images, `BAD_MODEL` for a
 * checkpoint that is not cpsam, `CANCELLED` when `signal` aborts (after saving a resume
 * checkpoint).
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const nEpochs = opts.nEpochs ?? trainDefault("nEpochs");
  const lr0 = opts.learningRate ?? trainDefault("learningRate");
  const batchSize = opts.batchSize ?? trainDefault("batchSize");
  const saveEvery = opts.saveEvery ?? 100;
  const minTrainMasks = opts.minTrainMasks ?? trainDefault("minTrainMasks");
  positiveInt("n_epochs", nEpochs);
  positiveInt("batch_size", batchSize);
  positiveInt("save_every", saveEvery);
  if (!Number.isInteger(minTrainMasks) || minTrainMasks < 0) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `min_train_masks must be an integer >= 0, got ${minTrainMasks}`,
      minTrainMasks,
    );
  }
  // the table's ranges of every recipe parameter given
  for (const spec of TRAIN_PARAMS) {
    const v = (opts as unknown as Record<string, unknown>)[spec.key];
    if (v !== undefined && spec.type !== "string") checkParam(spec, v, spec.name);
  }
  const LR = learningRates(lr0, nEpochs);
  const sd = await loadModelState(opts.model);

  let all = opts.train.map((x, i) => prepare(x, i, opts.normalize));
  const removed = all.filter((t) => t.nMasks < minTrainMasks).map((t) => t.name);
  all = all.filter((t) => t.nMasks >= minTrainMasks);
  if (!all.length) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `no training image has at least min_train_masks = ${minTrainMasks} masks ` +
        `(${removed.length} left out: ${removed.slice(0, 3).join(", ")}${
          removed.length > 3 ? ", ..." : ""
        }); ` +
        `lower --min_train_masks or add labelled images`,
      minTrainMasks,
    );
  }
  const test = (opts.test ?? []).map((x, i) => prepare(x, i, opts.normalize));
  const nimg = all.length;
  const nimgPerEpoch = opts.nimgPerEpoch ?? nimg;
  const nimgTest = test.length;
  const nimgTestPerEpoch = opts.nimgTestPerEpoch ?? nimgTest;
  positiveInt("nimg_per_epoch", nimgPerEpoch);
  const diamTrain = all.map((t) => Math.max(5, t.diameter));
  const diamTest = test.map((t) => Math.max(5, t.diameter));
  const diamLabels = diamTrain.reduce((a, b) => a + b, 0) / nimg;

  const net = new TrainingNet(sd, {
    device: opts.device,
    rdrop: opts.rdrop ?? trainDefault("rdrop"),
    trainBlocks: opts.trainBlocks,
    numThreads: opts.numThreads,
  });
  const need = net.memoryBytes(batchSize);
  const available = Deno.systemMemoryInfo().available;
  if (need > available) {
    await net.release();
    const gb = (b: number) => (b / 2 ** 30).toFixed(1);
    throw new CellposeError(
      "TOO_LARGE",
      `training this model at batch ${batchSize} needs about ${gb(need)} GB of memory, ` +
        `${gb(available)} GB are available: use --batch_size 1, or train only the last blocks ` +
        `with --train_blocks (e.g. 2)`,
      need,
    );
  }
  const diamMean = sd.get("diam_mean")?.data[0] ?? 30;
  const modelName = opts.modelName ?? `cellpose_${Date.now() / 1000}`;
  const modelsDir = join(opts.savePath ?? Deno.cwd(), "models");
  await Deno.mkdir(modelsDir, { recursive: true });
  const path = join(modelsDir, modelName);
  const opt = new AdamW(net.parameters(), {
    weightDecay: opts.weightDecay ?? trainDefault("weightDecay"),
  });

  const fingerprint = {
    nEpochs,
    learningRate: lr0,
    weightDecay: opts.weightDecay ?? trainDefault("weightDecay"),
    batchSize,
    nimgPerEpoch,
    rdrop: opts.rdrop ?? trainDefault("rdrop"),
    trainBlocks: opts.trainBlocks ?? null,
    images: all.map((t) => t.name),
  };
  const trainLosses = new Array<number>(nEpochs).fill(0);
  const testLosses = new Array<number | null>(nEpochs).fill(null);
  let startEpoch = 0, startBatch = 0;
  if (opts.resume) {
    const state = await readResume(path, fingerprint, LR);
    if (state) {
      const saved = await readCheckpointFile(`${path}.resume.pt`);
      for (const [k, t] of net.state) {
        const v = saved.get(k);
        if (!v || v.data.length !== t.data.length) {
          throw new CellposeError("BAD_MODEL", `${path}.resume.pt lacks ${k} of this model`, k);
        }
        t.data.set(v.data);
      }
      for (const k of net.trainable) {
        opt.state.m.get(k)!.set(saved.get(`adamw.m.${k}`)!.data);
        opt.state.v.get(k)!.set(saved.get(`adamw.v.${k}`)!.data);
      }
      opt.state.step = state.adamStep;
      startEpoch = state.epoch;
      startBatch = state.batch;
      state.trainLosses.slice(0, nEpochs).forEach((v, i) => trainLosses[i] = v);
      state.testLosses.slice(0, nEpochs).forEach((v, i) => testLosses[i] = v);
    }
  }

  const model = (): StateDict => {
    const out: StateDict = new Map();
    for (const [k, t] of net.state) out.set(k, t);
    out.set("diam_labels", { data: new Float32Array([diamLabels]), shape: [1] });
    return out;
  };
  const writeResume = async (epoch: number, batch: number) => {
    const ck: StateDict = new Map(net.state);
    for (const k of net.trainable) {
      ck.set(`adamw.m.${k}`, { data: opt.state.m.get(k)!, shape: net.state.get(k)!.shape });
      ck.set(`adamw.v.${k}`, { data: opt.state.v.get(k)!, shape: net.state.get(k)!.shape });
    }
    await writeCheckpoint(ck, `${path}.resume.pt`);
    const state: ResumeState = {
      version: 1,
      epoch,
      batch,
      adamStep: opt.state.step,
      trainLosses,
      testLosses,
      fingerprint,
    };
    await Deno.writeTextFile(`${path}.resume.json.part`, JSON.stringify(state));
    await Deno.rename(`${path}.resume.json.part`, `${path}.resume.json`);
  };

  const rsc = (d: number[], inds: number[]) =>
    opts.rescale ? inds.map((i) => d[i] / diamMean) : undefined;
  const batchOf = (set: TrainingImage[], inds: number[], rng: NumpyRandom, diams: number[]) =>
    randomRotateAndResize(
      inds.map((i) => set[i].image),
      inds.map((i) => set[i].labels),
      rng,
      {
        scaleRange: opts.scaleRange ?? 0.5,
        xy: [net.config.bsize, net.config.bsize],
        rescale: rsc(diams, inds),
        scaleLog: opts.scaleLog,
      },
    );

  const steps = Math.ceil(nimgPerEpoch / batchSize);
  let stepsDone = 0;
  const tRun = performance.now();
  try {
    for (let epoch = startEpoch; epoch < nEpochs; epoch++) {
      const rng = new NumpyRandom(epoch);
      const order = nimg !== nimgPerEpoch
        ? rng.choice(new Array(nimg).fill(1 / nimg), nimgPerEpoch)
        : rng.permutation(nimg);
      const lr = LR[epoch];
      const first = epoch === startEpoch ? startBatch : 0;
      // replay the augmentation draws of batches done before a resume (5 per image)
      for (let k = 0; k < first * batchSize && k < nimgPerEpoch; k++) {
        for (let d = 0; d < 5; d++) rng.random();
      }
      if (first === 0) trainLosses[epoch] = 0;
      for (let b = first; b < steps; b++) {
        if (opts.signal?.aborted) {
          await writeResume(epoch, b);
          throw new CellposeError(
            "CANCELLED",
            `training cancelled at epoch ${epoch}, batch ${b}; resume with the same command and --resume (${path}.resume.json)`,
            epoch,
            { cause: opts.signal.reason },
          );
        }
        const inds = order.slice(b * batchSize, Math.min((b + 1) * batchSize, nimgPerEpoch));
        const batch = batchOf(all, inds, rng, diamTrain);
        if (opts.augment) {
          extraAugment(batch.images, new NumpyRandom(batchSeed(epoch, b, 0xa5)), opts.augment);
        }
        const r = await net.lossAndGradients(
          batch.images,
          batch.labels,
          new NumpyRandom(batchSeed(epoch, b, 0x5d)),
        );
        if (!Number.isFinite(r.loss)) {
          throw new CellposeError(
            "BAD_VALUE",
            `the training loss became ${r.loss} at epoch ${epoch}, batch ${b}: lower --learning_rate`,
            r.loss,
          );
        }
        opt.step(r.grads, lr);
        trainLosses[epoch] += r.loss * inds.length;
        stepsDone++;
        const elapsed = (performance.now() - tRun) / 1000;
        const left = (nEpochs - epoch) * steps - b - 1;
        opts.onProgress?.({
          stage: "step",
          epoch,
          nEpochs,
          step: b + 1,
          steps,
          loss: r.loss,
          lr,
          elapsed,
          eta: (elapsed / stepsDone) * left,
        });
      }
      trainLosses[epoch] /= nimgPerEpoch;

      if ((epoch === 5 || epoch % 10 === 0) && nimgTest > 0) {
        const trng = new NumpyRandom(42);
        const torder = nimgTest !== nimgTestPerEpoch
          ? trng.choice(new Array(nimgTest).fill(1 / nimgTest), nimgTestPerEpoch)
          : trng.permutation(nimgTest);
        let sum = 0;
        for (let k = 0; k < torder.length; k += batchSize) {
          const inds = torder.slice(k, k + batchSize);
          const batch = batchOf(test, inds, trng, diamTest);
          sum += (await net.loss(batch.images, batch.labels)).loss * inds.length;
        }
        testLosses[epoch] = sum / torder.length;
      }
      const elapsed = (performance.now() - tRun) / 1000;
      opts.onProgress?.({
        stage: "epoch",
        epoch,
        nEpochs,
        step: steps,
        steps,
        loss: trainLosses[epoch],
        testLoss: testLosses[epoch] ?? undefined,
        lr,
        elapsed,
        eta: (elapsed / Math.max(1, stepsDone)) * (nEpochs - epoch - 1) * steps,
      });
      const last = epoch === nEpochs - 1;
      if (last || (epoch % saveEvery === 0 && epoch !== 0)) {
        const file = opts.saveEach && !last
          ? `${path}_epoch_${String(epoch).padStart(4, "0")}`
          : path;
        await writeCheckpoint(model(), file, { precision: opts.precision });
        if (!last) await writeResume(epoch + 1, 0);
        opts.onProgress?.({
          stage: "save",
          epoch,
          nEpochs,
          step: steps,
          steps,
          loss: trainLosses[epoch],
          lr,
          elapsed,
          eta: 0,
          path: file,
        });
      }
    }
  } finally {
    await net.release();
  }
  for (const ext of [".resume.pt", ".resume.json"]) await Deno.remove(path + ext).catch(() => {});
  return {
    path,
    model: model(),
    trainLosses,
    testLosses,
    diamLabels,
    nTrain: nimg,
    removed,
    seconds: (performance.now() - t0) / 1000,
  };
}

async function readResume(
  path: string,
  fingerprint: Record<string, unknown> & { nEpochs: number; learningRate: number },
  LR: number[],
): Promise<ResumeState | undefined> {
  let state: ResumeState;
  try {
    state = JSON.parse(await Deno.readTextFile(`${path}.resume.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new CellposeError(
      "BAD_FILE",
      `${path}.resume.json is unreadable: ${(e as Error).message}`,
      path,
    );
  }
  // n_epochs may change (extending a run, or ending it sooner) as long as the epochs already
  // trained had the learning rates the new schedule gives them: the result is then exactly
  // the uninterrupted run with the new n_epochs
  const differ = Object.keys(fingerprint).filter((k) =>
    k !== "nEpochs" && JSON.stringify(fingerprint[k]) !== JSON.stringify(state.fingerprint?.[k])
  );
  const was = Number(state.fingerprint?.nEpochs);
  const done = state.epoch + (state.batch > 0 ? 1 : 0);
  if (!differ.length && was !== fingerprint.nEpochs) {
    const before = Number.isInteger(was) && was > 0
      ? learningRates(fingerprint.learningRate, was).slice(0, done)
      : [];
    if (
      done > fingerprint.nEpochs || JSON.stringify(before) !== JSON.stringify(LR.slice(0, done))
    ) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `cannot resume ${path} with n_epochs ${fingerprint.nEpochs}: ` +
          (done > fingerprint.nEpochs
            ? `${done} epochs are already trained`
            : `its ${done} epochs done (of ${was}) had other learning rates than that schedule gives them`),
        fingerprint.nEpochs,
      );
    }
  }
  if (differ.length) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `cannot resume ${path}: the checkpoint was made with other ${differ.join(", ")}; ` +
        `run with the same options, or without --resume to start over`,
      differ,
    );
  }
  return state;
}
