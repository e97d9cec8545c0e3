/**
 * Euler integration of pixels through the flow field, reproducing cellpose v4 `steps_interp`
 * (PyTorch `grid_sample(align_corners=False, padding_mode="zeros")` on normalised coordinates)
 * operation by operation in float32 (`Math.fround`), so that final positions match the
 * reference's truncated integers. See {@link DynamicsBackend.followFlows} for the semantics.
 *
 * Points advance in blocks (so that their independent float chains overlap on the CPU). A point
 * whose state repeats has entered a cycle (Brent's detection, plus an immediate check for periods
 * 1 and 2), and only the remainder of its steps modulo the period is run: exact, since the state
 * is the point's coordinates alone.
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
import { CellposeError } from "../core/errors.ts";

const f = Math.fround;

/** Checks the shape can be integrated (every axis at least 2 long, 2 or 3 axes). */
export function checkFlowShape(shape: readonly number[]): void {
  if ((shape.length !== 2 && shape.length !== 3) || shape.some((l) => l < 2)) {
    throw new CellposeError(
      "BAD_SHAPE",
      `flows need a [Ly, Lx] or [Lz, Ly, Lx] image with every axis >= 2, got [${shape}]`,
      shape,
    );
  }
}

/** Normalised start coordinate of pixel `i` on an axis of length `l`, in float32 as PyTorch. */
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
 * positions, `ndim` per cell interleaved.
 */
export function followFlowsCpu(
  flow: Float32Array,
  shape: readonly number[],
  cells: Uint32Array,
  niter: number,
): Int32Array {
  checkFlowShape(shape);
  return shape.length === 2
    ? follow2D(flow, shape[0], shape[1], cells, niter)
    : follow3D(flow, shape[0], shape[1], shape[2], cells, niter);
}

function follow2D(
  flow: Float32Array,
  ly: number,
  lx: number,
  cells: Uint32Array,
  niter: number,
): Int32Array {
  const n = ly * lx;
  const sy = f(2 / (ly - 1)), sx = f(2 / (lx - 1));
  // the field in normalised units, interleaved (x, y) per pixel for locality
  const im = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    im[2 * i] = flow[n + i] * sx;
    im[2 * i + 1] = flow[i] * sy;
  }
  const lym1 = f(ly - 1), lxm1 = f(lx - 1);
  const hy = ly / 2, hx = lx / 2;
  const np = cells.length;
  const B = 256;
  // per point of a block: state, previous state, checkpoint (Brent's cycle detection)
  const uy = new Float64Array(B), ux = new Float64Array(B);
  const qy = new Float64Array(B), qx = new Float64Array(B);
  const cy = new Float64Array(B), cx = new Float64Array(B);
  const ct = new Int32Array(B), power = new Int32Array(B), lam = new Int32Array(B);
  const active = new Int32Array(B);
  const st = new Float64Array(2);
  const out = new Int32Array(2 * np);
  for (let b0 = 0; b0 < np; b0 += B) {
    const nb = Math.min(B, np - b0);
    for (let j = 0; j < nb; j++) {
      const c = cells[b0 + j];
      uy[j] = cy[j] = normalise(Math.floor(c / lx), lym1);
      ux[j] = cx[j] = normalise(c % lx, lxm1);
      qy[j] = qx[j] = NaN;
      ct[j] = lam[j] = 0;
      power[j] = 1;
      active[j] = j;
    }
    let nActive = nb;
    // the points of a block advance together: their dependency chains overlap on the CPU
    for (let t = 0; t < niter && nActive > 0; t++) {
      let kept = 0;
      const done = t + 1; // steps taken after this one
      for (let a = 0; a < nActive; a++) {
        const j = active[a];
        const oy = uy[j], ox = ux[j];
        step2D(im, ly, lx, hy, hx, oy, ox, st);
        const ny = st[0], nx = st[1];
        if (ny === oy && nx === ox) continue; // fixed point
        if (ny === qy[j] && nx === qx[j]) {
          // 2-cycle: an even number of steps left lands on the new state, an odd one on the old
          if ((niter - done) % 2 === 0) (uy[j] = ny), (ux[j] = nx);
          continue;
        }
        uy[j] = ny, ux[j] = nx;
        if (ny === cy[j] && nx === cx[j]) {
          // periodic since the checkpoint: only the remainder of the steps matters
          const left = (niter - done) % (done - ct[j]);
          let py = ny, px = nx;
          for (let r = 0; r < left; r++) {
            step2D(im, ly, lx, hy, hx, py, px, st);
            py = st[0], px = st[1];
          }
          uy[j] = py, ux[j] = px;
          continue;
        }
        qy[j] = oy, qx[j] = ox;
        if (++lam[j] === power[j]) {
          cy[j] = ny, cx[j] = nx, ct[j] = done, power[j] *= 2, lam[j] = 0;
        }
        active[kept++] = j;
      }
      nActive = kept;
    }
    for (let j = 0; j < nb; j++) {
      out[2 * (b0 + j)] = unnormalise(uy[j], lym1);
      out[2 * (b0 + j) + 1] = unnormalise(ux[j], lxm1);
    }
  }
  return out;
}

/** One Euler step in normalised coordinates: `st = [uy, ux]` after the step. */
function step2D(
  im: Float32Array,
  ly: number,
  lx: number,
  hy: number,
  hx: number,
  uy: number,
  ux: number,
  st: Float64Array,
): void {
  // grid_sample, vectorised CPU kernel: ((u + 1) * L/2) - 0.5, bilinear, zero padding
  // (- 0.5 is exact in float32 here; so are i - floor(i) and 1 - that when i >= 0.5)
  const iy = f(f(uy + 1) * hy) - 0.5;
  const ix = f(f(ux + 1) * hx) - 0.5;
  const y0 = ((iy + 1) | 0) - 1, x0 = ((ix + 1) | 0) - 1; // floor, as i >= -0.5
  let nn = iy - y0, w = ix - x0, s = 1 - nn, e = 1 - w;
  if (iy < 0.5) (nn = f(nn)), (s = f(1 - nn));
  if (ix < 0.5) (w = f(w)), (e = f(1 - w));
  const wnw = f(s * e), wne = f(s * w), wsw = f(nn * e), wse = f(nn * w);
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
    const yIn0 = y0 >= 0 && y0 < ly, yIn1 = y0 + 1 < ly;
    const xIn0 = x0 >= 0 && x0 < lx, xIn1 = x0 + 1 < lx;
    if (yIn0 && xIn0) (ax = im[k]), (ay = im[k + 1]);
    if (yIn0 && xIn1) (bx = im[k + 2]), (by = im[k + 3]);
    if (yIn1 && xIn0) (cx = im[k + 2 * lx]), (cy = im[k + 2 * lx + 1]);
    if (yIn1 && xIn1) (dx = im[k + 2 * lx + 2]), (dy = im[k + 2 * lx + 3]);
    gx = f(f(f(f(ax * wnw) + f(bx * wne)) + f(cx * wsw)) + f(dx * wse));
    gy = f(f(f(f(ay * wnw) + f(by * wne)) + f(cy * wsw)) + f(dy * wse));
  }
  st[0] = clamp1(f(uy + gy));
  st[1] = clamp1(f(ux + gx));
}

function follow3D(
  flow: Float32Array,
  lz: number,
  ly: number,
  lx: number,
  cells: Uint32Array,
  niter: number,
): Int32Array {
  const n = lz * ly * lx, plane = ly * lx;
  const sz = f(2 / (lz - 1)), sy = f(2 / (ly - 1)), sx = f(2 / (lx - 1));
  const im = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    im[3 * i] = flow[2 * n + i] * sx;
    im[3 * i + 1] = flow[n + i] * sy;
    im[3 * i + 2] = flow[i] * sz;
  }
  const lzm1 = f(lz - 1), lym1 = f(ly - 1), lxm1 = f(lx - 1);
  const g = new Float64Array(3); // sampled (x, y, z)
  const out = new Int32Array(3 * cells.length);
  for (let j = 0; j < cells.length; j++) {
    const c = cells[j];
    let uz = normalise(Math.floor(c / plane), lzm1);
    let uy = normalise(Math.floor(c / lx) % ly, lym1);
    let ux = normalise(c % lx, lxm1);
    let pz = NaN, py = NaN, px = NaN;
    for (let t = 0; t < niter; t++) {
      // grid_sampler_3d_cpu_impl (scalar): ((u + 1) * L - 1) / 2, trilinear, zero padding
      const iz = f(f(f(f(uz + 1) * lz) - 1) / 2);
      const iy = f(f(f(f(uy + 1) * ly) - 1) / 2);
      const ix = f(f(f(f(ux + 1) * lx) - 1) / 2);
      const z0 = Math.floor(iz), y0 = Math.floor(iy), x0 = Math.floor(ix);
      const wx0 = f(x0 + 1 - ix), wx1 = f(ix - x0);
      const wy0 = f(y0 + 1 - iy), wy1 = f(iy - y0);
      const wz0 = f(z0 + 1 - iz), wz1 = f(iz - z0);
      g[0] = g[1] = g[2] = 0;
      // corners in the reference's order: tnw, tne, tsw, tse, bnw, bne, bsw, bse
      for (let dz = 0; dz < 2; dz++) {
        const zz = z0 + dz;
        const wz = dz ? wz1 : wz0;
        for (let dy = 0; dy < 2; dy++) {
          const yy = y0 + dy;
          const wy = dy ? wy1 : wy0;
          for (let dx = 0; dx < 2; dx++) {
            const xx = x0 + dx;
            const wt = f(f((dx ? wx1 : wx0) * wy) * wz);
            if (zz < 0 || zz >= lz || yy < 0 || yy >= ly || xx < 0 || xx >= lx) continue;
            const k = 3 * (zz * plane + yy * lx + xx);
            g[0] = f(g[0] + f(im[k] * wt));
            g[1] = f(g[1] + f(im[k + 1] * wt));
            g[2] = f(g[2] + f(im[k + 2] * wt));
          }
        }
      }
      const nx = clamp1(f(ux + g[0])), ny = clamp1(f(uy + g[1])), nz = clamp1(f(uz + g[2]));
      if (nx === ux && ny === uy && nz === uz) break;
      if (nx === px && ny === py && nz === pz) {
        if ((niter - t - 1) % 2 === 0) (ux = nx), (uy = ny), (uz = nz);
        break;
      }
      px = ux, py = uy, pz = uz;
      ux = nx, uy = ny, uz = nz;
    }
    out[3 * j] = unnormalise(uz, lzm1);
    out[3 * j + 1] = unnormalise(uy, lym1);
    out[3 * j + 2] = unnormalise(ux, lxm1);
  }
  return out;
}
