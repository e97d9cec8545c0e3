/**
 * Whole-image segmentation, cellpose v4's `CellposeModel.eval`: convert to H x W x 3 ->
 * normalise -> (resize by 30 / diameter) -> tiles -> network -> resize back -> flows to masks.
 * Stacks (`zAxis`) go either through 3-D segmentation (`do3D`: the network on YX, ZX and ZY
 * slices, 3-D dynamics) or through 2-D masks per plane stitched across Z (`stitchThreshold`).
 * Options use cellpose's names in camelCase and its defaults.
 *
 * @example
 * ```ts
 * import { segment } from "./segment.ts";
 * import { createRunner } from "../models/runtime.ts";
 * const model = await createRunner("/tmp/tiny.onnx", { device: "cpu" });
 * const image = { data: new Uint16Array(300 * 417 * 2), shape: [300, 417, 2] };
 * const r = await segment(image, { model, channelAxis: 2, onProgress: (p) => console.log(p.stage) });
 * console.log(r.masks.shape, r.nMasks, r.timings);
 * ```
 * @module
 */
import { badParameter, checkCancelled } from "../core/check.ts";
import type { NdArray } from "../core/ndarray.ts";
import type {
  DynamicsOptions,
  ImageArray,
  NetRunner,
  NormalizeOptions,
  SegmentOptions,
  SegmentResult,
} from "../core/types.ts";
import { computeMasks, DYNAMICS_DEFAULTS } from "../dynamics/compute_masks.ts";
import { maxLabel } from "../core/labels.ts";
import { checkParam, MAX_RESCALED_PIXELS, NITER_AUTO, SEGMENT_PARAMS } from "../core/params.ts";
import { convertImage } from "./channels.ts";
import { checkFinite, normalizeImage } from "./normalize.ts";
import { diameterScale, runNetwork } from "./flows.ts";
import { runNetwork3D } from "./flows3d.ts";
import { stitchPlanes } from "./stitch.ts";
import { fillHolesAndRemoveSmallMasks } from "../dynamics/fill_holes.ts";

/** Options of {@link segment}: {@link SegmentOptions} plus the network to run. */
export type SegmentWithModel = SegmentOptions & { model: NetRunner };

/**
 * Checks every option against the parameter table (`core/params.ts`) and the model's tile size;
 * throws BAD_PARAMETER naming the first bad one (by its option key).
 */
function checkOptions(o: SegmentWithModel): void {
  for (const spec of SEGMENT_PARAMS) {
    const v = (o as unknown as Record<string, unknown>)[spec.key];
    if (v !== undefined) checkParam(spec, v, spec.key);
  }
  if (o.bsize !== undefined && o.bsize !== o.model.bsize) {
    throw badParameter("bsize", `the model's tile size ${o.model.bsize}`, o.bsize);
  }
  if (o.maxPixels !== undefined && !(Number.isInteger(o.maxPixels) && o.maxPixels > 0)) {
    throw badParameter("maxPixels", "a positive integer", o.maxPixels);
  }
}

/**
 * Refuses a `diameter` that would rescale the image past the pixel budget (`maxPixels`, default
 * {@link MAX_RESCALED_PIXELS}); an image already larger than the budget may still be shrunk.
 */
function checkRescaledSize(x: ImageArray, o: SegmentWithModel): void {
  const scale = diameterScale(o.diameter);
  if (scale <= 1) return;
  const spatial = x.shape.slice(0, -1); // [H, W, 3] or [Z, H, W, 3] after conversion
  const planes = spatial.length === 3 ? spatial[0] : 1;
  const [h, w] = spatial.slice(-2);
  const rescaled = planes * Math.round(h * scale) * Math.round(w * scale);
  const budget = Math.max(o.maxPixels ?? MAX_RESCALED_PIXELS, planes * h * w);
  if (rescaled > budget) {
    throw badParameter(
      "diameter",
      `at least ${Math.ceil((30 * Math.sqrt((planes * h * w) / budget)) * 100) / 100} for this ` +
        `${w} x ${h}${planes > 1 ? ` x ${planes}` : ""} image (it would be rescaled to ` +
        `${rescaled} pixels, more than the budget of ${budget})`,
      o.diameter,
    );
  }
}

/**
 * Segments a 2-D image (any numeric type; H x W, H x W x C or C x H x W, see
 * {@link convertImage}) with the network `options.model` and returns the label image, the flows
 * and cell probability at image size, and milliseconds per stage.
 *
 * Progress goes to `options.onProgress` (stages "normalize", "network" with tile counts,
 * "dynamics", "done"); `options.signal` is checked between network batches and stages, and
 * aborting rejects with CellposeError CANCELLED. Bad options reject with BAD_PARAMETER naming
 * the option, NaN pixels with BAD_VALUE, unusable shapes with BAD_SHAPE. A stack needs `zAxis`
 * together with `do3D` or `stitchThreshold`; its masks, flows and cell probability are
 * [Z, H, W], [3, Z, H, W] (do3D) or [2, Z, H, W] (stitching) and [Z, H, W].
 *
 * @example
 * ```ts
 * import { segment } from "./segment.ts";
 * import { createRunner } from "../models/runtime.ts";
 * const model = await createRunner("/tmp/tiny.onnx", { device: "cpu" });
 * const image = { data: new Uint8Array(3 * 280 * 260), shape: [3, 280, 260] };
 * const { masks, flows, cellprob } = await segment(image, { model, diameter: 60 });
 * console.log(masks.shape, flows.shape, cellprob.shape); // [280, 260] [2, 280, 260] [280, 260]
 * ```
 */
export async function segment(
  image: ImageArray,
  options: SegmentWithModel,
): Promise<SegmentResult> {
  if (!options?.model || typeof options.model.run !== "function") {
    throw badParameter("model", "a NetRunner (see createRunner)", options?.model);
  }
  checkOptions(options);
  const stitch = (options.stitchThreshold ?? 0) > 0;
  const isStack = options.do3D === true || stitch;
  if (options.zAxis !== undefined && !isStack) {
    throw badParameter(
      "zAxis",
      "absent unless do3D or stitchThreshold is set (a stack)",
      options.zAxis,
    );
  }
  if (stitch && options.frame !== undefined) {
    throw badParameter("frame", "absent with stitchThreshold (per-plane dynamics)", options.frame);
  }
  if (isStack && options.zAxis === undefined) {
    throw badParameter(
      "zAxis",
      "the Z axis of the stack when do3D or stitchThreshold is set",
      undefined,
    );
  }
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  let t = t0;
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = now - t;
    t = now;
  };
  const cancelled = () => {
    checkCancelled(options.signal);
  };
  const progress = options.onProgress;

  cancelled();
  progress?.({ stage: "normalize" });
  const converted = convertImage(image, { channelAxis: options.channelAxis, zAxis: options.zAxis });
  checkRescaledSize(converted, options);
  lap("convert");
  const normalized = normalizeStage(converted, options);
  lap("normalize");

  cancelled();
  const net = {
    diameter: options.diameter,
    tileOverlap: options.tileOverlap,
    batchSize: options.batchSize,
    onProgress: progress,
    signal: options.signal,
  };
  const { flows, cellprob } = options.do3D
    ? await runNetwork3D(normalized, options.model, {
      ...net,
      anisotropy: options.anisotropy,
      flow3DSmooth: options.flow3DSmooth,
    })
    : await runNetwork(normalized, options.model, net);
  lap("network");

  cancelled();
  progress?.({ stage: "dynamics" });
  const dyn: DynamicsOptions = {
    niter: options.niter || Math.trunc(NITER_AUTO / diameterScale(options.diameter)),
    cellprobThreshold: options.cellprobThreshold,
    flowThreshold: options.flowThreshold,
    minSize: options.minSize,
    maxSizeFraction: options.maxSizeFraction,
    device: options.device,
  };
  const masks = stitch
    ? await stitchedMasks(flows, cellprob, dyn, options.stitchThreshold!)
    : await computeMasks(flows, cellprob, { ...dyn, frame: options.frame });
  lap("dynamics");
  const nMasks = maxLabel(masks.data);
  timings.total = performance.now() - t0;
  progress?.({ stage: "done", fraction: 1 });
  return { masks, flows, cellprob, nMasks, timings };
}

/**
 * 2-D masks per plane of flows [2, Z, H, W] (no size filter when Z > 1), stitched across Z by
 * IoU, then holes filled and masks smaller than `minSize` removed in 3-D (cellpose's
 * `stitch_threshold` path).
 */
async function stitchedMasks(
  flows: NdArray<Float32Array>,
  cellprob: NdArray<Float32Array>,
  dyn: DynamicsOptions,
  threshold: number,
): Promise<NdArray<Uint16Array | Uint32Array>> {
  const [nz, h, w] = cellprob.shape;
  const n = h * w;
  const labels = new Uint32Array(nz * n);
  for (let z = 0; z < nz; z++) {
    const dP = new Float32Array(2 * n);
    dP.set(flows.data.subarray(z * n, (z + 1) * n), 0);
    dP.set(flows.data.subarray((nz + z) * n, (nz + z + 1) * n), n);
    const plane = await computeMasks(
      { data: dP, shape: [2, h, w] },
      { data: cellprob.data.subarray(z * n, (z + 1) * n), shape: [h, w] },
      { ...dyn, minSize: nz > 1 ? -1 : dyn.minSize },
    );
    labels.set(plane.data, z * n);
  }
  if (nz > 1) {
    stitchPlanes(labels, [nz, h, w], threshold);
    fillHolesAndRemoveSmallMasks(labels, [nz, h, w], dyn.minSize ?? DYNAMICS_DEFAULTS.minSize);
  }
  return { data: maxLabel(labels) > 65535 ? labels : Uint16Array.from(labels), shape: [nz, h, w] };
}

/** Normalises (or only casts to float32 when `normalize` is false), as `CellposeModel.eval`. */
function normalizeStage(x: ImageArray, o: SegmentOptions): NdArray<Float32Array> {
  if (o.normalize === false) {
    if (o.invert) {
      throw badParameter(
        "invert",
        "false when normalize is false (cannot invert unnormalised data)",
        true,
      );
    }
    checkFinite(x.data);
    return { data: Float32Array.from(x.data), shape: x.shape };
  }
  const given: NormalizeOptions = typeof o.normalize === "object" ? o.normalize : {};
  return normalizeImage(x, {
    ...given,
    invert: given.invert ?? o.invert ?? false,
    // a 3-D segmentation always normalises the stack as a whole
    norm3D: o.do3D ? true : given.norm3D,
  });
}
