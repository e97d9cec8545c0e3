/**
 * The parameter table: every segmentation and training parameter once, with its cellpose name,
 * its option key, type, range, default and help. The CLI flags and `--help`, the server's
 * validation, `/openapi.json`, the panel's form and the library's own checks are all derived from
 * it; no other module writes a default or a range.
 *
 * The work caps of the hardening issue live here too: `niter` has a maximum, `normalize.lowhigh`
 * takes at most one pair per network channel, and {@link MAX_RESCALED_PIXELS} bounds the image
 * that `diameter` asks the network to see.
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { CellposeError } from "./errors.ts";
 * import { checkParam, paramSpec, parseParams, SEGMENT_PARAMS } from "./params.ts";
 * assertEquals(paramSpec(SEGMENT_PARAMS, "flow_threshold").default, 0.4);
 * assertEquals(parseParams(SEGMENT_PARAMS, { flow_threshold: "0.5", channelAxis: 2 }), {
 *   flowThreshold: 0.5,
 *   channelAxis: 2,
 * });
 * assertThrows(() => checkParam(paramSpec(SEGMENT_PARAMS, "niter"), 1e6), CellposeError, "niter");
 * ```
 * @module
 */
import { badParameter, excerpt, EXCERPT_CHARS } from "./check.ts";
import { CellposeError } from "./errors.ts";
import type { NormalizeOptions } from "./types.ts";

/** The type of a parameter's value. */
export type ParamType = "number" | "integer" | "boolean" | "string" | "normalize";

/** One parameter. */
export interface ParamSpec {
  /** cellpose's name (snake_case): the CLI flag, the server's field, the panel's input */
  readonly name: string;
  /** the library's option key (camelCase), also accepted by the server */
  readonly key: string;
  /** value type */
  readonly type: ParamType;
  /** lower bound, inclusive unless `openMin` */
  readonly min?: number;
  /** upper bound, inclusive unless `openMax` */
  readonly max?: number;
  /** the lower bound itself is refused */
  readonly openMin?: boolean;
  /** the upper bound itself is refused */
  readonly openMax?: boolean;
  /** cellpose v4's default; absent: none (taken from the file, or automatic) */
  readonly default?: number | boolean | string;
  /** this value means "not given" (cellpose's 0 = automatic); accepted whatever the range */
  readonly unset?: number;
  /** one line of help */
  readonly help: string;
  /** the panel's label, for the parameters the panel shows */
  readonly label?: string;
  /** the panel's step for numbers */
  readonly step?: number;
}

/** Network input channels: `normalize.lowhigh` takes one pair, or one per channel. */
export const NETWORK_CHANNELS = 3;

/**
 * Largest image, in pixels per plane times planes, that `diameter` may rescale an image to
 * (an image that is already larger may still be shrunk): 2^26, an 8192 x 8192 plane.
 */
export const MAX_RESCALED_PIXELS = 2 ** 26;

/** The percentiles `normalize` maps to 0 and 1 unless told otherwise (cellpose's normalize99). */
export const NORM_PERCENTILE: readonly [number, number] = [1, 99];

/** Euler steps of the dynamics when `niter` is not given, before the diameter scaling. */
export const NITER_AUTO = 200;

/** Every segmentation parameter (cellpose v4's `CellposeModel.eval` arguments). */
export const SEGMENT_PARAMS: readonly ParamSpec[] = [
  {
    name: "diameter",
    key: "diameter",
    type: "number",
    min: 1,
    max: 10000,
    unset: 0,
    default: 0,
    label: "Diameter (px)",
    step: 1,
    help: "typical cell diameter in pixels: the image is resized so cells are 30 px across; " +
      "0: no resize (Cellpose-SAM needs no diameter; give one for very small or large cells)",
  },
  {
    name: "flow_threshold",
    key: "flowThreshold",
    type: "number",
    min: 0,
    max: 1000,
    default: 0.4,
    label: "Flow threshold",
    step: 0.05,
    help: "drop masks whose shape disagrees with the predicted flows by more than this; " +
      "raise it if cells are missing, 0 turns the check off",
  },
  {
    name: "cellprob_threshold",
    key: "cellprobThreshold",
    type: "number",
    min: -1000,
    max: 1000,
    default: 0,
    label: "Cell probability threshold",
    step: 0.5,
    help: "pixels with cell probability (logit) above this are cell; lower it (e.g. -2) for " +
      "more and larger masks, raise it for fewer",
  },
  {
    name: "min_size",
    key: "minSize",
    type: "integer",
    min: -1,
    max: 2 ** 31,
    default: 15,
    label: "Minimum size (px)",
    step: 1,
    help: "remove masks smaller than this many pixels; -1 keeps all",
  },
  {
    name: "max_size_fraction",
    key: "maxSizeFraction",
    type: "number",
    min: 0,
    openMin: true,
    max: 1,
    default: 0.4,
    help: "remove masks larger than this fraction of the image",
  },
  {
    name: "niter",
    key: "niter",
    type: "integer",
    min: 1,
    max: 10000,
    unset: 0,
    default: 0,
    label: "Iterations",
    step: 10,
    help: `steps of the flow dynamics; 0: automatic (${NITER_AUTO}, scaled with the diameter). ` +
      "Raise it (e.g. 2000) for very long cells",
  },
  {
    name: "tile_overlap",
    key: "tileOverlap",
    type: "number",
    min: 0,
    max: 0.5,
    openMax: true,
    default: 0.1,
    help: "fraction of overlap between neighbouring tiles",
  },
  {
    name: "bsize",
    key: "bsize",
    type: "integer",
    min: 16,
    max: 4096,
    default: 256,
    help: "tile size; must match the network",
  },
  {
    name: "batch_size",
    key: "batchSize",
    type: "integer",
    min: 1,
    max: 1024,
    default: 8,
    help: "tiles per network call; bounds the memory of the network stage (lower it if the GPU " +
      "runs out of memory)",
  },
  {
    name: "normalize",
    key: "normalize",
    type: "normalize",
    default: true,
    help: "percentile normalisation; false, or a JSON object " +
      `{"percentile": [${
        NORM_PERCENTILE.join(", ")
      }], "tile_norm_blocksize": 0, "norm3D": false, "invert": false, ` +
      `"lowhigh": [lo, hi] or up to ${NETWORK_CHANNELS} such pairs}`,
  },
  {
    name: "invert",
    key: "invert",
    type: "boolean",
    default: false,
    help: "invert the image intensities after normalising (dark cells on a bright background)",
  },
  {
    name: "channel_axis",
    key: "channelAxis",
    type: "integer",
    min: -4,
    max: 3,
    help: "axis of the channels in the image (0 = first). Default: taken from the file, else " +
      "guessed (the smaller of the first and last axes)",
  },
  {
    name: "z_axis",
    key: "zAxis",
    type: "integer",
    min: -4,
    max: 3,
    help: "axis of the Z planes of a stack (0 = first). Default: taken from the file",
  },
  {
    name: "do_3D",
    key: "do3D",
    type: "boolean",
    default: false,
    label: "3D (whole stack)",
    help: "segment a Z stack in 3D instead of plane by plane (needs a Z axis)",
  },
  {
    name: "anisotropy",
    key: "anisotropy",
    type: "number",
    min: 0,
    openMin: true,
    max: 1000,
    default: 1,
    help: "Z step divided by the XY pixel size, for do_3D",
  },
  {
    name: "flow3D_smooth",
    key: "flow3DSmooth",
    type: "number",
    min: 0,
    max: 100,
    default: 0,
    help: "Gaussian sigma smoothing the 3D flows, for do_3D",
  },
  {
    name: "stitch_threshold",
    key: "stitchThreshold",
    type: "number",
    min: 0,
    max: 1,
    default: 0,
    label: "Stitch threshold",
    step: 0.05,
    help: "for stacks without do_3D: segment each plane and join masks of neighbouring planes " +
      "that overlap by this IoU (0 = off; a stack needs this > 0 or 3D)",
  },
];

/** Every training parameter (cellpose v4's `train_seg` arguments) the CLI and server take. */
export const TRAIN_PARAMS: readonly ParamSpec[] = [
  {
    name: "pretrained_model",
    key: "pretrainedModel",
    type: "string",
    help: "the network to start from: a cpsam checkpoint path or a model name",
  },
  {
    name: "model_name",
    key: "modelName",
    type: "string",
    help: "name of the new model (default cellpose_<time>)",
  },
  {
    name: "n_epochs",
    key: "nEpochs",
    type: "integer",
    min: 1,
    max: 100000,
    default: 100,
    label: "Epochs",
    step: 1,
    help: "passes over the training set",
  },
  {
    name: "learning_rate",
    key: "learningRate",
    type: "number",
    min: 0,
    max: 1,
    default: 1e-5,
    label: "Learning rate",
    step: 1e-6,
    help: "peak learning rate (10 warm-up epochs, halvings at the end)",
  },
  {
    name: "weight_decay",
    key: "weightDecay",
    type: "number",
    min: 0,
    max: 10,
    default: 0.1,
    help: "AdamW weight decay",
  },
  {
    name: "batch_size",
    key: "batchSize",
    type: "integer",
    min: 1,
    max: 64,
    default: 1,
    help: "images per step",
  },
  {
    name: "nimg_per_epoch",
    key: "nimgPerEpoch",
    type: "integer",
    min: 1,
    max: 10_000,
    help: "images per epoch (default: all of them)",
  },
  {
    name: "min_train_masks",
    key: "minTrainMasks",
    type: "integer",
    min: 0,
    max: 2 ** 31,
    default: 5,
    help: "images with fewer masks are left out",
  },
  {
    name: "rdrop",
    key: "rdrop",
    type: "number",
    min: 0,
    max: 1,
    default: 0.4,
    help: "layer drop: block i skipped with probability rdrop * i / (depth - 1)",
  },
  {
    name: "scale_range",
    key: "scaleRange",
    type: "number",
    min: 0,
    max: 1.9,
    default: 0.5,
    help: "random scales in [1 - r/2, 1 + r/2]",
  },
  {
    name: "train_blocks",
    key: "trainBlocks",
    type: "integer",
    min: 0,
    max: 1000,
    help: "train only the last K blocks, the neck and the readout (fast on a CPU)",
  },
];

/** The spec named `name` (cellpose name or option key) in `table`; throws for an unknown one. */
export function paramSpec(table: readonly ParamSpec[], name: string): ParamSpec {
  const spec = table.find((p) => p.name === name || p.key === name);
  if (!spec) throw new Error(`no parameter ${name} in the table`);
  return spec;
}

/** The range of a number parameter as text: `[0, 1)`, `an integer in [1, 10000]`. */
export function paramRange(spec: ParamSpec, max = spec.max): string {
  const range = `${spec.openMin ? "(" : "["}${spec.min ?? "-inf"}, ${max ?? "inf"}${
    spec.openMax ? ")" : "]"
  }`;
  const what = `${spec.type === "integer" ? "an integer" : "a number"} in ${range}`;
  return spec.unset !== undefined ? `${what}, or ${spec.unset} (automatic)` : what;
}

/**
 * Checks a typed value against its spec; returns it, or throws BAD_PARAMETER naming `field`
 * (default: the spec's cellpose name). `max` overrides the table's upper bound (a server limit).
 */
export function checkParam<T>(spec: ParamSpec, value: T, field = spec.name, max = spec.max): T {
  switch (spec.type) {
    case "boolean":
      if (typeof value !== "boolean") throw badParameter(field, "true or false", value);
      return value;
    case "string":
      if (typeof value !== "string" || value === "") {
        throw badParameter(field, "a non-empty string", value);
      }
      return value;
    case "normalize":
      if (typeof value !== "boolean" && (typeof value !== "object" || value === null)) {
        throw badParameter(field, "a boolean or normalisation options", value);
      }
      return value;
  }
  const n = value as unknown;
  if (
    typeof n !== "number" || !Number.isFinite(n) ||
    (spec.type === "integer" && !Number.isInteger(n))
  ) {
    throw badParameter(field, paramRange(spec, max), value);
  }
  if (n === spec.unset) return value;
  const { min, openMin, openMax } = spec;
  const low = min !== undefined && (n < min || (openMin && n === min));
  const high = max !== undefined && (n > max || (openMax && n === max));
  if (low || high) throw badParameter(field, paramRange(spec, max), value);
  return value;
}

/** The table's defaults by option key (parameters without a default are left out). */
export function paramDefaults(
  table: readonly ParamSpec[],
): Record<string, number | boolean | string> {
  return Object.fromEntries(
    table.filter((p) => p.default !== undefined).map((p) => [p.key, p.default!]),
  );
}

/**
 * Validates raw parameters (strings from a query or form, or JSON values), by cellpose name or
 * option key, into options keyed by option key. An unknown name, a name given twice, a wrong type
 * or a value out of range throws BAD_PARAMETER naming the field, with a short excerpt of the
 * value. Values equal to a spec's `unset` are left out. `limits` lowers upper bounds by name;
 * `what` names the kind of parameter in messages ("training parameter").
 */
export function parseParams(
  table: readonly ParamSpec[],
  raw: Record<string, unknown>,
  { limits = {}, what = "parameter" }: { limits?: Record<string, number>; what?: string } = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(raw)) {
    const spec = table.find((p) => p.name === name || p.key === name);
    if (!spec) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `unknown ${what} ${name.slice(0, EXCERPT_CHARS)}; accepted: ${
          table.map((p) => p.name).join(", ")
        } (or their camelCase names)`,
        { field: name.slice(0, EXCERPT_CHARS), got: excerpt(value) },
      );
    }
    const earlier = seen.get(spec.key);
    if (earlier !== undefined) {
      throw new CellposeError("BAD_PARAMETER", `${what} ${name} given twice (also as ${earlier})`, {
        field: name,
        got: excerpt(value),
      });
    }
    seen.set(spec.key, name);
    const v = parseValue(spec, name, value, limits[spec.name]);
    if (v !== undefined) out[spec.key] = v;
  }
  return out;
}

function parseValue(spec: ParamSpec, field: string, value: unknown, max?: number): unknown {
  switch (spec.type) {
    case "boolean":
      return parseBool(field, value);
    case "normalize":
      return parseNormalize(field, value);
    case "string":
      return checkParam(spec, value, field);
  }
  const n = typeof value === "number"
    ? value
    : typeof value === "string" && value.trim() !== ""
    ? Number(value)
    : NaN;
  if (!Number.isFinite(n)) {
    throw badParameter(field, paramRange(spec, max ?? spec.max), value);
  }
  checkParam(spec, n, field, max ?? spec.max);
  return n === spec.unset ? undefined : n;
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
      const n = typeof x === "number" ? x : NaN;
      if (!Number.isInteger(n) || n < 0 || n > 2 ** 16) {
        throw badParameter(sub, "an integer in [0, 65536]", x);
      }
      out.tileNormBlocksize = n;
    } else if (k === "norm3D" || k === "norm_3D") {
      out.norm3D = parseBool(sub, x);
    } else if (k === "invert") {
      out.invert = parseBool(sub, x);
    } else if (k === "lowhigh") {
      if (Array.isArray(x) && Array.isArray(x[0])) {
        if (x.length > NETWORK_CHANNELS) {
          throw badParameter(
            sub,
            `[low, high] or at most ${NETWORK_CHANNELS} such pairs (one per channel)`,
            `${x.length} pairs`,
          );
        }
        out.lowhigh = x.map((pair, i) => numberPair(`${sub}[${i}]`, pair, -Infinity, Infinity));
      } else {
        out.lowhigh = numberPair(sub, x, -Infinity, Infinity);
      }
    } else {
      throw badParameter(
        sub.slice(0, 60),
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
