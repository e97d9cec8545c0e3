/**
 * The network stage for 3-D segmentation (cellpose v4 `run_3D`): the normalised stack
 * [Z, Y, X, 3] is optionally resized (YX by `30 / diameter`, Z by `anisotropy * 30 / diameter`),
 * then the 2-D network runs on every YX, ZX and ZY slice. The flows of the three orientations
 * are summed into (dZ, dY, dX) (each component seen by two orientations) and the cell
 * probability is averaged over the three (pipeline.md section 6). Outputs are resized back to
 * the stack's size and optionally smoothed with a Gaussian of sigma `flow3DSmooth` along Z, Y
 * and X.
 *
 * @example
 * ```ts
 * import { runNetwork3D } from "./flows3d.ts";
 * import { createRunner } from "../models/runtime.ts";
 * const net = await createRunner("/tmp/tiny.onnx", { device: "cpu" });
 * const stack = { data: new Float32Array(8 * 40 * 50 * 3), shape: [8, 40, 50, 3] };
 * const { flows, cellprob } = await runNetwork3D(stack, net, { anisotropy: 2 });
 * console.log(flows.shape, cellprob.shape); // [3, 8, 40, 50] [8, 40, 50]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { transpose } from "../core/transpose.ts";
import type { NetRunner } from "../core/types.ts";
import { diameterScale, type NetworkOptions, type NetworkOutput, runNetwork } from "./flows.ts";
import { gaussianFilter1d } from "./gaussian.ts";
import { resizeImage } from "./resize.ts";
import { planTiles } from "./tiles.ts";

/** Options of {@link runNetwork3D}. */
export interface Network3DOptions extends NetworkOptions {
  /** [1] Z sampling relative to XY (2: planes twice as far apart as pixels) */
  anisotropy?: number;
  /** [0] sigma of the Gaussian smoothing of the flows along Z, Y and X (0: none) */
  flow3DSmooth?: number;
}

/** Resizes every Z plane of a channel-last stack [Z, Y, X, C] to h x w. */
function resizePlanes(s: NdArray<Float32Array>, h: number, w: number): NdArray<Float32Array> {
  const [nz, y, x, c] = s.shape;
  if (y === h && x === w) return s;
  const out = new Float32Array(nz * h * w * c);
  const n = y * x * c;
  for (let z = 0; z < nz; z++) {
    const plane = { data: s.data.subarray(z * n, (z + 1) * n), shape: [y, x, c] };
    out.set(resizeImage(plane, h, w).data, z * h * w * c);
  }
  return { data: out, shape: [nz, h, w, c] };
}

/** Resizes a channel-last stack [Z, Y, X, C] along Z to `nzOut` planes (each Y row's ZX image). */
function resizeZ(s: NdArray<Float32Array>, nzOut: number): NdArray<Float32Array> {
  const [nz, , x] = s.shape;
  if (nz === nzOut) return s;
  const t = transpose(s, [1, 0, 2, 3]); // [Y, Z, X, C]
  return transpose(resizePlanes(t, nzOut, x), [1, 0, 2, 3]);
}

/**
 * Runs the 2-D network over the three orthogonal slicings of a normalised stack [Z, Y, X, 3] and
 * returns flows [3, Z, Y, X] (dZ, dY, dX) and cell probability [Z, Y, X] at the stack's size.
 * Progress counts the tiles of all three orientations.
 */
export async function runNetwork3D(
  stack: NdArray<Float32Array>,
  net: NetRunner,
  options: Network3DOptions = {},
): Promise<NetworkOutput> {
  if (stack.shape.length !== 4 || stack.shape[3] !== 3) {
    throw new CellposeError(
      "BAD_SHAPE",
      `runNetwork3D takes a normalised [Z, Y, X, 3] stack, got [${stack.shape}]`,
      stack.shape,
    );
  }
  const [lz, ly, lx] = stack.shape;
  const r = diameterScale(options.diameter);
  const aniso = options.anisotropy ?? 1;
  const [nz, ny, nx] = [Math.trunc(lz * aniso * r), Math.trunc(ly * r), Math.trunc(lx * r)];
  if (nz < 1 || ny < 1 || nx < 1) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `diameter ${options.diameter} and anisotropy ${aniso} turn the ${lz} x ${ly} x ${lx} ` +
        `stack into ${nz} x ${ny} x ${nx} voxels`,
      options.diameter,
    );
  }
  const x = resizeZ(resizePlanes(stack, ny, nx), nz);

  // slicings: [planes, A, B] with the flow components they give (index into dZ, dY, dX)
  const orient = [
    { axes: [0, 1, 2, 3], dims: [nz, ny, nx], comp: [1, 2] },
    { axes: [1, 0, 2, 3], dims: [ny, nz, nx], comp: [0, 2] },
    { axes: [2, 0, 1, 3], dims: [nx, nz, ny], comp: [0, 1] },
  ];
  const tilesOf = ([p, a, b]: number[]) => {
    const plan = planTiles(a, b, { bsize: net.bsize, tileOverlap: options.tileOverlap });
    return p * plan.ys.length * plan.xs.length;
  };
  const total = orient.reduce((s, o) => s + tilesOf(o.dims), 0);
  const n = nz * ny * nx;
  const yf = new Float32Array(4 * n); // dZ, dY, dX, cellprob as [4, Z, Y, X]
  let offset = 0;
  for (const o of orient) {
    const slices = o.axes[0] === 0 ? x : transpose(x, o.axes);
    const out = await runNetwork(slices, net, {
      tileOverlap: options.tileOverlap,
      batchSize: options.batchSize,
      signal: options.signal,
      onProgress: (p) =>
        options.onProgress?.({ ...p, tilesDone: offset + (p.tilesDone ?? 0), tilesTotal: total }),
    });
    offset += tilesOf(o.dims);
    // back to [Z, Y, X]: the inverse of the slicing's first three axes
    const inv = [0, 1, 2].map((k) => o.axes.indexOf(k));
    const parts = [
      { src: out.flows.data.subarray(0, n), to: o.comp[0] },
      { src: out.flows.data.subarray(n), to: o.comp[1] },
      { src: out.cellprob.data, to: 3 },
    ];
    for (const { src, to } of parts) {
      const back = o.axes[0] === 0 ? src : transpose({ data: src, shape: o.dims }, inv).data;
      for (let i = 0; i < n; i++) yf[to * n + i] += back[i];
    }
  }
  for (let i = 3 * n; i < 4 * n; i++) yf[i] = Math.fround(yf[i] / 3);

  // back to the stack's size: channel-last [Z, Y, X, 4] through the same resizes
  let y4: NdArray<Float32Array> = { data: yf, shape: [4, nz, ny, nx] };
  if (nz !== lz || ny !== ly || nx !== lx) {
    const last = resizeZ(resizePlanes(transpose(y4, [1, 2, 3, 0]), ly, lx), lz);
    y4 = transpose(last, [3, 0, 1, 2]);
  }
  const m = lz * ly * lx;
  let flows: NdArray<Float32Array> = { data: y4.data.slice(0, 3 * m), shape: [3, lz, ly, lx] };
  const sigma = options.flow3DSmooth ?? 0;
  if (sigma > 0) {
    for (const axis of [1, 2, 3]) flows = gaussianFilter1d(flows, sigma, axis);
  }
  return { flows, cellprob: { data: y4.data.slice(3 * m), shape: [lz, ly, lx] } };
}
