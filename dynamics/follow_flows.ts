/**
 * Euler integration of pixels through the flow field, reproducing cellpose v4 `steps_interp`
 * (PyTorch `grid_sample(align_corners=False, padding_mode="zeros")` on normalised coordinates)
 * operation by operation in float32 (`Math.fround`), so that final positions match the
 * reference's truncated integers. See {@link DynamicsBackend.followFlows} for the semantics.
 *
 * Points advance in blocks (so that their independent float chains overlap on the CPU). A point
 * whose state repeats has entered a cycle (Brent's detection, plus an immediate check for periods
 * 1 and 2), and only the remainder of its steps modulo the period is run: exact, since the state
 * is the point's coordinates alone. Most points of a converged cell stop after about 60 steps.
 *
 * @example
 * ```ts
 * import { followFlowsCpu } from "./follow_flows.ts";
 * // 1 x 8 row, flow +1 px/step in x everywhere: pixel 2 walks to the right edge
 * const flow = new Float32Array(32).fill(1, 16);
 * const end = followFlowsCpu(flow, [2, 8], new Uint32Array([2]), 10);
 * console.log(end); // Int32Array [0, 7]
 * ```
 * @module
 */
import { checkFlowShape } from "../core/backend.ts";
import type { FollowFrame } from "../core/types.ts";
import { WASM_FOLLOW, wasmFollow2D } from "./follow_wasm.ts";

const f = Math.fround;

/** Normalised start coordinate of pixel `i` (`lm1` = float32(L - 1)), in float32 as PyTorch. */
function normalise(i: number, lm1: number): number {
  return f(f(f(i / lm1) * 2) - 1);
}

/** Pixel coordinate (truncated) of normalised `u`. */
function unnormalise(u: number, lm1: number): number {
  return f(f(f(u + 1) * 0.5) * lm1) | 0;
}

function clamp1(v: number): number {
  return v < -1 ? -1 : v > 1 ? 1 : v;
}

/**
 * TypeScript reference of {@link DynamicsBackend.followFlows}: returns the truncated final
 * positions, `ndim` per cell interleaved (local pixels; with a `frame` they may lie outside
 * `shape`).
 * @param wasm follow 2-D flows in WebAssembly (bit-identical, faster; default unless
 * `CELLPOSE_NO_WASM=1`, see `follow_wasm.ts`); false runs this TypeScript reference
 */
export function followFlowsCpu(
  flow: Float32Array,
  shape: readonly number[],
  cells: Uint32Array,
  niter: number,
  frame?: FollowFrame,
  wasm: boolean = WASM_FOLLOW,
): Int32Array {
  checkFlowShape(shape);
  const origin = frame?.origin ?? shape.map(() => 0);
  const full = frame?.fullShape ?? shape;
  return shape.length === 2
    ? follow2D(flow, shape[0], shape[1], cells, niter, origin, full, wasm)
    : follow3D(flow, shape[0], shape[1], shape[2], cells, niter, origin, full);
}

/** One Euler step: reads the state at `u[o .. o + ndim)`, writes the next one to `st`. */
type Step = (u: Float64Array, o: number, st: Float64Array) => void;

/**
 * Runs `niter` steps for every point, in blocks that advance together (their independent float
 * chains overlap on the CPU), stopping a point once its state repeats: the state then cycles,
 * and only the remaining steps modulo the period are run.
 * @param start writes the start state of point `j` to `u[o .. o + ndim)`
 * @returns final states, `ndim` per point
 */
function integrate(
  ndim: number,
  np: number,
  niter: number,
  start: (j: number, u: Float64Array, o: number) => void,
  step: Step,
): Float64Array {
  const B = 256;
  // per point of a block: state, previous state, checkpoint (Brent's cycle detection)
  const u = new Float64Array(B * ndim), q = new Float64Array(B * ndim);
  const c = new Float64Array(B * ndim);
  const ct = new Int32Array(B), power = new Int32Array(B), lam = new Int32Array(B);
  const active = new Int32Array(B);
  const st = new Float64Array(ndim), tmp = new Float64Array(ndim);
  const out = new Float64Array(np * ndim);
  const d3 = ndim === 3;
  const same = (a: Float64Array, ao: number, b: Float64Array, bo: number) =>
    a[ao] === b[bo] && a[ao + 1] === b[bo + 1] && (!d3 || a[ao + 2] === b[bo + 2]);
  for (let b0 = 0; b0 < np; b0 += B) {
    const nb = Math.min(B, np - b0);
    for (let j = 0; j < nb; j++) {
      start(b0 + j, u, j * ndim);
      for (let k = 0; k < ndim; k++) (c[j * ndim + k] = u[j * ndim + k]), (q[j * ndim + k] = NaN);
      ct[j] = lam[j] = 0;
      power[j] = 1;
      active[j] = j;
    }
    let nActive = nb;
    for (let t = 0; t < niter && nActive > 0; t++) {
      let kept = 0;
      const done = t + 1; // steps taken after this one
      for (let a = 0; a < nActive; a++) {
        const j = active[a], o = j * ndim;
        step(u, o, st);
        if (same(st, 0, u, o)) continue; // fixed point
        if (same(st, 0, q, o)) {
          // 2-cycle: an even number of steps left lands on the new state, an odd one on the old
          if ((niter - done) % 2 === 0) u.set(st, o);
          continue;
        }
        q[o] = u[o], q[o + 1] = u[o + 1], u[o] = st[0], u[o + 1] = st[1];
        if (d3) (q[o + 2] = u[o + 2]), (u[o + 2] = st[2]);
        if (same(u, o, c, o)) {
          // periodic since the checkpoint: only the remainder of the steps matters
          const left = (niter - done) % (done - ct[j]);
          for (let r = 0; r < left; r++) step(u, o, tmp), u.set(tmp, o);
          continue;
        }
        if (++lam[j] === power[j]) {
          for (let k = 0; k < ndim; k++) c[o + k] = u[o + k];
          ct[j] = done, power[j] *= 2, lam[j] = 0;
        }
        active[kept++] = j;
      }
      nActive = kept;
    }
    out.set(u.subarray(0, nb * ndim), b0 * ndim);
  }
  return out;
}

function follow2D(
  flow: Float32Array,
  ly: number,
  lx: number,
  cells: Uint32Array,
  niter: number,
  [oy, ox]: readonly number[],
  [fy, fx]: readonly number[],
  wasm: boolean,
): Int32Array {
  const n = ly * lx;
  // (the kernel takes L/2 and the fractions as float32 values: exact below 2^23 pixels a side)
  const job = wasm && fy < 2 ** 23 && fx < 2 ** 23 ? wasmFollow2D(n, cells.length) : undefined;
  // normalised units are the full image's; the block's field sits at `origin` in it
  const sy = f(2 / (fy - 1)), sx = f(2 / (fx - 1));
  // the field in normalised units, interleaved (x, y) per pixel for locality
  const im = job?.im ?? new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    im[2 * i] = flow[n + i] * sx;
    im[2 * i + 1] = flow[i] * sy;
  }
  const lym1 = f(fy - 1), lxm1 = f(fx - 1);
  const hy = fy / 2, hx = fx / 2;
  const start = (j: number, u: Float64Array | Float32Array, o: number) => {
    u[o] = normalise(Math.floor(cells[j] / lx) + oy, lym1);
    u[o + 1] = normalise(cells[j] % lx + ox, lxm1);
  };
  const step: Step = (u, o, st) => {
    const uy = u[o], ux = u[o + 1];
    // grid_sample, vectorised CPU kernel: ((u + 1) * L/2) - 0.5, bilinear, zero padding
    // (- 0.5 is exact in float32 here; so are i - floor(i) and 1 - that when i >= 0.5)
    const iy = f(f(uy + 1) * hy) - 0.5;
    const ix = f(f(ux + 1) * hx) - 0.5;
    const gy0 = ((iy + 1) | 0) - 1, gx0 = ((ix + 1) | 0) - 1; // floor, as i >= -0.5
    let nn = iy - gy0, w = ix - gx0, s = 1 - nn, e = 1 - w;
    if (iy < 0.5) (nn = f(nn)), (s = f(1 - nn));
    if (ix < 0.5) (w = f(w)), (e = f(1 - w));
    const wnw = f(s * e), wne = f(s * w), wsw = f(nn * e), wse = f(nn * w);
    const y0 = gy0 - oy, x0 = gx0 - ox; // corner in the block
    const k = 2 * (y0 * lx + x0);
    let gx, gy;
    if (y0 >= 0 && x0 >= 0 && y0 + 1 < ly && x0 + 1 < lx) {
      const k2 = k + 2 * lx;
      gx = f(f(f(f(im[k] * wnw) + f(im[k + 2] * wne)) + f(im[k2] * wsw)) + f(im[k2 + 2] * wse));
      gy = f(
        f(f(f(im[k + 1] * wnw) + f(im[k + 3] * wne)) + f(im[k2 + 1] * wsw)) + f(im[k2 + 3] * wse),
      );
    } else {
      let ax = 0, ay = 0, bx = 0, by = 0, cx = 0, cy = 0, dx = 0, dy = 0;
      const yIn0 = y0 >= 0 && y0 < ly, yIn1 = y0 >= -1 && y0 + 1 < ly;
      const xIn0 = x0 >= 0 && x0 < lx, xIn1 = x0 >= -1 && x0 + 1 < lx;
      if (yIn0 && xIn0) (ax = im[k]), (ay = im[k + 1]);
      if (yIn0 && xIn1) (bx = im[k + 2]), (by = im[k + 3]);
      if (yIn1 && xIn0) (cx = im[k + 2 * lx]), (cy = im[k + 2 * lx + 1]);
      if (yIn1 && xIn1) (dx = im[k + 2 * lx + 2]), (dy = im[k + 2 * lx + 3]);
      gx = f(f(f(f(ax * wnw) + f(bx * wne)) + f(cx * wsw)) + f(dx * wse));
      gy = f(f(f(f(ay * wnw) + f(by * wne)) + f(cy * wsw)) + f(dy * wse));
    }
    st[0] = clamp1(f(uy + gy));
    st[1] = clamp1(f(ux + gx));
  };
  let u: Float32Array | Float64Array;
  if (job) {
    for (let j = 0; j < cells.length; j++) start(j, job.pts, 2 * j);
    job.run(cells.length, niter, ly, lx, [oy, ox], [fy, fx]);
    u = job.pts;
  } else {
    u = integrate(2, cells.length, niter, start, step);
  }
  const out = new Int32Array(u.length);
  for (let j = 0; j < cells.length; j++) {
    out[2 * j] = unnormalise(u[2 * j], lym1) - oy;
    out[2 * j + 1] = unnormalise(u[2 * j + 1], lxm1) - ox;
  }
  return out;
}

function follow3D(
  flow: Float32Array,
  lz: number,
  ly: number,
  lx: number,
  cells: Uint32Array,
  niter: number,
  [oz, oy, ox]: readonly number[],
  [fz, fy, fx]: readonly number[],
): Int32Array {
  const n = lz * ly * lx, plane = ly * lx;
  const sz = f(2 / (fz - 1)), sy = f(2 / (fy - 1)), sx = f(2 / (fx - 1));
  const im = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    im[3 * i] = flow[2 * n + i] * sx;
    im[3 * i + 1] = flow[n + i] * sy;
    im[3 * i + 2] = flow[i] * sz;
  }
  const lzm1 = f(fz - 1), lym1 = f(fy - 1), lxm1 = f(fx - 1);
  const start = (j: number, u: Float64Array, o: number) => {
    const c = cells[j];
    u[o] = normalise(Math.floor(c / plane) + oz, lzm1);
    u[o + 1] = normalise(Math.floor(c / lx) % ly + oy, lym1);
    u[o + 2] = normalise(c % lx + ox, lxm1);
  };
  const step: Step = (u, o, st) => {
    const uz = u[o], uy = u[o + 1], ux = u[o + 2];
    // grid_sampler_3d_cpu_impl (scalar): ((u + 1) * L - 1) / 2, trilinear, zero padding
    const iz = f(f(f(f(uz + 1) * fz) - 1) / 2);
    const iy = f(f(f(f(uy + 1) * fy) - 1) / 2);
    const ix = f(f(f(f(ux + 1) * fx) - 1) / 2);
    const z0 = Math.floor(iz), y0 = Math.floor(iy), x0 = Math.floor(ix);
    const wx0 = f(x0 + 1 - ix), wx1 = f(ix - x0);
    const wy0 = f(y0 + 1 - iy), wy1 = f(iy - y0);
    const wz0 = f(z0 + 1 - iz), wz1 = f(iz - z0);
    let gx = 0, gy = 0, gz = 0;
    // corners in the reference's order: tnw, tne, tsw, tse, bnw, bne, bsw, bse
    for (let dz = 0; dz < 2; dz++) {
      const zz = z0 + dz - oz; // corners in the block
      const wz = dz ? wz1 : wz0;
      for (let dy = 0; dy < 2; dy++) {
        const yy = y0 + dy - oy;
        const wy = dy ? wy1 : wy0;
        for (let dx = 0; dx < 2; dx++) {
          const xx = x0 + dx - ox;
          const wt = f(f((dx ? wx1 : wx0) * wy) * wz);
          if (zz < 0 || zz >= lz || yy < 0 || yy >= ly || xx < 0 || xx >= lx) continue;
          const k = 3 * (zz * plane + yy * lx + xx);
          gx = f(gx + f(im[k] * wt));
          gy = f(gy + f(im[k + 1] * wt));
          gz = f(gz + f(im[k + 2] * wt));
        }
      }
    }
    st[0] = clamp1(f(uz + gz));
    st[1] = clamp1(f(uy + gy));
    st[2] = clamp1(f(ux + gx));
  };
  const u = integrate(3, cells.length, niter, start, step);
  const out = new Int32Array(u.length);
  for (let j = 0; j < cells.length; j++) {
    out[3 * j] = unnormalise(u[3 * j], lzm1) - oz;
    out[3 * j + 1] = unnormalise(u[3 * j + 1], lym1) - oy;
    out[3 * j + 2] = unnormalise(u[3 * j + 2], lxm1) - ox;
  }
  return out;
}
