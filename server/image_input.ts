/**
 * From uploaded bytes to the pipeline's input: the image is read (TIFF, PNG, JPEG, NPY) after its
 * header's declared size is checked against the server's limit, every failure becomes a 4xx
 * naming the request field, and the channel and Z axes default to what the file declares.
 *
 * @example
 * ```ts
 * import { decodeImage, withAxes } from "./image_input.ts";
 * import { encodePng } from "../io/png.ts";
 * const png = encodePng({ data: new Uint8Array(4 * 6 * 3), shape: [4, 6, 3] });
 * const { image, axes } = await decodeImage(png, "rgb.png", 1 << 20);
 * console.log(image.shape, withAxes({}, axes, image.shape.length)); // [4, 6, 3] { channelAxis: 2 }
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { type NdArray, type NumericArray, size } from "../core/ndarray.ts";
import { readImage } from "../io/image.ts";
import type { SegmentParams } from "./params.ts";

function tooManyElements(name: string, n: number, shape: string, maxPixels: number, field: string) {
  return new CellposeError(
    "TOO_LARGE",
    `${name} has ${n} elements (${shape}); the server takes up to ${maxPixels} (option maxPixels)`,
    { field, got: n },
  );
}

/** A decoded upload: the pixels and the axes its file declares. */
export interface DecodedImage {
  image: NdArray<NumericArray>;
  axes: { channelAxis?: number; zAxis?: number };
}

/** {@link decodeImage}'s signature; the server runs it in a decode worker (`decoder.ts`). */
export type ImageDecoder = (
  bytes: Uint8Array,
  name: string,
  maxPixels: number,
  field?: string,
) => Promise<DecodedImage>;

/**
 * Reads the image; any failure is a 4xx naming `field`. An image whose header declares more than
 * `maxPixels` elements is refused before it is decoded.
 */
export async function decodeImage(
  bytes: Uint8Array,
  name: string,
  maxPixels: number,
  field = "image",
): Promise<DecodedImage> {
  let loaded;
  try {
    loaded = await readImage(bytes, name, { maxElements: maxPixels });
  } catch (e) {
    if (e instanceof CellposeError && e.code === "TOO_LARGE") {
      throw tooManyElements(name, e.value as number, "declared in its header", maxPixels, field);
    }
    if (e instanceof CellposeError) {
      throw new CellposeError(e.code, e.message, { field, got: e.value }, { cause: e });
    }
    throw new CellposeError(
      "BAD_FILE",
      `${name}: the image could not be read (${(e as Error)?.message ?? e})`,
      { field },
      { cause: e },
    );
  }
  const n = size(loaded.image.shape);
  if (n > maxPixels) {
    throw tooManyElements(name, n, `shape [${loaded.image.shape}]`, maxPixels, field);
  }
  return {
    image: loaded.image,
    axes: { channelAxis: loaded.channelAxis, zAxis: loaded.zAxis },
  };
}

/** Fills channel/Z axes from the file when not given, and resolves negative axes. */
export function withAxes(
  params: SegmentParams,
  fromFile: { channelAxis?: number; zAxis?: number },
  ndim: number,
): SegmentParams {
  const out = { ...params };
  for (const [key, field] of [["channelAxis", "channel_axis"], ["zAxis", "z_axis"]] as const) {
    const v = out[key] ?? fromFile[key];
    if (v === undefined) continue;
    if (v < -ndim || v >= ndim) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `${field} must be an axis of the ${ndim}-dimensional image (${-ndim}..${
          ndim - 1
        }), got ${v}`,
        { field, got: v },
      );
    }
    out[key] = v < 0 ? v + ndim : v;
  }
  if (out.channelAxis !== undefined && out.channelAxis === out.zAxis) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `channel_axis and z_axis must differ, both are ${out.zAxis}`,
      { field: "z_axis", got: out.zAxis },
    );
  }
  return out;
}
