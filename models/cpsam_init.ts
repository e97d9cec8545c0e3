/**
 * A freshly initialised cpsam-shaped state dict of any width, depth and head count: the tensors,
 * names and initial values that cellpose's `vit_sam.Transformer` gets from PyTorch's module
 * defaults when it is built without a checkpoint (uniform `±1/sqrt(fan_in)` for linear and
 * convolution weights and biases, LayerNorm weights 1 and biases 0, position embedding and
 * relative-position tables 0, `W2` the identity, `diam_labels` = `diam_mean` = 30). The start of
 * training from scratch, and a small real model for examples and tests.
 *
 * @example
 * ```ts
 * import { initCpsam } from "./cpsam_init.ts";
 * import { cpsamConfig } from "./cpsam_config.ts";
 * const sd = initCpsam({ dim: 32, depth: 1, heads: 2, seed: 0 });
 * const cfg = cpsamConfig(sd);
 * if (cfg.dim !== 32 || cfg.depth !== 1 || cfg.heads !== 2) throw new Error("wrong shape");
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { NumpyRandom } from "../core/random.ts";
import type { StateDict } from "./checkpoint.ts";

/** Options of {@link initCpsam}. */
export interface InitOptions {
  /** token width (cpsam: 1024) */
  dim: number;
  /** transformer blocks (cpsam: 24) */
  depth: number;
  /** attention heads; must divide `dim` (cpsam: 16) */
  heads: number;
  /** MLP hidden width (default `4 * dim`) */
  mlpDim?: number;
  /** patch size (default 8) */
  patch?: number;
  /** tile size in pixels (default 256) */
  bsize?: number;
  /** neck channels (default 256, as cellpose's readout expects) */
  neck?: number;
  /** output channels (default 3: dY, dX, cellprob) */
  nout?: number;
  /** seed of the random draws (default 0) */
  seed?: number;
}

/**
 * Builds a cpsam state dict with PyTorch's default initialisation (see the module doc), keys in
 * the order cellpose's `Transformer.state_dict()` lists them.
 */
export function initCpsam(opts: InitOptions): StateDict {
  const { dim, depth, heads } = opts;
  const p = opts.patch ?? 8;
  const bsize = opts.bsize ?? 256;
  const mlp = opts.mlpDim ?? 4 * dim;
  const neck = opts.neck ?? 256;
  const nout = opts.nout ?? 3;
  for (const [name, v] of Object.entries({ dim, depth, heads, mlp, p, bsize, neck, nout })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new CellposeError("BAD_PARAMETER", `${name} must be a positive integer, got ${v}`, v);
    }
  }
  if (dim % heads !== 0) {
    throw new CellposeError("BAD_PARAMETER", `heads (${heads}) must divide dim (${dim})`, heads);
  }
  if (bsize % p !== 0) {
    throw new CellposeError("BAD_PARAMETER", `patch (${p}) must divide bsize (${bsize})`, p);
  }
  const grid = bsize / p;
  const rng = new NumpyRandom(opts.seed ?? 0);
  const sd: StateDict = new Map();
  const t = (name: string, shape: number[], fill: (n: number) => Float32Array) => {
    const n = shape.reduce((a, b) => a * b, 1);
    sd.set(name, { data: fill(n), shape } as NdArray<Float32Array>);
  };
  const uniform = (bound: number) => (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (2 * rng.random() - 1) * bound;
    return a;
  };
  const constant = (v: number) => (n: number) => new Float32Array(n).fill(v);
  const linear = (name: string, out: number, inp: number, bias = true) => {
    t(`${name}.weight`, [out, inp], uniform(1 / Math.sqrt(inp)));
    if (bias) t(`${name}.bias`, [out], uniform(1 / Math.sqrt(inp)));
  };
  const norm = (name: string, n: number) => {
    t(`${name}.weight`, [n], constant(1));
    t(`${name}.bias`, [n], constant(0));
  };

  t("encoder.pos_embed", [1, grid, grid, dim], constant(0));
  // cellpose keeps every other tap of SAM's 16x16 patch kernel (fan-in 3*16*16)
  t("encoder.patch_embed.proj.weight", [dim, 3, p, p], uniform(1 / Math.sqrt(3 * 4 * p * p)));
  t("encoder.patch_embed.proj.bias", [dim], uniform(1 / Math.sqrt(3 * p * p)));
  const headDim = dim / heads;
  for (let i = 0; i < depth; i++) {
    const b = `encoder.blocks.${i}`;
    norm(`${b}.norm1`, dim);
    t(`${b}.attn.rel_pos_h`, [2 * grid - 1, headDim], constant(0));
    t(`${b}.attn.rel_pos_w`, [2 * grid - 1, headDim], constant(0));
    linear(`${b}.attn.qkv`, 3 * dim, dim);
    linear(`${b}.attn.proj`, dim, dim);
    norm(`${b}.norm2`, dim);
    linear(`${b}.mlp.lin1`, mlp, dim);
    linear(`${b}.mlp.lin2`, dim, mlp);
  }
  t("encoder.neck.0.weight", [neck, dim, 1, 1], uniform(1 / Math.sqrt(dim)));
  norm("encoder.neck.1", neck);
  t("encoder.neck.2.weight", [neck, neck, 3, 3], uniform(1 / Math.sqrt(neck * 9)));
  norm("encoder.neck.3", neck);
  const nc = nout * p * p;
  t("out.weight", [nc, neck, 1, 1], uniform(1 / Math.sqrt(neck)));
  t("out.bias", [nc], uniform(1 / Math.sqrt(neck)));
  t("W2", [nc, nout, p, p], (n) => {
    const e = new Float32Array(n);
    for (let c = 0; c < nc; c++) e[c * nc + c] = 1;
    return e;
  });
  t("diam_labels", [1], constant(30));
  t("diam_mean", [1], constant(30));
  return sd;
}
