/**
 * The training graph of cpsam (cellpose v4's `vit_sam.Transformer`): the forward pass in train
 * mode from raw, unfolded parameters (the relative-position tables resized inside the graph, the
 * attention scale applied to `q`, `W2`'s transposed convolution applied as is), cellpose's loss
 * (`_loss_fn_seg`) and the backward pass from {@link Graph}, returning the loss and the gradient
 * of every trainable parameter. Parameters are graph inputs, so one graph serves every step.
 *
 * Layout: tokens are rows `(b, y, x)` with channels last, as SAM's encoder keeps them; the patch
 * embedding and the neck's 3x3 convolution are matrix products over gathered patches.
 *
 * Inputs: `images` `[B, 3, bsize, bsize]`, `labels` `[B, 3, bsize, bsize]` (cellprob, flowY,
 * flowX, as cellpose's training batch), `drop` `[depth, B * tokens, 1]` when layer drop is on
 * (1 where block i is skipped for that sample, as cellpose's `rdrop` mask), and one input per
 * parameter under its state-dict name (`W2` included, not trained). Outputs: `loss`, `mse`
 * (the flow term, already halved), `bce`, `flows` (the network output) and `grad:<name>` for
 * each trainable parameter.
 *
 * @example
 * ```ts
 * import { initCpsam } from "../models/cpsam_init.ts";
 * import { buildTrainGraph } from "./cpsam_train_graph.ts";
 * const sd = initCpsam({ dim: 32, depth: 2, heads: 2 });
 * const tg = buildTrainGraph(sd, { batch: 1, rdrop: true });
 * if (!tg.trainable.includes("encoder.blocks.1.attn.qkv.weight")) throw new Error("missing");
 * if (tg.trainable.includes("W2")) throw new Error("W2 is not trained");
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { StateDict } from "../models/checkpoint.ts";
import { type CpsamConfig, cpsamConfig } from "../models/cpsam_config.ts";
import { relPosGather } from "../models/cpsam_fold.ts";
import { Graph, type Value } from "./autodiff.ts";

/** State-dict keys cellpose does not train. */
export const FROZEN_KEYS: readonly string[] = ["W2", "diam_labels", "diam_mean"];

const LN_EPS = 1e-6;

/** Options of {@link buildTrainGraph}. */
export interface TrainGraphOptions {
  /** samples per step */
  batch: number;
  /** layer drop in the graph (the `drop` input); off for evaluation and parity checks */
  rdrop: boolean;
  /**
   * which parameters get gradients (default: every key but {@link FROZEN_KEYS}); the others are
   * inputs that only run forward
   */
  trainable?: (name: string) => boolean;
}

/** A built training graph. */
export interface TrainGraph {
  /** ONNX model bytes */
  model: Uint8Array;
  /** the architecture */
  config: CpsamConfig;
  /** trainable parameter names, in state-dict order (outputs `grad:<name>`) */
  trainable: string[];
  /** every parameter input, in state-dict order (trainable and frozen) */
  parameters: string[];
  /** batch size the graph was built for */
  batch: number;
  /** whether the graph takes the `drop` input */
  rdrop: boolean;
}

/**
 * Builds the training graph for the cpsam state dict `sd` (its shapes give the architecture;
 * the values are not read).
 */
export function buildTrainGraph(sd: StateDict, opts: TrainGraphOptions): TrainGraph {
  if (!Number.isInteger(opts.batch) || opts.batch < 1) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `batch must be a positive integer, got ${opts.batch}`,
      opts.batch,
    );
  }
  const c = cpsamConfig(sd);
  const isTrainable = opts.trainable ?? (() => true);
  const g = new Graph();
  const B = opts.batch;
  const { dim, heads, headDim: d, grid: G, patch: p, bsize, neck, nout, depth } = c;
  const N = G * G;
  const T = B * N;

  const images = g.input("images", [B, 3, bsize, bsize]);
  const labels = g.input("labels", [B, nout, bsize, bsize]);
  const drop = opts.rdrop ? g.input("drop", [depth, T, 1]) : undefined;
  const parameters: string[] = [];
  const trainable: string[] = [];
  const params = new Map<string, Value>();
  for (const [name, t] of sd) {
    if (name === "diam_labels" || name === "diam_mean") continue;
    const grad = !FROZEN_KEYS.includes(name) && isTrainable(name);
    params.set(name, g.input(name, t.shape, grad));
    parameters.push(name);
    if (grad) trainable.push(name);
  }
  const P = (name: string) => params.get(name)!;
  const ln = (x: Value, key: string) =>
    g.layerNorm(x, P(`${key}.weight`), P(`${key}.bias`), LN_EPS);
  const linear = (x: Value, key: string) => g.gemm(x, P(`${key}.weight`), P(`${key}.bias`));

  // patch embedding: [B, 3, G*p, G*p] -> patches [(b, y, x), (c, py, px)] -> tokens
  let x = g.reshape(images, [B, 3, G, p, G, p]);
  x = g.reshape(g.transpose(x, [0, 2, 4, 1, 3, 5]), [T, 3 * p * p]);
  const pw = g.reshape(P("encoder.patch_embed.proj.weight"), [dim, 3 * p * p]);
  x = g.gemm(x, pw, P("encoder.patch_embed.proj.bias"));
  x = g.add(g.reshape(x, [B, N, dim]), g.reshape(P("encoder.pos_embed"), [N, dim]));
  x = g.reshape(x, [T, dim]);

  for (let i = 0; i < depth; i++) {
    const k = `encoder.blocks.${i}`;
    const qkv = linear(ln(x, `${k}.norm1`), `${k}.attn.qkv`); // [T, 3 dim]
    const qkv5 = g.transpose(g.reshape(qkv, [B, N, 3, heads, d]), [2, 0, 3, 1, 4]);
    const part = (j: number) => g.reshape(g.slice(qkv5, 0, j, j + 1), [B * heads, N, d]);
    const q = part(0), kk = part(1), v = part(2);
    let attn = g.matmul(g.scale(q, d ** -0.5), g.transpose(kk, [0, 2, 1])); // [BH, N, N]
    // decomposed relative position bias (SAM's add_decomposed_rel_pos)
    const table = (axis: "h" | "w") => {
      const rel = P(`${k}.attn.rel_pos_${axis}`);
      const n = rel.shape[0];
      const gather = g.constant(relPosGather(n, G), [N, n]);
      const r = g.reshape(g.matmul(gather, rel), [G, G, d]); // [q, k, c]
      return g.transpose(r, [0, 2, 1]); // [q, c, k]
    };
    const rq = g.reshape(q, [B * heads, G, G, d]); // [BH, qh, qw, c]
    const relH = g.matmul(rq, table("h")); // [BH, qh, qw, kh]
    const relW = g.transpose(
      g.matmul(g.transpose(rq, [0, 2, 1, 3]), table("w")), // [BH, qw, qh, kw]
      [0, 2, 1, 3],
    );
    attn = g.add(
      g.add(g.reshape(attn, [B * heads, G, G, G, G]), g.reshape(relH, [B * heads, G, G, G, 1])),
      g.reshape(relW, [B * heads, G, G, 1, G]),
    );
    const probs = g.softmax(g.reshape(attn, [B * heads, N, N]));
    let o = g.reshape(g.matmul(probs, v), [B, heads, G, G, d]);
    o = g.reshape(g.transpose(o, [0, 2, 3, 1, 4]), [T, dim]);
    let h = g.add(x, linear(o, `${k}.attn.proj`));
    const m = linear(g.gelu(linear(ln(h, `${k}.norm2`), `${k}.mlp.lin1`)), `${k}.mlp.lin2`);
    h = g.add(h, m);
    if (drop) {
      // x * mask + blk(x) * (1 - mask), mask = 1 where the block is dropped for the sample
      const mask = g.reshape(g.slice(drop, 0, i, i + 1), [T, 1]);
      const keep = g.sub(g.scalar(1), mask);
      h = g.add(g.mul(x, mask), g.mul(h, keep));
    }
    x = h;
  }

  // neck: 1x1 conv, LayerNorm2d, 3x3 conv (padding 1), LayerNorm2d; channels last
  x = g.gemm(x, g.reshape(P("encoder.neck.0.weight"), [neck, dim]));
  x = ln(x, "encoder.neck.1");
  const padded = g.pad(g.reshape(x, [B, G, G, neck]), [0, 1, 1, 0, 0, 1, 1, 0]);
  const taps: Value[] = [];
  for (let ky = 0; ky < 3; ky++) {
    for (let kx = 0; kx < 3; kx++) {
      taps.push(g.slice(g.slice(padded, 1, ky, ky + G), 2, kx, kx + G));
    }
  }
  const cols = g.reshape(g.concat(taps, 3), [T, 9 * neck]);
  const w3 = g.reshape(g.transpose(P("encoder.neck.2.weight"), [0, 2, 3, 1]), [neck, 9 * neck]);
  x = ln(g.gemm(cols, w3), "encoder.neck.3");

  // readout: 1x1 conv, then conv_transpose2d with W2 (stride p) as a product and depth-to-space
  const nc = nout * p * p;
  x = g.gemm(x, g.reshape(P("out.weight"), [nc, neck]), P("out.bias"));
  x = g.matmul(x, g.reshape(P("W2"), [nc, nout * p * p]));
  x = g.reshape(x, [B, G, G, nout, p, p]);
  const flows = g.reshape(g.transpose(x, [0, 3, 1, 4, 2, 5]), [B, nout, bsize, bsize]);

  const { loss, mse, bce } = g.cellposeLoss(flows, labels);
  const grads = g.gradients(loss, trainable.map(P));
  const model = g.encode(
    [loss, mse, bce, flows, ...grads],
    ["loss", "mse", "bce", "flows", ...trainable.map((n) => `grad:${n}`)],
  );
  return { model, config: c, trainable, parameters, batch: B, rdrop: opts.rdrop };
}
