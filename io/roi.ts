/**
 * ImageJ ROIs: one `.roi` per mask outline in ImageJ's binary format (as ImageJ's `RoiEncoder`
 * writes it, version 228: 64-byte big-endian header "Iout", bounds, int16 coordinates relative
 * to the top-left corner, then the 64-byte header 2 holding the ROI name), zipped as a RoiSet
 * that Fiji's ROI Manager opens. The polygons are {@link masksToOutlines}' (the same points as
 * cellpose's `save_rois`); masks with an empty outline are left out, as cellpose does. For a
 * `[Z, H, W]` stack every plane is outlined and each ROI carries its slice position.
 *
 * @example
 * ```ts
 * import { encodeRoiZip } from "./roi.ts";
 * const masks = { data: new Uint16Array(100), shape: [10, 10] };
 * masks.data.fill(1, 22, 27); masks.data.fill(1, 32, 37); masks.data.fill(1, 42, 47);
 * const zip = encodeRoiZip(masks); // RoiSet with "0001.roi"
 * ```
 * @module
 */
import { zipSync } from "fflate";
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { masksToOutlines } from "./outlines.ts";

/** The entries' modification time: the earliest a zip can store (1980-01-01). */
const ZIP_TIME = new Date(1980, 0, 1);

/** ImageJ ROI types this writer produces. */
export type RoiType = "polygon" | "freehand";

/** Options of {@link encodeRoi}. */
export interface RoiOptions {
  /** ROI name stored in the file (ImageJ shows it in the ROI Manager) */
  name?: string;
  /** ["polygon"] ImageJ type 0; "freehand" (type 7) is what cellpose's roifile path writes */
  type?: RoiType;
  /** 1-based stack position (slice), 0 = none */
  position?: number;
}

const VERSION = 228;
const TYPES: Record<RoiType, number> = { polygon: 0, freehand: 7 };

/** Encodes one polygon (interleaved integer x0,y0,x1,y1,...) as ImageJ `.roi` bytes. */
export function encodeRoi(xy: ArrayLike<number>, options: RoiOptions = {}): Uint8Array {
  const n = xy.length / 2;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new CellposeError(
      "BAD_VALUE",
      `ROI polygon needs 1 to 65535 x,y pairs, got ${xy.length} values`,
      xy.length,
    );
  }
  let left = Infinity, top = Infinity, right = -Infinity, bottom = -Infinity;
  for (let i = 0; i < n; i++) {
    left = Math.min(left, xy[2 * i]), right = Math.max(right, xy[2 * i]);
    top = Math.min(top, xy[2 * i + 1]), bottom = Math.max(bottom, xy[2 * i + 1]);
  }
  if (left < 0 || top < 0 || right > 32767 || bottom > 32767) {
    throw new CellposeError(
      "BAD_VALUE",
      `ROI coordinates must lie in 0..32767, got x ${left}..${right}, y ${top}..${bottom}`,
      [left, top, right, bottom],
    );
  }
  const name = options.name ?? "";
  const hdr2 = 64 + 4 * n;
  const bytes = new Uint8Array(hdr2 + 64 + 2 * name.length);
  const v = new DataView(bytes.buffer);
  bytes.set([0x49, 0x6f, 0x75, 0x74]); // "Iout"
  v.setInt16(4, VERSION);
  bytes[6] = TYPES[options.type ?? "polygon"];
  v.setInt16(8, top);
  v.setInt16(10, left);
  v.setInt16(12, bottom);
  v.setInt16(14, right);
  v.setUint16(16, n);
  v.setInt32(56, options.position ?? 0);
  v.setInt32(60, hdr2); // header 2 offset
  for (let i = 0; i < n; i++) {
    v.setInt16(64 + 2 * i, xy[2 * i] - left);
    v.setInt16(64 + 2 * n + 2 * i, xy[2 * i + 1] - top);
  }
  if (name) {
    v.setInt32(hdr2 + 16, hdr2 + 64); // name offset
    v.setInt32(hdr2 + 20, name.length); // name length in UTF-16 units
    for (let i = 0; i < name.length; i++) v.setUint16(hdr2 + 64 + 2 * i, name.charCodeAt(i));
  }
  return bytes;
}

/**
 * A RoiSet zip of every mask's outline: 2D masks give `0001.roi`, `0002.roi`... named by label
 * (zero-padded to at least 4 digits); a `[Z, H, W]` stack gives `<slice>-<label>.roi` with the
 * 1-based slice as the ROI position.
 */
export function encodeRoiZip(
  masks: NdArray<NumericArray>,
  options: { type?: RoiType } = {},
): Uint8Array {
  const { shape } = masks;
  if (shape.length !== 2 && shape.length !== 3) {
    throw new CellposeError(
      "BAD_SHAPE",
      `ROIs need masks [H, W] or [Z, H, W], got shape [${shape}]`,
      shape,
    );
  }
  const planes = shape.length === 3 ? shape[0] : 1;
  const [h, w] = shape.slice(-2);
  const files: Record<string, Uint8Array> = {};
  for (let z = 0; z < planes; z++) {
    const plane = { data: masks.data.subarray(z * h * w, (z + 1) * h * w), shape: [h, w] };
    for (const o of masksToOutlines(plane)) {
      if (o.xy.length === 0) continue;
      const label = String(o.label).padStart(4, "0");
      const name = planes > 1 ? `${String(z + 1).padStart(4, "0")}-${label}` : label;
      files[`${name}.roi`] = encodeRoi(o.xy, {
        name,
        type: options.type,
        position: planes > 1 ? z + 1 : 0,
      });
    }
  }
  // a fixed time stamp: the same masks give the same bytes (CLI, server and panel agree)
  return zipSync(files, { level: 6, mtime: ZIP_TIME });
}

/**
 * Writes {@link encodeRoiZip}'s bytes to `path` (cellpose names it `<base>_rois.zip`).
 *
 * @example
 * ```ts
 * import { writeRoiZip } from "./roi.ts";
 * await writeRoiZip("/tmp/cells_rois.zip", { data: new Uint16Array(16).fill(1), shape: [4, 4] });
 * ```
 */
export async function writeRoiZip(
  path: string,
  masks: NdArray<NumericArray>,
  options: { type?: RoiType } = {},
): Promise<void> {
  await Deno.writeFile(path, encodeRoiZip(masks, options));
}
