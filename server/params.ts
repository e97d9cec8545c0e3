/**
 * Segmentation parameters of the HTTP API: one table gives each parameter's cellpose name, its
 * camelCase twin, type, range and meaning; the validator and the OpenAPI description both read it.
 * Values arrive as strings (query string, multipart fields) or JSON values (a `params` field).
 *
 * @example
 * ```ts
 * import { parseSegmentParams } from "./params.ts";
 * const opts = parseSegmentParams({ flow_threshold: "0.5", channelAxis: 2 });
 * console.log(opts); // { flowThreshold: 0.5, channelAxis: 2 }
 * ```
 * @module
 */
import type { NormalizeOptions, SegmentOptions } from "../core/types.ts";
import { badParameter, excerpt, EXCERPT_CHARS } from "../core/check.ts";
import { CellposeError } from "../core/errors.ts";
import { checkJsonDepth } from "./json_body.ts";

/** Description of one parameter. */
export interface ParamSpec {
  /** cellpose's name (snake_case) */
  name: string;
  /** the {@link SegmentOptions} key (camelCase), also accepted as a name */
  key: keyof SegmentOptions;
  type: "number" | "integer" | "boolean" | "normalize";
  /** bounds, inclusive unless `openMin` / `openMax` */
  min?: number;
  max?: number;
  openMin?: boolean;
  openMax?: boolean;
  /** when set, this value means "not given" (cellpose's 0 = automatic) */
  unset?: number;
  description: string;
}

/** Every accepted segmentation parameter. */
export const SEGMENT_PARAMS: readonly ParamSpec[] = [
  {
    name: "diameter",
    key: "diameter",
    type: "number",
    min: 0,
    unset: 0,
    description: "cell diameter in pixels; the image is rescaled by 30/diameter (0: no rescale)",
  },
  {
    name: "flow_threshold",
    key: "flowThreshold",
    type: "number",
    min: 0,
    description: "maximum flow error of a mask [0.4]; 0 turns the check off",
  },
  {
    name: "cellprob_threshold",
    key: "cellprobThreshold",
    type: "number",
    min: -1000,
    max: 1000,
    description: "pixels with cell probability logit above this are followed [0.0]",
  },
  {
    name: "min_size",
    key: "minSize",
    type: "integer",
    min: -1,
    description: "masks smaller than this many pixels are removed [15]; -1 keeps all",
  },
  {
    name: "max_size_fraction",
    key: "maxSizeFraction",
    type: "number",
    min: 0,
    openMin: true,
    max: 1,
    description: "masks larger than this fraction of the image are removed [0.4]",
  },
  {
    name: "niter",
    key: "niter",
    type: "integer",
    min: 0,
    max: 100000,
    unset: 0,
    description: "Euler steps of the dynamics [200, scaled by diameter/30]; 0: automatic",
  },
  {
    name: "tile_overlap",
    key: "tileOverlap",
    type: "number",
    min: 0,
    max: 0.5,
    openMax: true,
    description: "fraction of overlap between tiles [0.1]",
  },
  {
    name: "bsize",
    key: "bsize",
    type: "integer",
    min: 16,
    max: 4096,
    description: "tile size; must match the network [256]",
  },
  {
    name: "batch_size",
    key: "batchSize",
    type: "integer",
    min: 1,
    max: 1024,
    description: "tiles per network batch [8]; bounds the memory of the network stage",
  },
  {
    name: "normalize",
    key: "normalize",
    type: "normalize",
    description: "percentile normalisation [true]; false, or a JSON object " +
      '{"percentile": [1, 99], "tile_norm_blocksize": 0, "norm3D": false, "invert": false, ' +
      '"lowhigh": [lo, hi]}',
  },
  {
    name: "invert",
    key: "invert",
    type: "boolean",
    description: "invert the image after normalising [false]",
  },
  {
    name: "channel_axis",
    key: "channelAxis",
    type: "integer",
    min: -4,
    max: 3,
    description: "axis of the channels in the image (default: from the file, else none)",
  },
  {
    name: "z_axis",
    key: "zAxis",
    type: "integer",
    min: -4,
    max: 3,
    description: "axis of Z in a stack (default: from the file, else none)",
  },
  {
    name: "do_3D",
    key: "do3D",
    type: "boolean",
    description: "3D segmentation of a stack [false]",
  },
  {
    name: "anisotropy",
    key: "anisotropy",
    type: "number",
    min: 0,
    openMin: true,
    max: 1000,
    description: "Z sampling relative to XY for do_3D [1.0]",
  },
  {
    name: "flow3D_smooth",
    key: "flow3DSmooth",
    type: "number",
    min: 0,
    max: 100,
    description: "Gaussian sigma smoothing 3D flows [0]",
  },
  {
    name: "stitch_threshold",
    key: "stitchThreshold",
    type: "number",
    min: 0,
    max: 1,
    description: "> 0: 2D masks per plane stitched across Z by this IoU [0]",
  },
];

const byName = new Map<string, ParamSpec>();
for (const p of SEGMENT_PARAMS) {
  byName.set(p.name, p);
  byName.set(p.key, p);
}

/** The segmentation options a request may set (no callbacks). */
export type SegmentParams = Omit<SegmentOptions, "onProgress" | "signal" | "device">;

/**
 * Validates raw request parameters (cellpose or camelCase names) into {@link SegmentParams}.
 * Throws a `BAD_PARAMETER` {@link CellposeError} naming the field for an unknown name, a name given
 * twice, a value of the wrong type or out of range.
 */
export function parseSegmentParams(raw: Record<string, unknown>): SegmentParams {
  const out: Record<string, unknown> = {};
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(raw)) {
    const spec = byName.get(name);
    if (!spec) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `unknown parameter ${excerpt(name)}; accepted: ${
          SEGMENT_PARAMS.map((p) => p.name).join(", ")
        } (or their camelCase names)`,
        { field: name.slice(0, EXCERPT_CHARS), got: excerpt(value) },
      );
    }
    const earlier = seen.get(spec.key);
    if (earlier !== undefined) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `parameter ${name} given twice (also as ${earlier})`,
        { field: name, got: excerpt(value) },
      );
    }
    seen.set(spec.key, name);
    const v = parseValue(spec, name, value);
    if (v !== undefined) out[spec.key] = v;
  }
  return out as SegmentParams;
}

function parseValue(spec: ParamSpec, field: string, value: unknown): unknown {
  switch (spec.type) {
    case "boolean":
      return parseBool(field, value);
    case "normalize":
      return parseNormalize(field, value);
    default: {
      const n = parseNumber(field, value, spec.type === "integer", spec);
      return n === spec.unset ? undefined : n;
    }
  }
}

function parseNumber(
  field: string,
  value: unknown,
  integer: boolean,
  bounds: Pick<ParamSpec, "min" | "max" | "openMin" | "openMax"> = {},
): number {
  const { min, max, openMin, openMax } = bounds;
  const n = typeof value === "number"
    ? value
    : typeof value === "string" && value.trim() !== ""
    ? Number(value)
    : NaN;
  const range = `${openMin ? "(" : "["}${min ?? "-inf"}, ${max ?? "inf"}${openMax ? ")" : "]"}`;
  const expected = `${integer ? "an integer" : "a number"} in ${range}`;
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw badParameter(field, expected, value);
  }
  const low = min !== undefined && (n < min || (openMin && n === min));
  const high = max !== undefined && (n > max || (openMax && n === max));
  if (low || high) {
    throw badParameter(field, expected, value);
  }
  return n;
}

function parseBool(field: string, value: unknown): boolean {
  if (typeof value === "boolean") return value;
  if (value === 1 || value === "1" || value === "true") return true;
  if (value === 0 || value === "0" || value === "false") return false;
  throw badParameter(field, "true or false", value);
}

function parseNormalize(field: string, value: unknown): boolean | NormalizeOptions {
  let v = value;
  if (typeof v === "string" && v.trim().startsWith("{")) {
    checkJsonDepth(v, field); // a value nested 200 000 deep is a 400, not a stack overflow
    try {
      v = JSON.parse(v);
    } catch {
      throw badParameter(field, "true, false or a JSON object", value);
    }
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return parseBool(field, v);
  const out: NormalizeOptions = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const sub = `${field}.${k}`;
    if (k === "percentile") {
      const p = numberPair(sub, x, 0, 100);
      if (p[0] >= p[1]) throw badParameter(sub, "[low, high] with low < high", x);
      out.percentile = p;
    } else if (k === "tile_norm_blocksize" || k === "tileNormBlocksize") {
      out.tileNormBlocksize = parseNumber(sub, x, true, { min: 0 });
    } else if (k === "norm3D" || k === "norm_3D") {
      out.norm3D = parseBool(sub, x);
    } else if (k === "invert") {
      out.invert = parseBool(sub, x);
    } else if (k === "lowhigh") {
      out.lowhigh = Array.isArray(x) && Array.isArray(x[0])
        ? x.map((pair, i) => numberPair(`${sub}[${i}]`, pair, -Infinity, Infinity))
        : numberPair(sub, x, -Infinity, Infinity);
    } else {
      throw badParameter(
        sub,
        "absent: known keys are percentile, tile_norm_blocksize, norm3D, invert, lowhigh",
        x,
      );
    }
  }
  return out;
}

function numberPair(field: string, x: unknown, min: number, max: number): [number, number] {
  const ok = Array.isArray(x) && x.length === 2 &&
    x.every((n) => typeof n === "number" && Number.isFinite(n) && n >= min && n <= max);
  if (!ok) throw badParameter(field, `[number, number] within ${min}..${max}`, x);
  return [x[0], x[1]];
}
