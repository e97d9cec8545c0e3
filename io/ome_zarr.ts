/**
 * OME-Zarr images read lazily through zarrita: a local OME-Zarr image folder (OME-NGFF 0.4 on
 * Zarr v2, or 0.5 on Zarr v3) opened as an {@link ImageSource} over its full-resolution level
 * (the largest dataset of the first `multiscales` entry). A region read decodes only the chunks it
 * touches (any codec zarrita knows: blosc, zstd, gzip, zlib, lz4, sharding ...), so the image is
 * never in memory whole. Each touched chunk is decoded whole, so the bytes a read would decode
 * are counted from the chunk shape first and bounded as the lazy TIFF reader bounds its strips
 * and tiles (`checkReadDecode`: 16 x the region or 2 x its whole rows, the chunk depth along Z
 * and T counted as read, at least 256 MiB, at most `maxBytes`, default 2^31); an array whose
 * single chunk passes `maxBytes` is refused when opened. Axes come from the metadata (`t`, `c`,
 * `z`, `y`, `x`): channels come back channel-last, one time point and one Z plane are picked for 2-D reads (`t`, `z` options), and
 * {@link OmeZarrSource.readVolume} reads a Z range of a 3-D image.
 *
 * @example
 * ```ts ignore
 * import { openOmeZarr } from "./ome_zarr.ts";
 * const src = await openOmeZarr("/data/slide.ome.zarr");
 * console.log(src.info.version, src.info.axes, src.height, src.width, src.channels);
 * const region = await src.read({ y0: 0, x0: 0, y1: 512, x1: 512 }); // [512, 512(, C)]
 * ```
 * @module
 */
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";
import { dirname, resolve } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { NumericArray } from "../core/ndarray.ts";
import type { ImageArray, ImageSource } from "../core/types.ts";
import { badFile, checkReadDecode, DEFAULT_MAX_DECODED_BYTES } from "./loaded.ts";

/** What the metadata of an OME-Zarr image says about its full-resolution level. */
export interface OmeZarrInfo {
  /** OME-NGFF version, e.g. "0.4" or "0.5" */
  version: string;
  /** 2 or 3 */
  zarrFormat: 2 | 3;
  /** one letter per dimension of the array, slowest first, e.g. "CYX", "TCZYX" */
  axes: string;
  /** the OME `axes` entries as written (name, type, unit) */
  axisMeta: { name: string; type?: string; unit?: string }[];
  /** path of the full-resolution dataset inside the image folder, e.g. "0" */
  level: string;
  /** every dataset path, as listed */
  levels: string[];
  /** the level's array shape */
  shape: number[];
  /** the level's chunk shape */
  chunks: number[];
  /** the level's data type as zarrita names it, e.g. "uint16" */
  dtype: string;
  /** the full-resolution level's `scale` transformation, one value per axis (1 when absent) */
  scale: number[];
}

/** An OME-Zarr image open for region reads; `read` gives plane `z` of time point `t`. */
export interface OmeZarrSource extends ImageSource {
  /** the image folder */
  readonly path: string;
  /** what the metadata says */
  readonly info: OmeZarrInfo;
  /** Z planes of the image (1 when it has no Z axis) */
  readonly depth: number;
  /** pixels of planes `[z0, z1)` of a region: [Z, h, w] or [Z, h, w, C] */
  readVolume(
    box: { z0: number; z1: number; y0: number; x0: number; y1: number; x1: number },
  ): Promise<ImageArray>;
  /** nothing to release (files are opened per chunk); there for symmetry with TIFF sources */
  close(): Promise<void>;
}

/** Options of {@link openOmeZarr}. */
export interface OmeZarrOptions {
  /** [0] time point read */
  t?: number;
  /** Z plane read by `read` (required for a 3-D image's 2-D reads; default 0 when Z is 1) */
  z?: number;
  /** [2^31] decoded bytes one region read may take at most (see the module doc) */
  maxBytes?: number;
}

type Json = Record<string, unknown>;

async function readJson(path: string): Promise<Json | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null ? v : undefined;
  } catch (e) {
    throw badFile(path, `not valid JSON (${(e as Error).message})`, e);
  }
}

/** The Zarr metadata of a folder: its format, node kind and attributes; undefined if none. */
async function zarrNode(
  dir: string,
): Promise<{ format: 2 | 3; kind: "array" | "group"; attrs: Json } | undefined> {
  const v3 = await readJson(`${dir}/zarr.json`);
  if (v3) {
    return {
      format: 3,
      kind: v3.node_type === "array" ? "array" : "group",
      attrs: (v3.attributes as Json) ?? {},
    };
  }
  const zarray = await readJson(`${dir}/.zarray`);
  const zgroup = await readJson(`${dir}/.zgroup`);
  const zattrs = await readJson(`${dir}/.zattrs`);
  if (!zarray && !zgroup && !zattrs) return undefined;
  return { format: 2, kind: zarray ? "array" : "group", attrs: zattrs ?? {} };
}

/** The OME attributes of a node: `attributes.ome` (0.5) or the attributes themselves (0.4). */
function omeAttrs(node: { format: 2 | 3; attrs: Json }): Json {
  const ome = node.attrs.ome;
  return node.format === 3 && typeof ome === "object" && ome !== null ? ome as Json : node.attrs;
}

const WHERE = "(in .zattrs for OME-Zarr 0.4, in zarr.json attributes.ome for 0.5)";

/** The reason a folder that is a Zarr but not an OME-Zarr image cannot be read, with a hint. */
async function notAnImage(path: string, node: { format: 2 | 3; kind: string; attrs: Json }) {
  const ome = omeAttrs(node);
  if (ome.plate) {
    return badFile(path, "an OME-Zarr plate (HCS): name one field's image, e.g. <plate>/A/1/0");
  }
  if (ome["bioformats2raw.layout"] !== undefined) {
    return badFile(path, `a bioformats2raw container: name one image in it, e.g. ${path}/0`);
  }
  if (node.kind === "array") {
    const parent = await zarrNode(dirname(path));
    const hint = parent && omeAttrs(parent).multiscales
      ? `; the folder above it, ${dirname(path)}, is the OME-Zarr image to name`
      : "";
    return badFile(
      path,
      `a plain Zarr array without OME-Zarr 'multiscales' metadata ${WHERE}${hint}`,
    );
  }
  return badFile(path, `a Zarr group without OME-Zarr 'multiscales' metadata ${WHERE}`);
}

/** Axis letters from the OME `axes` (names, or types for other names). */
function axisLetters(
  axes: unknown,
  ndim: number,
  path: string,
): { letters: string; meta: OmeZarrInfo["axisMeta"] } {
  let meta: OmeZarrInfo["axisMeta"];
  if (axes === undefined) {
    // OME-NGFF 0.1/0.2: always 5-D tczyx
    if (ndim !== 5) throw badFile(path, `no 'axes' in multiscales and ${ndim} dimensions (not 5)`);
    meta = [..."tczyx"].map((name) => ({ name }));
  } else if (Array.isArray(axes)) {
    meta = axes.map((a) => typeof a === "string" ? { name: a } : a as { name: string });
  } else {
    throw badFile(path, `multiscales 'axes' must be a list, got ${JSON.stringify(axes)}`);
  }
  if (meta.length !== ndim) {
    throw badFile(path, `multiscales lists ${meta.length} axes for a ${ndim}-D array`);
  }
  const spaceNames = meta.filter((a) => a.type === "space" || /^[zyx]$/i.test(a.name));
  const letters = meta.map((a) => {
    const name = String(a.name).toLowerCase();
    if (["t", "c", "z", "y", "x"].includes(name)) return name.toUpperCase();
    if (a.type === "time") return "T";
    if (a.type === "channel") return "C";
    if (a.type === "space") {
      // other names: the last two spatial axes are Y and X, a third is Z
      const k = spaceNames.length - spaceNames.indexOf(a);
      return k === 1 ? "X" : k === 2 ? "Y" : "Z";
    }
    throw badFile(path, `unsupported axis ${JSON.stringify(a)} (t, c, z, y, x are read)`);
  }).join("");
  if (!letters.endsWith("YX") || new Set(letters).size !== letters.length) {
    throw badFile(path, `axes '${letters}' must end with y, x and name each axis once`);
  }
  return { letters, meta };
}

const NUMERIC = new Set([
  "int8",
  "int16",
  "int32",
  "uint8",
  "uint16",
  "uint32",
  "float16",
  "float32",
  "float64",
]);

/**
 * Reads the metadata of the OME-Zarr image folder `path` (see {@link OmeZarrInfo}). Throws
 * BAD_FILE naming the folder when it is missing, not a Zarr, a Zarr without `multiscales`
 * metadata (with a hint for a plate, a bioformats2raw container or an array inside an image),
 * or of an unsupported data type.
 *
 * @example
 * ```ts ignore
 * import { readOmeZarrInfo } from "./ome_zarr.ts";
 * const info = await readOmeZarrInfo("/data/slide.ome.zarr");
 * console.log(info.level, info.shape, info.axes); // "0" [3, 20000, 20000] "CYX"
 * ```
 */
export async function readOmeZarrInfo(path: string): Promise<OmeZarrInfo> {
  const dir = resolve(path);
  try {
    if (!(await Deno.stat(dir)).isDirectory) {
      throw badFile(path, "not a Zarr folder (an OME-Zarr image is a directory)");
    }
  } catch (e) {
    if (e instanceof CellposeError) throw e;
    throw badFile(path, `cannot open (${(e as Error).message})`, e);
  }
  const node = await zarrNode(dir);
  if (!node) throw badFile(path, "not a Zarr folder (no zarr.json, .zgroup or .zattrs in it)");
  const ome = omeAttrs(node);
  const ms = ome.multiscales;
  if (!Array.isArray(ms) || ms.length === 0 || typeof ms[0] !== "object") {
    throw await notAnImage(path, node);
  }
  const first = ms[0] as Json;
  const datasets = first.datasets;
  if (!Array.isArray(datasets) || datasets.length === 0) {
    throw badFile(path, "multiscales[0] lists no datasets");
  }
  const levels = datasets.map((d) => String((d as Json).path));
  const version = String(ome.version ?? first.version ?? (node.format === 3 ? "0.5" : "0.4"));
  // the full-resolution level: the largest (the spec lists it first)
  let best = -1, bestSize = -1;
  const arrays: zarr.Array<zarr.DataType, FileSystemStore>[] = [];
  const store = new FileSystemStore(dir);
  for (let i = 0; i < levels.length; i++) {
    let arr;
    try {
      const loc = zarr.root(store).resolve(levels[i]);
      arr = node.format === 3
        ? await zarr.open.v3(loc, { kind: "array" })
        : await zarr.open.v2(loc, { kind: "array" });
    } catch (e) {
      throw badFile(path, `dataset '${levels[i]}' cannot be opened (${(e as Error).message})`, e);
    }
    arrays.push(arr);
    const size = arr.shape.reduce((a, b) => a * b, 1);
    if (size > bestSize) [best, bestSize] = [i, size];
  }
  const arr = arrays[best];
  const { letters, meta } = axisLetters(first.axes, arr.shape.length, path);
  if (!NUMERIC.has(arr.dtype)) {
    throw badFile(
      path,
      `unsupported data type ${arr.dtype} (8/16/32-bit integers and 16/32/64-bit floats)`,
    );
  }
  const transforms = (datasets[best] as Json).coordinateTransformations;
  const scaleEntry = Array.isArray(transforms)
    ? transforms.find((t) => (t as Json).type === "scale") as Json | undefined
    : undefined;
  const scale = Array.isArray(scaleEntry?.scale)
    ? (scaleEntry.scale as number[]).map(Number)
    : arr.shape.map(() => 1);
  return {
    version,
    zarrFormat: node.format,
    axes: letters,
    axisMeta: meta,
    level: levels[best],
    levels,
    shape: arr.shape,
    chunks: arr.chunks,
    dtype: arr.dtype,
    scale,
  };
}

function checkIndex(name: string, v: number, size: number): number {
  if (!Number.isInteger(v) || v < 0 || v >= size) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `${name} must be an integer in [0, ${size}), got ${v}`,
      v,
    );
  }
  return v;
}

/**
 * Opens the OME-Zarr image folder `path` for region reads (see the module doc). Errors as
 * {@link readOmeZarrInfo}; BAD_PARAMETER for a `t` or `z` outside the image, or when a 3-D
 * image is opened for 2-D reads without `z`. Region reads outside the image throw BAD_PARAMETER.
 *
 * @example
 * ```ts ignore
 * import { openOmeZarr } from "./ome_zarr.ts";
 * const src = await openOmeZarr("/data/embryo.ome.zarr", { z: 12 });
 * const plane = await src.read({ y0: 0, x0: 0, y1: src.height, x1: src.width });
 * const stack = await src.readVolume({ z0: 0, z1: src.depth, y0: 0, x0: 0, y1: 64, x1: 64 });
 * console.log(plane.shape, stack.shape); // [H, W] [Z, 64, 64]
 * ```
 */
export async function openOmeZarr(
  path: string,
  options: OmeZarrOptions = {},
): Promise<OmeZarrSource> {
  const info = await readOmeZarrInfo(path);
  const dir = resolve(path);
  const store = new FileSystemStore(dir);
  const loc = zarr.root(store).resolve(info.level);
  const arr = info.zarrFormat === 3
    ? await zarr.open.v3(loc, { kind: "array" })
    : await zarr.open.v2(loc, { kind: "array" });
  const dim = (letter: string) => {
    const i = info.axes.indexOf(letter);
    return i < 0 ? 1 : info.shape[i];
  };
  const height = dim("Y"), width = dim("X"), channels = dim("C"), depth = dim("Z");
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DECODED_BYTES;
  const itemBytes = Number(/\d+$/.exec(info.dtype)?.[0] ?? 64) / 8;
  const chunkBytes = info.chunks.reduce((a, b) => a * b, itemBytes);
  const layout = `chunks of [${info.chunks.join(", ")}] (${info.axes}), ${chunkBytes} bytes each`;
  if (chunkBytes > maxBytes) {
    throw badFile(
      path,
      `${layout}: one of them decodes to more than the ${maxBytes} bytes a read may decode ` +
        "(maxBytes); rewrite the array with smaller chunks",
    );
  }
  /** chunks along `letter` that the range [a, b) touches (all of C, one of T) */
  const touched = (letter: string, a: number, b: number) => {
    const c = info.chunks[info.axes.indexOf(letter)];
    return Math.floor((b - 1) / c) - Math.floor(a / c) + 1;
  };
  const t = checkIndex("t", options.t ?? 0, dim("T"));
  const plane = options.z ?? (depth === 1 ? 0 : undefined);
  if (plane !== undefined) checkIndex("z", plane, depth);

  const checkRect = (r: { y0: number; x0: number; y1: number; x1: number }) => {
    const { y0, x0, y1, x1 } = r;
    if (!(0 <= y0 && y0 < y1 && y1 <= height && 0 <= x0 && x0 < x1 && x1 <= width)) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `region [${y0}, ${y1}) x [${x0}, ${x1}) must be a non-empty part of the ` +
          `${height} x ${width} image`,
        r,
      );
    }
  };

  /** Planes z0..z1 of a region, channel-last, in the array's own type. */
  const readBox = async (
    z0: number,
    z1: number,
    r: { y0: number; x0: number; y1: number; x1: number },
  ) => {
    const selection = [...info.axes].map((a) =>
      a === "T"
        ? t
        : a === "C"
        ? null
        : a === "Z"
        ? zarr.slice(z0, z1)
        : a === "Y"
        ? zarr.slice(r.y0, r.y1)
        : zarr.slice(r.x0, r.x1)
    );
    const span: Record<string, [number, number]> = {
      T: [t, t + 1],
      C: [0, channels],
      Z: [z0, z1],
      Y: [r.y0, r.y1],
      X: [r.x0, r.x1],
    };
    const nChunks = [...info.axes].reduce((n, a) => n * touched(a, ...span[a]), 1);
    // chunks deeper than the planes read (Z, T) are decoded whole, whatever the reader: that
    // depth counts as read, as whole rows do for strips
    const planes = ["Z", "T"].reduce((n, a) => {
      const i = info.axes.indexOf(a);
      return i < 0 ? n : n * touched(a, ...span[a]) * info.chunks[i];
    }, 1);
    const rows = planes * (r.y1 - r.y0) * channels * itemBytes;
    checkReadDecode(
      path,
      r,
      {
        bytes: nChunks * chunkBytes,
        regionBytes: rows * (r.x1 - r.x0),
        rowsBytes: rows * width,
        maxBytes,
      },
      layout,
      "rewrite the array with smaller chunks",
    );
    let chunk;
    try {
      chunk = await zarr.get(arr, selection);
    } catch (e) {
      throw badFile(path, `cannot read region (${(e as Error).message})`, e);
    }
    // the result keeps the non-T axes in array order; strides per letter
    const kept = [...info.axes].filter((a) => a !== "T");
    const stride: Record<string, number> = { C: 0, Z: 0 };
    kept.forEach((a, i) => (stride[a] = chunk.stride[i]));
    const nz = z1 - z0, h = r.y1 - r.y0, w = r.x1 - r.x0, nc = channels;
    const src = chunk.data as unknown as NumericArray;
    const ctor = (src instanceof Float32Array || src instanceof Float64Array ||
        ArrayBuffer.isView(src) && src.constructor.name === "Float16Array")
      ? (src instanceof Float64Array ? Float64Array : Float32Array)
      : src.constructor as { new (n: number): NumericArray };
    const out = new ctor(nz * h * w * nc);
    const { C: sc, Z: sz, Y: sy, X: sx } = stride;
    let k = 0;
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < h; y++) {
        const base = z * sz + y * sy;
        for (let x = 0; x < w; x++) {
          const p = base + x * sx;
          for (let c = 0; c < nc; c++) out[k++] = src[p + c * sc];
        }
      }
    }
    return { data: out, nz, h, w };
  };

  return {
    path,
    info,
    height,
    width,
    channels,
    depth,
    blockWidth: info.chunks[info.axes.indexOf("X")],
    async read(r): Promise<ImageArray> {
      checkRect(r);
      if (plane === undefined) {
        throw new CellposeError(
          "BAD_PARAMETER",
          `${path} is a 3-D image (${depth} Z planes): give the plane to read (z) or use readVolume`,
          depth,
        );
      }
      const { data, h, w } = await readBox(plane, plane + 1, r);
      return { data, shape: channels === 1 ? [h, w] : [h, w, channels] };
    },
    async readVolume(box): Promise<ImageArray> {
      checkRect(box);
      if (!(Number.isInteger(box.z0) && 0 <= box.z0 && box.z0 < box.z1 && box.z1 <= depth)) {
        throw new CellposeError(
          "BAD_PARAMETER",
          `planes [${box.z0}, ${box.z1}) must be a non-empty part of the ${depth} Z planes`,
          box,
        );
      }
      const { data, nz, h, w } = await readBox(box.z0, box.z1, box);
      return { data, shape: channels === 1 ? [nz, h, w] : [nz, h, w, channels] };
    },
    close: () => Promise.resolve(),
  };
}
