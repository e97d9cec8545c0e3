/**
 * cellpose's `_seg.npy`: the dictionary `io.masks_flows_to_seg` saves with `np.save` (a pickled
 * 0-d object array) and the cellpose GUI loads. Keys as cellpose v4 writes them: `outlines`
 * (label on each mask's outline pixels), `masks`, `chan_choose` ([0, 0]), `ismanual` (all
 * False), `filename`, `flows` and `diameter`. For 2D results with flows, `flows` holds cellpose's
 * five entries: the RGB flow picture `[1, H, W, 3]` (`plot.dx_to_circ`), cell probability as
 * uint8 `[1, H, W]` (normalize99, x255), zeros `[1, H, W, 3]`, an empty list, and float32
 * `[3, H, W]` = (dY, dX, cellprob). 3D results store masks and outlines with `flows` empty.
 *
 * @example
 * ```ts
 * import { encodeSegNpy } from "./seg_npy.ts";
 * const masks = { data: new Uint16Array(64).fill(1, 18, 30), shape: [8, 8] };
 * const bytes = encodeSegNpy({ masks, filename: "cells.png" });
 * // in Python: np.load("cells_seg.npy", allow_pickle=True).item()["masks"]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray, NumericArray } from "../core/ndarray.ts";
import { percentiles } from "../core/percentile.ts";
import { npyHeader } from "./npy.ts";
import { outlinePixels } from "./outlines.ts";
import { pickleObjectArray, pyBoolArray, pyFloat, type PyValue } from "./pickle_write.ts";

/** What goes into a `_seg.npy`. */
export interface SegContent {
  /** label image [H, W] or [Z, H, W] */
  masks: NdArray<NumericArray>;
  /** the image's path, stored as `filename` */
  filename: string;
  /** [2, H, W] (dY, dX) at image scale, 2D only; with `cellprob` fills `flows` */
  flows?: NdArray<Float32Array>;
  /** [H, W] cell probability logits */
  cellprob?: NdArray<Float32Array>;
  /** [30] stored as `diameter` */
  diameter?: number;
}

/** cellpose transforms.normalize99 then clip to [0, 1]. */
function unit99(x: Float32Array): Float32Array {
  const [lo, hi] = percentiles(x.slice(), [1, 99]);
  return x.map((v) => Math.max(0, Math.min(1, (v - lo) / (hi - lo))));
}

/** cellpose plot.dx_to_circ: flow angle as colour, magnitude (normalize99) as brightness. */
export function flowsToRgb(flows: NdArray<Float32Array>): NdArray<Uint8Array> {
  const [, h, w] = flows.shape;
  const n = h * w;
  const dy = flows.data.subarray(0, n), dx = flows.data.subarray(n, 2 * n);
  const mag = unit99(Float32Array.from(dy, (v, i) => Math.sqrt(v * v + dx[i] * dx[i])));
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = Math.atan2(dx[i], dy[i]) + Math.PI;
    for (let k = 0; k < 3; k++) {
      const c = ((Math.cos(a + (k * 2 * Math.PI) / 3) + 1) / 2) * mag[i];
      out[3 * i + k] = Math.floor(Math.max(0, Math.min(1, c)) * 255);
    }
  }
  return { data: out, shape: [h, w, 3] };
}

function segFlows(c: SegContent, h: number, w: number): PyValue[] {
  const { flows, cellprob } = c;
  if (!flows || !cellprob) return [];
  if (flows.shape.join() !== [2, h, w].join() || cellprob.shape.join() !== [h, w].join()) {
    throw new CellposeError(
      "BAD_SHAPE",
      `_seg.npy flows must be [2, ${h}, ${w}] and cellprob [${h}, ${w}], got [${flows.shape}] and [${cellprob.shape}]`,
      flows.shape,
    );
  }
  const rgb = flowsToRgb(flows);
  const prob = Uint8Array.from(unit99(cellprob.data), (v) => Math.floor(v * 255));
  const all = new Float32Array(3 * h * w);
  all.set(flows.data);
  all.set(cellprob.data, 2 * h * w);
  return [
    { data: rgb.data, shape: [1, h, w, 3] },
    { data: prob, shape: [1, h, w] },
    { data: new Uint8Array(h * w * 3), shape: [1, h, w, 3] },
    [],
    { data: all, shape: [3, h, w] },
  ];
}

/** The `_seg.npy` bytes for a result. */
export function encodeSegNpy(c: SegContent): Uint8Array {
  const { shape } = c.masks;
  if (shape.length !== 2 && shape.length !== 3) {
    throw new CellposeError(
      "BAD_SHAPE",
      `_seg.npy masks must be [H, W] or [Z, H, W], got [${shape}]`,
      shape,
    );
  }
  if (shape.length === 3 && c.flows) {
    throw new CellposeError("UNSUPPORTED", "_seg.npy flows are written for 2D results only", shape);
  }
  const [h, w] = shape.slice(-2);
  const planes = shape.length === 3 ? shape[0] : 1;
  const n = h * w;
  const outlines = new Float64Array(planes * n);
  let maxLabel = 0, maxOutline = 0;
  for (let z = 0; z < planes; z++) {
    const plane = { data: c.masks.data.subarray(z * n, (z + 1) * n), shape: [h, w] };
    const edge = outlinePixels(plane).data;
    for (let i = 0; i < n; i++) {
      const v = plane.data[i];
      if (v > maxLabel) maxLabel = v;
      if (edge[i]) outlines[z * n + i] = v, maxOutline = Math.max(maxOutline, v);
    }
  }
  // cellpose picks both dtypes from the outlines' maximum
  const Ctor = maxOutline < 2 ** 16 - 1 ? Uint16Array : Uint32Array;
  const dict: Record<string, PyValue> = {
    outlines: { data: Ctor.from(outlines), shape },
    masks: { data: Ctor.from(c.masks.data), shape },
    chan_choose: [0, 0],
    ismanual: pyBoolArray({ data: new Uint8Array(maxLabel), shape: [maxLabel] }),
    filename: c.filename,
    flows: segFlows(c, h, w),
    diameter: pyFloat(c.diameter ?? 30),
  };
  const pickle = pickleObjectArray(dict);
  const head = npyHeader("|O", []);
  const out = new Uint8Array(head.length + pickle.length);
  out.set(head);
  out.set(pickle, head.length);
  return out;
}

/**
 * Writes {@link encodeSegNpy}'s bytes to `path` (cellpose: `<base>_seg.npy` beside the image).
 *
 * @example
 * ```ts
 * import { writeSegNpy } from "./seg_npy.ts";
 * await writeSegNpy("/tmp/cells_seg.npy", { masks: { data: new Uint16Array(16), shape: [4, 4] }, filename: "cells.png" });
 * ```
 */
export async function writeSegNpy(path: string, c: SegContent): Promise<void> {
  await Deno.writeFile(path, encodeSegNpy(c));
}
