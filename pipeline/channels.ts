/**
 * Any image becomes H x W x 3 (or Z x H x W x 3 for a stack): cellpose v4's
 * `transforms.convert_image`. The element type is kept; only axes move and channels are cut to
 * the first 3 or zero-filled up to 3.
 *
 * Rules (pipeline.md section 1):
 * - 2-D (H, W): copied into channel 0, channels 1 and 2 zero.
 * - 3-D without `channelAxis`: channels first if `shape[0] < shape[2]`, else last.
 * - 3-D with `channelAxis`: that axis moves last, the other two keep their order.
 * - stacks (`zAxis` given): 3-D input is grey (Z plus two spatial axes); 4-D input needs
 *   `channelAxis` too. Result is Z x H x W x 3 with H, W the remaining axes in order.
 *
 * @example
 * ```ts
 * import { convertImage } from "./channels.ts";
 * const chw = { data: new Uint8Array(2 * 4 * 5), shape: [2, 4, 5] };
 * console.log(convertImage(chw).shape); // [4, 5, 3]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { type NdArray, type NumericArray, size } from "../core/ndarray.ts";
import { transpose } from "../core/transpose.ts";

/** Where the channel and Z axes of an input image are. */
export interface ConvertOptions {
  /** axis holding the channels (negative counts from the end); guessed for 3-D input when absent */
  channelAxis?: number;
  /** axis holding Z planes (negative counts from the end): the input is a stack */
  zAxis?: number;
}

function checkAxis(name: string, axis: number, ndim: number): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `${name} must be an integer in [${-ndim}, ${ndim - 1}] for a ${ndim}-D image, got ${axis}`,
      axis,
    );
  }
  return axis < 0 ? axis + ndim : axis;
}

/** Keeps the first 3 channels of a channel-last array, or zero-fills up to 3. */
function toThreeChannels<T extends NumericArray>(x: NdArray<T>): NdArray<T> {
  const nc = x.shape[x.shape.length - 1];
  if (nc === 3) return x;
  const npix = size(x.shape) / Math.max(nc, 1);
  const shape = [...x.shape.slice(0, -1), 3];
  const out = new (x.data.constructor as { new (n: number): T })(npix * 3);
  const keep = Math.min(nc, 3);
  for (let p = 0; p < npix; p++) {
    for (let c = 0; c < keep; c++) out[p * 3 + c] = x.data[p * nc + c];
  }
  return { data: out, shape };
}

/** Moves `axis` to the end, keeping the order of the others. */
function moveLast<T extends NumericArray>(x: NdArray<T>, axis: number): NdArray<T> {
  const nd = x.shape.length;
  if (axis === nd - 1) return x;
  const axes = [...Array(nd).keys()].filter((a) => a !== axis);
  return transpose(x, [...axes, axis]);
}

/**
 * Converts an image to channel-last with exactly 3 channels (see the module doc for the rules).
 * Returns [H, W, 3] for 2-D images, [Z, H, W, 3] when `zAxis` is given. The data is copied
 * unless the input already has that layout.
 *
 * Throws BAD_SHAPE for empty images or ones with fewer than 2 or more than 4 dimensions, and
 * BAD_PARAMETER for a channel or Z axis that does not fit the image.
 *
 * @example
 * ```ts
 * import { convertImage } from "./channels.ts";
 * const hwc = { data: new Uint16Array(8 * 6 * 2), shape: [8, 6, 2] };
 * const out = convertImage(hwc, { channelAxis: 2 });
 * console.log(out.shape, out.data.constructor.name); // [8, 6, 3] Uint16Array
 * ```
 */
export function convertImage<T extends NumericArray>(
  image: NdArray<T>,
  options: ConvertOptions = {},
): NdArray<T> {
  const shape = image.shape;
  const nd = shape.length;
  if (nd < 2 || nd > 4) {
    throw new CellposeError(
      "BAD_SHAPE",
      `image must have 2 to 4 dimensions (H,W / H,W,C / Z,H,W / Z,H,W,C), got [${shape}]`,
      shape,
    );
  }
  if (size(shape) === 0) {
    throw new CellposeError("BAD_SHAPE", `image is empty: shape [${shape}]`, shape);
  }
  const { channelAxis, zAxis } = options;
  if (zAxis !== undefined) return convertStack(image, zAxis, channelAxis);
  if (nd === 4) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `zAxis is required for a 4-D image [${shape}] (a stack with channels)`,
      zAxis,
    );
  }
  if (channelAxis !== undefined) {
    if (nd === 2) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `channelAxis must be absent for a 2-D image [${shape}], got ${channelAxis}`,
        channelAxis,
      );
    }
    return toThreeChannels(moveLast(image, checkAxis("channelAxis", channelAxis, nd)));
  }
  if (nd === 2) return toThreeChannels({ data: image.data, shape: [shape[0], shape[1], 1] });
  return toThreeChannels(shape[0] < shape[2] ? moveLast(image, 0) : image);
}

function convertStack<T extends NumericArray>(
  image: NdArray<T>,
  zAxisIn: number,
  channelAxisIn: number | undefined,
): NdArray<T> {
  const nd = image.shape.length;
  if (nd === 2) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `zAxis needs a 3-D or 4-D image, got 2-D [${image.shape}]`,
      zAxisIn,
    );
  }
  const z = checkAxis("zAxis", zAxisIn, nd);
  let x = image;
  let c: number;
  if (nd === 3) {
    if (channelAxisIn !== undefined) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `channelAxis must be absent for a 3-D stack [${image.shape}] with zAxis (grey planes)`,
        channelAxisIn,
      );
    }
    x = { data: image.data, shape: [...image.shape, 1] };
    c = 3;
  } else {
    if (channelAxisIn === undefined) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `channelAxis is required for a 4-D stack [${image.shape}]`,
        channelAxisIn,
      );
    }
    c = checkAxis("channelAxis", channelAxisIn, nd);
    if (c === z) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `channelAxis and zAxis must differ, both are ${c}`,
        channelAxisIn,
      );
    }
  }
  const yx = [0, 1, 2, 3].filter((a) => a !== z && a !== c);
  const axes = [z, ...yx, c];
  const moved = axes.every((a, i) => a === i) ? x : transpose(x, axes);
  return toThreeChannels(moved);
}
