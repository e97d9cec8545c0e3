/**
 * `cellpose train --dir DIR`: trains (fine-tunes) a cpsam network on labelled images with
 * cellpose v4's `train_seg` recipe and writes it to `<save_path>/models/<model_name_out>`, as
 * cellpose does.
 *
 * @example
 * ```ts
 * import { trainCommand } from "./train.ts";
 * console.log(await trainCommand.run(["--help"])); // 0
 * ```
 * @module
 */
import { resolve } from "node:path";
import { CellposeError } from "../../core/errors.ts";
import { type TrainingPair, trainingPairs } from "../../io/files.ts";
import { initCpsam } from "../../models/cpsam_init.ts";
import { loadTrainingImage, type TrainingImage } from "../../train/dataset.ts";
import { train, type TrainProgress } from "../../train/train.ts";
import { TRAIN_PARAMS } from "../../core/params.ts";
import { formatOptions, optionalTableFlag, parseArgs, tableFlag, type Values } from "../args.ts";
import { type Command, describeError, EXIT } from "../command.ts";

const DATA = "Training data";
const RECIPE = "Recipe (cellpose's train_seg defaults)";
const OUT = "Output";
const MORE = "Beyond cellpose";

const options = {
  dir: {
    kind: "string",
    placeholder: "DIR",
    description: "folder of training images with their labels",
    group: DATA,
  },
  test_dir: {
    kind: "string",
    placeholder: "DIR",
    description: "folder of test images (loss reported at epoch 5 and every 10th)",
    group: DATA,
  },
  mask_filter: {
    kind: "string",
    default: "_masks",
    placeholder: "SUFFIX",
    description: "label files are <name><mask_filter>.tif/.png/.npy",
    group: DATA,
  },
  img_filter: {
    kind: "string",
    default: "",
    placeholder: "SUFFIX",
    description: "only images whose name ends with this (dropped from the label name)",
    group: DATA,
  },
  look_one_level_down: {
    kind: "boolean",
    description: "also take images from the sub-folders of --dir",
    group: DATA,
  },
  channel_axis: {
    kind: "integer",
    min: 0,
    placeholder: "AXIS",
    description: "channel axis of the images (default: from the file, else the smallest dimension)",
    group: DATA,
  },
  pretrained_model: {
    kind: "string",
    default: "cpsam",
    placeholder: "MODEL",
    description: "the network to start from: a cpsam checkpoint path or a model name",
    group: RECIPE,
  },
  n_epochs: tableFlag(TRAIN_PARAMS, "n_epochs", "integer", { group: RECIPE }),
  learning_rate: tableFlag(TRAIN_PARAMS, "learning_rate", "number", {
    placeholder: "LR",
    group: RECIPE,
  }),
  weight_decay: tableFlag(TRAIN_PARAMS, "weight_decay", "number", { group: RECIPE }),
  batch_size: tableFlag(TRAIN_PARAMS, "batch_size", "integer", { group: RECIPE }),
  nimg_per_epoch: optionalTableFlag(TRAIN_PARAMS, "nimg_per_epoch", "integer", { group: RECIPE }),
  nimg_test_per_epoch: {
    kind: "integer",
    min: 1,
    description: "test images per evaluation (default: all)",
    group: RECIPE,
  },
  min_train_masks: tableFlag(TRAIN_PARAMS, "min_train_masks", "integer", { group: RECIPE }),
  rdrop: tableFlag(TRAIN_PARAMS, "rdrop", "number", { group: RECIPE }),
  scale_range: tableFlag(TRAIN_PARAMS, "scale_range", "number", { group: RECIPE }),
  save_path: {
    kind: "string",
    placeholder: "DIR",
    description: "the model goes to <save_path>/models/ (default: --dir)",
    group: OUT,
  },
  model_name_out: {
    kind: "string",
    placeholder: "NAME",
    description: "file name of the model (default cellpose_<time>)",
    group: OUT,
  },
  save_every: {
    kind: "integer",
    default: 100,
    min: 1,
    description: "save the model (and a resume checkpoint) every N epochs",
    group: OUT,
  },
  save_each: {
    kind: "boolean",
    description: "keep each periodic save as <name>_epoch_NNNN",
    group: OUT,
  },
  fp16: {
    kind: "boolean",
    description: "store the saved model in float16 (half the size)",
    group: OUT,
  },
  json: { kind: "boolean", description: "print one JSON object per epoch on stdout", group: OUT },
  train_blocks: optionalTableFlag(TRAIN_PARAMS, "train_blocks", "integer", {
    placeholder: "K",
    group: MORE,
  }),
  resume: {
    kind: "boolean",
    description:
      "continue an interrupted run from <model>.resume.* (same options; n_epochs may grow while the learning rates of the epochs done stay the same)",
    group: MORE,
  },
  device: {
    kind: "string",
    default: "cpu",
    choices: ["cpu", "webgpu"],
    description: "where the training graph runs",
    group: MORE,
  },
  from_scratch: {
    kind: "numbers",
    count: 3,
    placeholder: "DIM,DEPTH,HEADS",
    description:
      "start from a fresh cpsam-shaped network of this size instead of --pretrained_model",
    group: MORE,
  },
  seed: {
    kind: "integer",
    default: 0,
    min: 0,
    description: "seed of the --from_scratch initialisation",
    group: MORE,
  },
  scale_log: {
    kind: "numbers",
    count: 2,
    placeholder: "LO,HI",
    description: "draw scales log-uniformly from [LO, HI] instead of --scale_range",
    group: MORE,
  },
  rescale: {
    kind: "boolean",
    description: "first resize each image so its cells are the model's diam_mean (30 px)",
    group: MORE,
  },
  gray_one_channel: {
    kind: "number",
    min: 0,
    placeholder: "P",
    description: "with probability P keep one channel of a grayscale image stored as RGB",
    group: MORE,
  },
  channel_shuffle: {
    kind: "boolean",
    description: "permute the input channels at random",
    group: MORE,
  },
  aug_intensity: {
    kind: "number",
    min: 0,
    placeholder: "J",
    description: "random gain in [1/(1+J), 1+J] and offset in [-J/2, J/2]",
    group: MORE,
  },
  aug_blur: {
    kind: "number",
    min: 0,
    placeholder: "SIGMA",
    description: "Gaussian blur up to SIGMA px on half of the crops",
    group: MORE,
  },
  aug_noise: {
    kind: "number",
    min: 0,
    placeholder: "SIGMA",
    description: "Gaussian noise up to SIGMA on half of the crops",
    group: MORE,
  },
} as const;

const help = `cellpose train: teach a network your cells from labelled images (fine-tuning).

Usage: deno task cellpose train --dir DIR [--test_dir DIR] [--pretrained_model cpsam] [options]

--dir holds images and their label images <name>_masks.tif (0 = background, 1..N = cells),
for instance masks you corrected after \`cellpose segment\`. The recipe is cellpose v4's
train_seg: flows from the labels, 1/99 percentile normalisation, random flips, rotations,
scales and crops of 256 x 256, AdamW with weight decay 0.1, 10 warm-up epochs, layer drop,
cellpose's loss. The model is written as cellpose writes it (a PyTorch state dict that cellpose,
PyTorch and this project load): use it with \`cellpose segment --pretrained_model <path>\`.
Ctrl+C saves a resume checkpoint; run the same command with --resume to continue.

Examples:
  deno task cellpose train --dir corrected/ --n_epochs 100 --model_name_out my_cells
  deno task cellpose train --dir corrected/ --test_dir held_out/ --train_blocks 2
  deno task cellpose segment new/ --pretrained_model corrected/models/my_cells

${
  formatOptions(options)
}Exit codes: 0 trained and saved, 1 training failed, 2 wrong command line or data, 3 model
missing or not a cpsam model, 130 interrupted (resume checkpoint saved).`;

type V = Values<typeof options>;

async function load(dir: string, v: V, what: string): Promise<TrainingImage[]> {
  let pairs: TrainingPair[];
  try {
    pairs = await trainingPairs(dir, {
      maskFilter: v.mask_filter,
      imgFilter: v.img_filter,
      lookOneLevelDown: v.look_one_level_down,
    });
  } catch (e) {
    if (e instanceof CellposeError) {
      throw new CellposeError("BAD_PARAMETER", `${what}: ${e.message}`, e.value, { cause: e });
    }
    throw e;
  }
  const out: TrainingImage[] = [];
  for (const p of pairs) {
    try {
      out.push(await loadTrainingImage(p, { channelAxis: v.channel_axis }));
    } catch (e) {
      throw new CellposeError("BAD_PARAMETER", `${what}: ${describeError(e)}`, p.image, {
        cause: e,
      });
    }
  }
  return out;
}

const clock = (s: number) => {
  if (!Number.isFinite(s)) return "?";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = Math.floor(s % 60);
  return h
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m
    ? `${m}m${String(r).padStart(2, "0")}s`
    : `${r}s`;
};

function reporter(json: boolean) {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  const err = (s: string) => Deno.stderr.writeSync(enc.encode(s));
  let epochStart = performance.now();
  return (p: TrainProgress) => {
    if (p.stage === "step") {
      if (tty) {
        err(
          `\r\x1b[Kepoch ${p.epoch + 1}/${p.nEpochs}  batch ${p.step}/${p.steps}  loss ${
            p.loss.toFixed(4)
          }  ETA ${clock(p.eta)}`,
        );
      }
      return;
    }
    if (p.stage === "save") {
      if (!json) err(`${tty ? "\r\x1b[K" : ""}saved ${p.path}\n`);
      return;
    }
    const secs = (performance.now() - epochStart) / 1000;
    epochStart = performance.now();
    const test = p.testLoss !== undefined ? `  test loss ${p.testLoss.toFixed(4)}` : "";
    if (json) {
      console.log(JSON.stringify({
        epoch: p.epoch,
        loss: p.loss,
        testLoss: p.testLoss ?? null,
        lr: p.lr,
        seconds: secs,
        eta: p.eta,
      }));
    } else {
      err(
        `${tty ? "\r\x1b[K" : ""}epoch ${p.epoch + 1}/${p.nEpochs}  loss ${
          p.loss.toFixed(4)
        }${test}  ` +
          `lr ${p.lr.toExponential(2)}  ${secs.toFixed(1)} s/epoch  ETA ${clock(p.eta)}\n`,
      );
    }
  };
}

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals, help: wantHelp } = parseArgs(argv, options);
  if (wantHelp) {
    console.log(help);
    return EXIT.ok;
  }
  if (positionals.length) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `train takes no positional arguments (got ${positionals[0]}); give the folder with --dir`,
      positionals,
    );
  }
  if (!v.dir) {
    throw new CellposeError(
      "BAD_PARAMETER",
      "train needs --dir DIR: the labelled training images",
      "dir",
    );
  }
  const trainSet = await load(v.dir, v, "--dir");
  const testSet = v.test_dir ? await load(v.test_dir, v, "--test_dir") : undefined;
  const model = v.from_scratch
    ? initCpsam({
      dim: v.from_scratch[0],
      depth: v.from_scratch[1],
      heads: v.from_scratch[2],
      seed: v.seed,
    })
    : v.pretrained_model;
  const abort = new AbortController();
  const onSignal = () => {
    console.error("\ninterrupted: saving a resume checkpoint after this batch ...");
    abort.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  const extra = {
    grayOneChannel: v.gray_one_channel,
    channelShuffle: v.channel_shuffle,
    intensity: v.aug_intensity,
    blur: v.aug_blur,
    noise: v.aug_noise,
  };
  try {
    const r = await train({
      model,
      train: trainSet,
      test: testSet,
      nEpochs: v.n_epochs,
      learningRate: v.learning_rate,
      weightDecay: v.weight_decay,
      batchSize: v.batch_size,
      nimgPerEpoch: v.nimg_per_epoch,
      nimgTestPerEpoch: v.nimg_test_per_epoch,
      minTrainMasks: v.min_train_masks,
      rdrop: v.rdrop,
      scaleRange: v.scale_range,
      scaleLog: v.scale_log as [number, number] | undefined,
      rescale: v.rescale,
      augment: Object.values(extra).some(Boolean) ? extra : undefined,
      savePath: resolve(v.save_path ?? v.dir),
      modelName: v.model_name_out,
      saveEvery: v.save_every,
      saveEach: v.save_each,
      precision: v.fp16 ? "fp16" : "fp32",
      trainBlocks: v.train_blocks,
      resume: v.resume,
      device: v.device,
      signal: abort.signal,
      onProgress: reporter(v.json),
    });
    if (r.removed.length) {
      console.error(
        `note: ${r.removed.length} image(s) with fewer than ${v.min_train_masks} masks left out: ` +
          r.removed.slice(0, 5).join(", "),
      );
    }
    if (v.json) {
      console.log(
        JSON.stringify({
          path: r.path,
          diamLabels: r.diamLabels,
          seconds: r.seconds,
          trainLosses: r.trainLosses,
          testLosses: r.testLosses,
        }),
      );
    } else console.error(`model written to ${r.path} (${r.nTrain} images, ${clock(r.seconds)})`);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CellposeError && e.code === "CANCELLED") {
      console.error(e.message);
      return 130;
    }
    throw e;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

/** The `train` command. */
export const trainCommand: Command = { name: "train", help, run };
