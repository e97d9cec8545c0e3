/**
 * Training data as cellpose v4's `train_seg` prepares it: images to 3 channels first, normalised
 * per channel to the 1st / 99th percentile (`_reshape_norm`); labels to flows
 * (`labels_to_flows`: `[cellprob = labels > 0.5, flowY, flowX]`, the `[1:]` of cellpose's
 * 4-channel flow stack); the per-image diameter and mask count (`utils.diameters`) that
 * `min_train_masks` and `diam_labels` use.
 *
 * @example
 * ```ts
 * import { labelsToFlows, reshapeNorm } from "./dataset.ts";
 * const img = reshapeNorm({ data: new Uint8Array([0, 50, 100, 250]), shape: [2, 2] });
 * if (img.shape.join() !== "3,2,2") throw new Error("3 channels first");
 * const masks = { data: new Uint16Array([1, 1, 0, 2]), shape: [2, 2] };
 * const t = labelsToFlows(masks);
 * if (t.nMasks !== 2 || t.labels.data[0] !== 1 || t.labels.data[2] !== 0) throw new Error("?");
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { transpose } from "../core/transpose.ts";
import type { NormalizeOptions } from "../core/types.ts";
import { masksToFlows } from "../dynamics/masks_to_flows.ts";
import { toLabels } from "../core/labels.ts";
import { readImage } from "../io/image.ts";
import type { TrainingPair } from "../io/files.ts";
import { normalizeImage } from "../pipeline/normalize.ts";

/** One training image, ready for augmentation. */
export interface TrainingImage {
  /** `[3, H, W]`, normalised */
  image: NdArray<Float32Array>;
  /** `[3, H, W]`: cellprob (0/1), flowY, flowX */
  labels: NdArray<Float32Array>;
  /** masks in the labels (cellpose's count, see {@link diameterOf}) */
  nMasks: number;
  /** median mask diameter (`utils.diameters`), before the floor of 5 */
  diameter: number;
  /** where it came from (for messages) */
  name: string;
}

/**
 * `_reshape_norm`: a 2-D image `[H, W]` or one with channels (`channelAxis`, default: the
 * smallest dimension, as cellpose guesses) to `[3, H, W]` float32 (first 3 channels; missing
 * ones zero), normalised per channel (`normalize`: cellpose's options; `false` skips).
 */
export function reshapeNorm(
  image: NdArray<NumericArray>,
  channelAxis?: number,
  normalize: NormalizeOptions | false = {},
): NdArray<Float32Array> {
  let hwc: NdArray<NumericArray>;
  if (image.shape.length === 2) {
    hwc = { data: image.data, shape: [...image.shape, 1] };
  } else if (image.shape.length === 3) {
    const axis = channelAxis ?? image.shape.indexOf(Math.min(...image.shape));
    const perm = [0, 1, 2].filter((a) => a !== axis).concat(axis);
    hwc = transpose(image, perm);
  } else {
    throw new CellposeError(
      "BAD_SHAPE",
      `training images must be 2-D, or 2-D with channels; got shape [${image.shape}]`,
      image.shape,
    );
  }
  const [H, W, C] = hwc.shape;
  const three = new Float32Array(H * W * 3);
  for (let p = 0; p < H * W; p++) {
    for (let c = 0; c < Math.min(C, 3); c++) three[p * 3 + c] = hwc.data[p * C + c];
  }
  let x: NdArray<Float32Array> = { data: three, shape: [H, W, 3] };
  if (normalize !== false) x = normalizeImage(x, normalize);
  return transpose(x, [2, 0, 1]);
}

/** cellpose's `utils.diameters`: median of sqrt(area) over the masks, over sqrt(pi) / 2. */
export function diameterOf(labels: Uint32Array): { diameter: number; nMasks: number } {
  const counts = new Map<number, number>();
  for (const v of labels) counts.set(v, (counts.get(v) ?? 0) + 1);
  // np.unique sorts; cellpose drops the first entry (the background when there is one)
  const keys = [...counts.keys()].sort((a, b) => a - b).slice(1);
  const roots = keys.map((k) => Math.sqrt(counts.get(k)!)).sort((a, b) => a - b);
  const n = roots.length;
  const median = n === 0 ? 0 : n % 2 ? roots[(n - 1) / 2] : (roots[n / 2 - 1] + roots[n / 2]) / 2;
  return { diameter: median / (Math.sqrt(Math.PI) / 2), nMasks: n };
}

/** `labels_to_flows` for one 2-D label image: `[cellprob, flowY, flowX]` and its statistics. */
export function labelsToFlows(
  masks: NdArray,
): { labels: NdArray<Float32Array>; nMasks: number; diameter: number } {
  if (masks.shape.length !== 2) {
    throw new CellposeError(
      "BAD_SHAPE",
      `training labels must be a 2-D label image, got shape [${masks.shape}]`,
      masks.shape,
    );
  }
  const lab = toLabels(masks, "labels");
  const [H, W] = masks.shape;
  const flows = masksToFlows({ data: lab, shape: [H, W] });
  const out = new Float32Array(3 * H * W);
  for (let i = 0; i < H * W; i++) out[i] = lab[i] > 0.5 ? 1 : 0;
  out.set(flows.data, H * W);
  return { labels: { data: out, shape: [3, H, W] }, ...diameterOf(lab) };
}

/** Label images come as 2-D integer images; a single-channel axis is dropped. */
function labelPlane(img: NdArray<NumericArray>, name: string): NdArray<NumericArray> {
  const shape = img.shape.filter((d) => d !== 1);
  if (shape.length !== 2) {
    throw new CellposeError(
      "BAD_SHAPE",
      `${name}: labels must be one 2-D label image, got shape [${img.shape}]`,
      img.shape,
    );
  }
  return { data: img.data, shape };
}

/**
 * Reads an image and its labels from files and prepares them ({@link reshapeNorm},
 * {@link labelsToFlows}). Throws `BAD_SHAPE` naming both files when their sizes differ.
 */
export async function loadTrainingImage(
  pair: TrainingPair,
  opts: { channelAxis?: number; normalize?: NormalizeOptions | false } = {},
): Promise<TrainingImage> {
  const img = await readImage(pair.image);
  if (img.zAxis !== undefined) {
    throw new CellposeError(
      "BAD_SHAPE",
      `${pair.image}: training takes 2-D images, this one is a stack (axes ${img.axes})`,
      img.axes,
    );
  }
  const lab = await readImage(pair.labels);
  const masks = labelPlane(lab.image, pair.labels);
  const image = reshapeNorm(img.image, opts.channelAxis ?? img.channelAxis, opts.normalize);
  const [, H, W] = image.shape;
  if (masks.shape[0] !== H || masks.shape[1] !== W) {
    throw new CellposeError(
      "BAD_SHAPE",
      `${pair.labels} is ${masks.shape[0]} x ${masks.shape[1]} but its image ${pair.image} is ` +
        `${H} x ${W}`,
      masks.shape,
    );
  }
  return { image, ...labelsToFlows(masks), name: pair.image };
}
