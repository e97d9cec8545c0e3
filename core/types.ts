/**
 * The shared vocabulary of the public API: segmentation options with cellpose v4's defaults, the
 * result, progress events and the network-runner interface the pipeline talks to.
 * @module
 */
import type { NdArray, NumericArray } from "./ndarray.ts";

/** Where a computation runs. `auto` picks WebGPU when a real adapter exists. */
export type Device = "auto" | "webgpu" | "wasm" | "cpu";

/** Stages reported while segmenting. */
export type Stage = "load" | "normalize" | "network" | "dynamics" | "done" | "train";

/** A progress event: the stage, and for the network stage the tiles done so far. */
export interface Progress {
  /** the stage running now */
  stage: Stage;
  /** network tiles done so far */
  tilesDone?: number;
  /** network tiles in all */
  tilesTotal?: number;
  /** 0..1 over the whole job, when known */
  fraction?: number;
  /** block-wise runs (segmentLarge): blocks finished, and of how many */
  blocksDone?: number;
  /** blocks in all */
  blocksTotal?: number;
}

/** Normalisation options (cellpose v4 `normalize` dict). */
export interface NormalizeOptions {
  /** lower and upper percentile, default [1, 99] */
  percentile?: [number, number];
  /** fixed [low, high] values instead of percentiles, shared or one pair per channel */
  lowhigh?: [number, number] | [number, number][];
  /** normalise in overlapping blocks of this size (0: off) */
  tileNormBlocksize?: number;
  /** 1 - x after normalising */
  invert?: boolean;
  /** one normalisation for the whole stack (default when do3D) */
  norm3D?: boolean;
}

/**
 * Where a block sits in a larger image, so that following its flows reproduces the whole image's
 * trajectories (cellpose's coordinates depend on the image size and origin).
 */
export interface FollowFrame {
  /** the block's first pixel in the full image, one per axis */
  origin: readonly number[];
  /** the full image's shape, `[Ly, Lx]` or `[Lz, Ly, Lx]` */
  fullShape: readonly number[];
}

/** Options of the flows-to-masks step, cellpose v4 defaults in brackets. */
export interface DynamicsOptions {
  /** [200] Euler steps; when a diameter is given, `int(200 * d / 30)` */
  niter?: number;
  /** [0.0] pixels with cellprob above this are followed */
  cellprobThreshold?: number;
  /** [0.4] masks with a larger flow error are dropped (2D); 0 disables QC */
  flowThreshold?: number;
  /** [15] masks smaller than this are removed; -1 keeps all */
  minSize?: number;
  /** [0.4] masks larger than this fraction of the image are removed */
  maxSizeFraction?: number;
  /** ["auto"] WGSL kernels (webgpu) or the TypeScript reference (cpu) */
  device?: "auto" | "webgpu" | "cpu";
}

/** Options of {@link segment}, cellpose v4 names in camelCase with its defaults. */
export interface SegmentOptions extends DynamicsOptions {
  /** cell diameter in pixels; undefined: none needed (no rescale) */
  diameter?: number;
  /** [0.1] tile overlap fraction */
  tileOverlap?: number;
  /** [256] tile size */
  bsize?: number;
  /** [8] tiles per network batch */
  batchSize?: number;
  /** [true] percentile normalisation, or its options; false: image used as is */
  normalize?: boolean | NormalizeOptions;
  /** [false] invert the normalised image */
  invert?: boolean;
  /** axis of the channels in the input, if any */
  channelAxis?: number;
  /** axis of Z in the input, if a stack */
  zAxis?: number;
  /** [false] run 3D segmentation on a stack */
  do3D?: boolean;
  /** [1.0] Z sampling relative to XY for do3D */
  anisotropy?: number;
  /** [0] Gaussian sigma for smoothing 3D flows */
  flow3DSmooth?: number;
  /** [0] > 0: 2D masks per plane stitched across Z by this IoU */
  stitchThreshold?: number;
  /**
   * pixel budget of the rescaled image (planes x height x width): a `diameter` that would rescale
   * the image past it is refused (default `MAX_RESCALED_PIXELS` of `core/params.ts`, 2^26)
   */
  maxPixels?: number;
  /**
   * the image is a block of a larger one: the dynamics follow the larger image's coordinates
   * (see computeMasks); not with `stitchThreshold`
   */
  frame?: FollowFrame;
  /** progress callback */
  onProgress?: (p: Progress) => void;
  /** cancels the job */
  signal?: AbortSignal;
}

/** What {@link segment} returns. */
export interface SegmentResult {
  /** label image, 0 background, 1..N masks: [H, W] or [Z, H, W] */
  masks: NdArray<Uint16Array | Uint32Array>;
  /** network flows at image scale: [2, H, W] (dY, dX), [3, Z, H, W] (do3D) or [2, Z, H, W] (stitching) */
  flows: NdArray<Float32Array>;
  /** cell probability logits: [H, W] or [Z, H, W] */
  cellprob: NdArray<Float32Array>;
  /** number of masks */
  nMasks: number;
  /** milliseconds per stage */
  timings: Record<string, number>;
}

/**
 * A loaded network: runs batches of normalised 3 x bsize x bsize tiles and returns
 * 3 x bsize x bsize outputs (dY, dX, cellprob) per tile.
 */
export interface NetRunner {
  /** model name, e.g. "cpsam" */
  readonly name: string;
  /** backend actually used: "webgpu", "wasm" (onnxruntime-web) or "cpu" (onnxruntime-node) */
  readonly device: Exclude<Device, "auto">;
  /** tile size the network takes */
  readonly bsize: number;
  /** runs tiles [B, 3, bsize, bsize] -> [B, 3, bsize, bsize] */
  run(tiles: NdArray<Float32Array>): Promise<NdArray<Float32Array>>;
  /** frees the session */
  dispose(): Promise<void>;
}

/** An image as accepted by {@link segment}: any numeric typed array with 2 to 4 dimensions. */
export type ImageArray = NdArray<NumericArray>;

/**
 * A 2-D image read region by region, for images too large to hold in memory (see
 * `segmentLarge`). Pixels are channel-last.
 */
export interface ImageSource {
  /** image height in pixels */
  readonly height: number;
  /** image width in pixels */
  readonly width: number;
  /** samples per pixel (1: grey) */
  readonly channels: number;
  /**
   * width of the blocks the source decodes whole (TIFF tiles or strips, Zarr chunks), where it
   * has them: readers of long row bands read them in pieces of this width
   */
  readonly blockWidth?: number;
  /** pixels of `[y0, y1) x [x0, x1)`: [h, w] when `channels` is 1, else [h, w, channels] */
  read(rect: { y0: number; x0: number; y1: number; x1: number }): Promise<ImageArray>;
}
