/**
 * A cpsam network being trained: its parameters as Float32Arrays in the host, and the training
 * graphs (one per batch size and layer-drop setting, built on first use) that give the loss and
 * the gradients for a batch. {@link lossAndGradients} is the one-call form for scripts.
 *
 * @example
 * ```ts
 * import { initCpsam } from "../models/cpsam_init.ts";
 * import { lossAndGradients } from "./net.ts";
 * const sd = initCpsam({ dim: 32, depth: 1, heads: 2 });
 * const images = { data: new Float32Array(3 * 256 * 256).fill(0.5), shape: [1, 3, 256, 256] };
 * const labels = { data: new Float32Array(3 * 256 * 256), shape: [1, 3, 256, 256] };
 * const { loss, grads } = await lossAndGradients(sd, images, labels, { rdrop: 0 });
 * if (!(loss > 0) || !grads.has("out.bias")) throw new Error("no gradients");
 * ```
 * @module
 */
import { paramSpec, TRAIN_PARAMS } from "../core/params.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { NumpyRandom } from "../core/random.ts";
import { readCheckpointFile, type StateDict } from "../models/checkpoint.ts";
import { type CpsamConfig, cpsamConfig } from "../models/cpsam_config.ts";
import { buildTrainGraph, FROZEN_KEYS, type TrainGraph } from "./cpsam_train_graph.ts";
import { type GraphSession, openGraphSession, type TrainDevice } from "./session.ts";

/** Options of {@link TrainingNet}. */
export interface TrainingNetOptions {
  /** where the graphs run (default `cpu`) */
  device?: TrainDevice;
  /** layer-drop rate (cellpose's `rdrop`, default 0.4; 0 turns it off) */
  rdrop?: number;
  /**
   * train only the last `k` blocks, the neck and the readout (default: everything); the other
   * parameters run forward only
   */
  trainBlocks?: number;
  /** CPU threads for onnxruntime (default: all cores) */
  numThreads?: number;
}

/** Loss of one batch, with its two terms. */
export interface BatchLoss {
  /** `mse / 2 + bce`, cellpose's training loss */
  loss: number;
  /** the flow term, `MSE(y[:, :2], 5 * flows) / 2` */
  mse: number;
  /** the cell probability term, `BCEWithLogits` */
  bce: number;
}

/** Layer-drop mask `[depth, B * tokens, 1]`: block i skipped for a sample with p = linspace(0, rdrop, depth)[i]. */
function dropMask(c: CpsamConfig, batch: number, rdrop: number, rng: NumpyRandom): Float32Array {
  const tokens = c.grid * c.grid;
  const mask = new Float32Array(c.depth * batch * tokens);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < c.depth; i++) {
      const p = c.depth > 1 ? (rdrop * i) / (c.depth - 1) : 0;
      if (rng.random() < p) mask.fill(1, (i * batch + b) * tokens, (i * batch + b + 1) * tokens);
    }
  }
  return mask;
}

/**
 * Estimated peak memory of training steps of `batch` samples: parameters, gradients and AdamW's
 * two moments of the trained parameters, every parameter once more as an input, and the
 * activations kept for the backward pass of the trained blocks (per block about five
 * `heads x tokens^2` attention tensors, five token-width and four MLP-width tensors). Peak RSS
 * measured by `deno task bench train` / estimated, batch 1: tiny 0.4 / 0.7 GB, small (256 wide,
 * 6 deep) 1.2 / 1.8 GB, cpsam 14.4 / 15.8 GB, cpsam with 2 trained blocks 4.3 / 3.0 GB.
 */
export function trainingMemoryBytes(
  c: CpsamConfig,
  batch: number,
  trainedParams: number,
  allParams: number,
  trainedBlocks = c.depth,
): number {
  const N = c.grid * c.grid;
  const perBlock = (5 * c.heads * N * N + 5 * N * c.dim + 4 * N * c.mlpDim) * 4 * batch;
  const frozenForward = (2 * c.heads * N * N + 4 * N * c.mlpDim) * 4 * batch;
  return 4 * (4 * trainedParams + allParams) + trainedBlocks * perBlock + frozenForward +
    512 * 2 ** 20;
}

/** The trainable state of a cpsam network and the graphs that differentiate it. */
export class TrainingNet {
  /** every tensor of the state dict (copies, updated in place by the optimiser) */
  readonly state: StateDict;
  /** names of the parameters that are trained */
  readonly trainable: string[];
  /** the architecture */
  readonly config: CpsamConfig;
  private readonly graphs = new Map<string, Promise<{ tg: TrainGraph; s: GraphSession }>>();
  /** the options, with their defaults */
  private readonly opts:
    & Required<Omit<TrainingNetOptions, "trainBlocks" | "numThreads">>
    & TrainingNetOptions;

  /** Copies the weights of `sd` (a cpsam state dict); throws BAD_PARAMETER for a bad `trainBlocks`. */
  constructor(sd: StateDict, opts: TrainingNetOptions = {}) {
    this.opts = {
      device: "cpu",
      rdrop: paramSpec(TRAIN_PARAMS, "rdrop").default as number,
      ...opts,
    };
    this.state = new Map(
      [...sd].map(([k, t]) => [k, { data: Float32Array.from(t.data), shape: [...t.shape] }]),
    );
    this.config = cpsamConfig(this.state);
    const k = opts.trainBlocks;
    if (k !== undefined && (!Number.isInteger(k) || k < 0 || k > this.config.depth)) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `train_blocks must be an integer from 0 to the model's depth ${this.config.depth}, got ${k}`,
        k,
      );
    }
    const trainable = this.isTrainable();
    this.trainable = [...this.state.keys()].filter((n) => !FROZEN_KEYS.includes(n) && trainable(n));
  }

  /** whether a parameter is trained (train_blocks: the last blocks, the neck, the readout) */
  private isTrainable(): (name: string) => boolean {
    const k = this.opts.trainBlocks;
    if (k === undefined) return () => true;
    return (name: string) => {
      const m = name.match(/^encoder\.blocks\.(\d+)\./);
      if (m) return Number(m[1]) >= this.config.depth - k;
      return name.startsWith("encoder.neck.") || name.startsWith("out.");
    };
  }

  /** the ONNX training graph and its session for a batch size, layer drop on or off, training or evaluation (built once each) */
  private graph(
    batch: number,
    rdrop: boolean,
    train: boolean,
  ): Promise<{ tg: TrainGraph; s: GraphSession }> {
    const key = `${batch}:${rdrop}:${train}`;
    let g = this.graphs.get(key);
    if (!g) {
      g = (async () => {
        const tg = buildTrainGraph(this.state, {
          batch,
          rdrop,
          trainable: train ? this.isTrainable() : () => false,
        });
        const s = await openGraphSession(tg.model, {
          device: this.opts.device,
          numThreads: this.opts.numThreads,
        });
        return { tg, s };
      })();
      this.graphs.set(key, g);
    }
    return g;
  }

  /** runs the graph on one batch */
  private async run(
    images: NdArray<Float32Array>,
    labels: NdArray<Float32Array>,
    train: boolean,
    rng?: NumpyRandom,
  ): Promise<{ out: Record<string, NdArray<Float32Array>>; tg: TrainGraph }> {
    const { bsize } = this.config;
    const B = images.shape[0];
    for (const [what, a] of [["images", images], ["labels", labels]] as const) {
      if (
        a.shape.length !== 4 || a.shape[0] !== B || a.shape[1] !== 3 || a.shape[2] !== bsize ||
        a.shape[3] !== bsize
      ) {
        throw new CellposeError(
          "BAD_SHAPE",
          `${what} must be [${B}, 3, ${bsize}, ${bsize}] (the images' batch), got [${a.shape}]`,
          a.shape,
        );
      }
    }
    const rdrop = train && this.opts.rdrop > 0;
    const { tg, s } = await this.graph(B, rdrop, train);
    const feeds: Record<string, NdArray<Float32Array>> = { images, labels };
    for (const name of tg.parameters) feeds[name] = this.state.get(name)!;
    if (rdrop) {
      const c = this.config;
      feeds.drop = {
        data: dropMask(c, B, this.opts.rdrop, rng ?? new NumpyRandom(0)),
        shape: [c.depth, B * c.grid * c.grid, 1],
      };
    }
    try {
      return { out: await s.run(feeds), tg };
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      if (/alloc|memory/i.test(msg)) {
        throw new CellposeError(
          "TOO_LARGE",
          `not enough memory for a training step of batch ${B} on ${this.opts.device} (${msg}); ` +
            `use --batch_size 1, or train fewer blocks with --train_blocks`,
          B,
          { cause: e },
        );
      }
      throw e;
    }
  }

  /**
   * Loss and gradients of one batch in train mode (layer drop drawn from `rng` when on).
   * Gradients are keyed by parameter name, for {@link trainable} only.
   */
  async lossAndGradients(
    images: NdArray<Float32Array>,
    labels: NdArray<Float32Array>,
    rng?: NumpyRandom,
  ): Promise<BatchLoss & { grads: Map<string, Float32Array> }> {
    const { out, tg } = await this.run(images, labels, true, rng);
    const grads = new Map(tg.trainable.map((n) => [n, out[`grad:${n}`].data]));
    return { loss: out.loss.data[0], mse: out.mse.data[0], bce: out.bce.data[0], grads };
  }

  /** Loss of one batch in evaluation mode (no layer drop, no gradients). */
  async loss(images: NdArray<Float32Array>, labels: NdArray<Float32Array>): Promise<BatchLoss> {
    const { out } = await this.run(images, labels, false);
    return { loss: out.loss.data[0], mse: out.mse.data[0], bce: out.bce.data[0] };
  }

  /** The network output `[B, 3, bsize, bsize]` in evaluation mode. */
  async forward(images: NdArray<Float32Array>): Promise<NdArray<Float32Array>> {
    const labels = { data: new Float32Array(images.data.length), shape: images.shape };
    const { out } = await this.run(images, labels, false);
    return out.flows;
  }

  /** The trainable parameters by name (the live arrays). */
  parameters(): Map<string, Float32Array> {
    return new Map(this.trainable.map((n) => [n, this.state.get(n)!.data]));
  }

  /** {@link trainingMemoryBytes} for this network at `batch` samples per step. */
  memoryBytes(batch: number): number {
    const count = (names: Iterable<string>) => {
      let n = 0;
      for (const k of names) n += this.state.get(k)!.data.length;
      return n;
    };
    return trainingMemoryBytes(
      this.config,
      batch,
      count(this.trainable),
      count(this.state.keys()),
      this.opts.trainBlocks ?? this.config.depth,
    );
  }

  /** Frees the graph sessions. */
  async release(): Promise<void> {
    for (const g of this.graphs.values()) await (await g).s.release();
    this.graphs.clear();
  }
}

/** Options of {@link lossAndGradients}. */
export interface LossAndGradientsOptions {
  /** layer-drop rate (default 0: off, the network as in `net.train()` with `rdrop = 0`) */
  rdrop?: number;
  /** seed of the layer-drop draws (default 0) */
  seed?: number;
  /** where the graph runs (default `cpu`) */
  device?: TrainDevice;
}

/**
 * cellpose's training loss and `d loss / d parameter` for every trainable parameter of a cpsam
 * model (a checkpoint path or a state dict) on one batch: `images` `[B, 3, 256, 256]` and
 * `labels` `[B, 3, 256, 256]` (cellprob, flowY, flowX: cellpose's training batch).
 * `W2`, `diam_labels` and `diam_mean` are not trained.
 */
export async function lossAndGradients(
  model: string | StateDict,
  images: NdArray<Float32Array>,
  labels: NdArray<Float32Array>,
  opts: LossAndGradientsOptions = {},
): Promise<BatchLoss & { grads: Map<string, NdArray<Float32Array>> }> {
  const sd = typeof model === "string" ? await readCheckpointFile(model) : model;
  const net = new TrainingNet(sd, { rdrop: opts.rdrop ?? 0, device: opts.device });
  try {
    const r = await net.lossAndGradients(images, labels, new NumpyRandom(opts.seed ?? 0));
    const grads = new Map(
      [...r.grads].map(([k, g]) => [k, { data: g, shape: [...sd.get(k)!.shape] }]),
    );
    return { loss: r.loss, mse: r.mse, bce: r.bce, grads };
  } finally {
    await net.release();
  }
}
