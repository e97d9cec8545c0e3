/**
 * The network stage of cellpose v4 (`CellposeModel._run_net` / `core.run_net`, no augmentation):
 * a normalised H x W x 3 image is optionally resized by `30 / diameter`, padded and cut into
 * tiles, run through the network in batches, recombined with the taper, and resized back to
 * H x W. Returns the flows (dY, dX) and the cell probability logits.
 *
 * Tiles are cut per batch and outputs summed as they arrive: memory is one batch of tiles plus
 * the image-sized sums.
 *
 * @example
 * ```ts
 * import { runNetwork } from "./flows.ts";
 * import { createRunner } from "../models/runtime.ts";
 * const net = await createRunner("/tmp/tiny.onnx", { device: "cpu" });
 * const img = { data: new Float32Array(300 * 417 * 3), shape: [300, 417, 3] };
 * const { flows, cellprob } = await runNetwork(img, net, { diameter: 60 });
 * console.log(flows.shape, cellprob.shape); // [2, 300, 417] [300, 417]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { checkCancelled } from "../core/check.ts";
import type { NdArray } from "../core/ndarray.ts";
import type { NetRunner, Progress } from "../core/types.ts";
import { resizeImage } from "./resize.ts";
import { extractTile, planTiles, TileAccumulator, type TilePlan } from "./tiles.ts";

/** Options of {@link runNetwork} (cellpose names in camelCase, defaults in brackets). */
export interface NetworkOptions {
  /** cell diameter: the image is resized by `30 / diameter` for the network (none: no resize) */
  diameter?: number;
  /** [0.1] tile overlap fraction */
  tileOverlap?: number;
  /** [8] tiles per network call */
  batchSize?: number;
  /** called after each batch with stage "network" and the tiles done so far */
  onProgress?: (p: Progress) => void;
  /** checked between batches; aborting rejects with CellposeError CANCELLED */
  signal?: AbortSignal;
}

/** Network outputs at image scale. */
export interface NetworkOutput {
  /** (dY, dX): [2, H, W], or [2, Z, H, W] for a stack of planes */
  flows: NdArray<Float32Array>;
  /** cell probability logits: [H, W] or [Z, H, W] */
  cellprob: NdArray<Float32Array>;
}

/** `30 / diameter`, or 1 when no diameter is given (0 counts as none, like cellpose). */
export function diameterScale(diameter: number | undefined): number {
  return diameter !== undefined && diameter > 0 ? 30 / diameter : 1;
}

/** One image plane on its way through the network. */
interface PlaneJob {
  image: NdArray<Float32Array>;
  plan: TilePlan;
  acc: TileAccumulator;
}

/**
 * Runs the network over a normalised channel-last image [H, W, 3], or over each plane of a stack
 * [Z, H, W, 3], and returns flows and cell probability at the input's size.
 *
 * Throws CellposeError CANCELLED when `signal` aborts (checked between batches), BAD_SHAPE for
 * an input that is not [.., H, W, 3], BAD_PARAMETER when the resized image would be empty.
 */
export async function runNetwork(
  image: NdArray<Float32Array>,
  net: NetRunner,
  options: NetworkOptions = {},
): Promise<NetworkOutput> {
  const nd = image.shape.length;
  if ((nd !== 3 && nd !== 4) || image.shape[nd - 1] !== 3) {
    throw new CellposeError(
      "BAD_SHAPE",
      `runNetwork takes a normalised [H, W, 3] image or [Z, H, W, 3] stack, got [${image.shape}]`,
      image.shape,
    );
  }
  const [nz, h, w] = nd === 3 ? [1, image.shape[0], image.shape[1]] : image.shape;
  const scale = diameterScale(options.diameter);
  const [hr, wr] = scale === 1 ? [h, w] : [Math.trunc(h * scale), Math.trunc(w * scale)];
  if (hr < 1 || wr < 1) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `diameter ${options.diameter} shrinks the ${h} x ${w} image to ${hr} x ${wr} pixels`,
      options.diameter,
    );
  }
  const batchSize = options.batchSize ?? 8;
  const bsize = net.bsize;
  const planeSize = h * w * 3;
  const planes: PlaneJob[] = [];
  const plane = (z: number): NdArray<Float32Array> => {
    const p = { data: image.data.subarray(z * planeSize, (z + 1) * planeSize), shape: [h, w, 3] };
    return scale === 1 ? p : resizeImage(p, hr, wr);
  };
  const plan = planTiles(hr, wr, { bsize, tileOverlap: options.tileOverlap });
  const perPlane = plan.ys.length * plan.xs.length;
  const total = perPlane * nz;
  const tileLen = 3 * plan.tileHeight * plan.tileWidth;
  const out = {
    flows: new Float32Array(2 * nz * h * w),
    cellprob: new Float32Array(nz * h * w),
  };
  let done = 0;
  options.onProgress?.({ stage: "network", tilesDone: 0, tilesTotal: total });
  while (done < total) {
    checkCancelled(options.signal);
    const n = Math.min(batchSize, total - done);
    const batch = new Float32Array(n * tileLen);
    for (let b = 0; b < n; b++) {
      const t = done + b, z = Math.floor(t / perPlane), k = t % perPlane;
      if (k === 0) planes[z] = { image: plane(z), plan, acc: new TileAccumulator(plan, 3) };
      extractTile(
        planes[z].image,
        plan,
        Math.floor(k / plan.xs.length),
        k % plan.xs.length,
        batch,
        b * tileLen,
      );
    }
    const y = await net.run({ data: batch, shape: [n, 3, plan.tileHeight, plan.tileWidth] });
    for (let b = 0; b < n; b++) {
      const t = done + b, z = Math.floor(t / perPlane), k = t % perPlane;
      planes[z].acc.add(y.data, b * tileLen, Math.floor(k / plan.xs.length), k % plan.xs.length);
      if (k === perPlane - 1) {
        finishPlane(planes[z].acc, z, nz, h, w, out);
        delete planes[z];
      }
    }
    done += n;
    options.onProgress?.({ stage: "network", tilesDone: done, tilesTotal: total });
  }
  return nd === 3
    ? {
      flows: { data: out.flows, shape: [2, h, w] },
      cellprob: { data: out.cellprob, shape: [h, w] },
    }
    : {
      flows: { data: out.flows, shape: [2, nz, h, w] },
      cellprob: { data: out.cellprob, shape: [nz, h, w] },
    };
}

/** Averages plane z's tiles, resizes each output channel back to h x w and stores it. */
function finishPlane(
  acc: TileAccumulator,
  z: number,
  nz: number,
  h: number,
  w: number,
  out: { flows: Float32Array; cellprob: Float32Array },
): void {
  const y = acc.result();
  const [, hr, wr] = y.shape;
  const n = hr * wr;
  for (let c = 0; c < 3; c++) {
    const ch = { data: y.data.subarray(c * n, (c + 1) * n), shape: [hr, wr] };
    const back = hr === h && wr === w ? ch.data : resizeImage(ch, h, w).data;
    if (c < 2) out.flows.set(back, (c * nz + z) * h * w);
    else out.cellprob.set(back, z * h * w);
  }
}
