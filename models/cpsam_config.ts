/**
 * The architecture of a cpsam state dict (cellpose v4's `vit_sam.Transformer`): width, depth,
 * heads, patch and grid read off the tensor shapes, with every tensor the network needs checked
 * for presence and shape. Shared by the inference graph, the training graph and initialisation.
 *
 * @example
 * ```ts
 * import { readCheckpointFile } from "./checkpoint.ts";
 * import { cpsamConfig } from "./cpsam_config.ts";
 * const cfg = cpsamConfig(await readCheckpointFile("../shared/fixtures/tiny-cpsam.pt"));
 * if (cfg.dim !== 64 || cfg.depth !== 2 || cfg.heads !== 4) throw new Error("not the tiny model");
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import type { StateDict } from "./checkpoint.ts";

/** The architecture read off a cpsam state dict. */
export interface CpsamConfig {
  /** token width (1024 for cpsam, ViT-L) */
  dim: number;
  /** transformer blocks (24) */
  depth: number;
  /** attention heads (16) */
  heads: number;
  /** per-head width (64) */
  headDim: number;
  /** patch size (8) */
  patch: number;
  /** tokens per side (32) */
  grid: number;
  /** MLP hidden width (4096) */
  mlpDim: number;
  /** neck channels (256) */
  neck: number;
  /** output channels (3: dY, dX, cellprob) */
  nout: number;
  /** tile size = grid * patch (256) */
  bsize: number;
}

/** The tensor `key` of `sd`; `BAD_MODEL` naming the key when it is missing. */
export function stateTensor(sd: StateDict, key: string): NdArray<Float32Array> {
  const t = sd.get(key);
  if (!t) throw new CellposeError("BAD_MODEL", `state dict lacks ${key}, which cpsam needs`, key);
  return t;
}

/**
 * Reads the architecture off the tensor shapes and checks every key cpsam needs.
 * Throws `BAD_MODEL` for a different architecture (naming cellpose 3 models), `BAD_SHAPE` for a
 * tensor of the wrong shape.
 *
 * @example
 * ```ts
 * import { readCheckpointFile } from "./checkpoint.ts";
 * import { cpsamConfig } from "./cpsam_config.ts";
 * const cfg = cpsamConfig(await readCheckpointFile("../shared/fixtures/tiny-cpsam.pt"));
 * if (cfg.heads * cfg.headDim !== cfg.dim) throw new Error("heads do not tile the width");
 * ```
 */
export function cpsamConfig(sd: StateDict): CpsamConfig {
  const keys = [...sd.keys()];
  if (keys.some((k) => k.startsWith("downsample.") || k.startsWith("output."))) {
    throw new CellposeError(
      "BAD_MODEL",
      "this looks like a cellpose 3 model (keys downsample.*, upsample.*, output.*); cpsam needs " +
        "a cellpose v4 (Cellpose-SAM) checkpoint",
      keys.slice(0, 5),
    );
  }
  const pos = stateTensor(sd, "encoder.pos_embed");
  const pe = stateTensor(sd, "encoder.patch_embed.proj.weight");
  const rel = stateTensor(sd, "encoder.blocks.0.attn.rel_pos_h");
  if (pos.shape.length !== 4 || pos.shape[1] !== pos.shape[2]) {
    throw new CellposeError(
      "BAD_SHAPE",
      `encoder.pos_embed must be [1, G, G, dim], got [${pos.shape}]`,
      pos.shape,
    );
  }
  if (pe.shape.length !== 4 || rel.shape.length !== 2) {
    throw new CellposeError(
      "BAD_SHAPE",
      `encoder.patch_embed.proj.weight must be 4-D and rel_pos_h 2-D, got [${pe.shape}], [${rel.shape}]`,
      pe.shape,
    );
  }
  const dim = pos.shape[3];
  const grid = pos.shape[1];
  const headDim = rel.shape[1];
  let depth = 0;
  while (sd.has(`encoder.blocks.${depth}.norm1.weight`)) depth++;
  const mlpDim = stateTensor(sd, "encoder.blocks.0.mlp.lin1.weight").shape[0];
  const neck = stateTensor(sd, "encoder.neck.0.weight").shape[0];
  const outCh = stateTensor(sd, "out.weight").shape[0];
  const patch = pe.shape[2];
  if (dim % headDim !== 0) {
    throw new CellposeError(
      "BAD_SHAPE",
      `rel_pos width ${headDim} (the head width) must divide the token width ${dim}`,
      rel.shape,
    );
  }
  const nout = outCh / (patch * patch);
  const cfg: CpsamConfig = {
    dim,
    depth,
    heads: dim / headDim,
    headDim,
    patch,
    grid,
    mlpDim,
    neck,
    nout,
    bsize: grid * patch,
  };
  checkShapes(sd, cfg);
  return cfg;
}

function checkShapes(sd: StateDict, c: CpsamConfig) {
  const expect: [string, number[]][] = [
    ["encoder.patch_embed.proj.weight", [c.dim, 3, c.patch, c.patch]],
    ["encoder.patch_embed.proj.bias", [c.dim]],
    ["encoder.pos_embed", [1, c.grid, c.grid, c.dim]],
    ["encoder.neck.0.weight", [c.neck, c.dim, 1, 1]],
    ["encoder.neck.1.weight", [c.neck]],
    ["encoder.neck.1.bias", [c.neck]],
    ["encoder.neck.2.weight", [c.neck, c.neck, 3, 3]],
    ["encoder.neck.3.weight", [c.neck]],
    ["encoder.neck.3.bias", [c.neck]],
    ["out.weight", [c.nout * c.patch ** 2, c.neck, 1, 1]],
    ["out.bias", [c.nout * c.patch ** 2]],
    ["W2", [c.nout * c.patch ** 2, c.nout, c.patch, c.patch]],
  ];
  for (let i = 0; i < c.depth; i++) {
    const b = `encoder.blocks.${i}.`;
    expect.push(
      [b + "norm1.weight", [c.dim]],
      [b + "norm1.bias", [c.dim]],
      [b + "attn.qkv.weight", [3 * c.dim, c.dim]],
      [b + "attn.qkv.bias", [3 * c.dim]],
      [b + "attn.proj.weight", [c.dim, c.dim]],
      [b + "attn.proj.bias", [c.dim]],
      [b + "norm2.weight", [c.dim]],
      [b + "norm2.bias", [c.dim]],
      [b + "mlp.lin1.weight", [c.mlpDim, c.dim]],
      [b + "mlp.lin1.bias", [c.mlpDim]],
      [b + "mlp.lin2.weight", [c.dim, c.mlpDim]],
      [b + "mlp.lin2.bias", [c.dim]],
    );
    for (const axis of ["h", "w"]) {
      const t = stateTensor(sd, `${b}attn.rel_pos_${axis}`);
      if (t.shape.length !== 2 || t.shape[1] !== c.headDim || t.shape[0] < 1) {
        throw new CellposeError(
          "BAD_SHAPE",
          `${b}attn.rel_pos_${axis} must be [rows, ${c.headDim}], got [${t.shape}]`,
          t.shape,
        );
      }
    }
  }
  for (const [key, shape] of expect) {
    const t = stateTensor(sd, key);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new CellposeError(
        "BAD_SHAPE",
        `${key} must have shape [${shape}] for this cpsam (dim ${c.dim}, ${c.heads} heads), ` +
          `got [${t.shape}]`,
        t.shape,
      );
    }
  }
}
