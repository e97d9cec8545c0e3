/**
 * PyTorch's `torch.optim.AdamW` (betas 0.9 / 0.999, eps 1e-8, decoupled weight decay, no
 * amsgrad) over Float32Arrays held by the host, every stored value rounded to float32 as in
 * PyTorch's kernel:
 * `p *= 1 - lr wd; m += (g - m)(1 - b1); v = v b2 + (1 - b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
 *
 * @example
 * ```ts
 * import { AdamW } from "./adamw.ts";
 * const p = new Float32Array([1, -1]);
 * const opt = new AdamW(new Map([["w", p]]), { weightDecay: 0 });
 * opt.step(new Map([["w", new Float32Array([0.5, -2])]]), 0.1);
 * // the first step moves every parameter by lr against the sign of its gradient
 * if (Math.abs(p[0] - 0.9) > 1e-6 || Math.abs(p[1] + 0.9) > 1e-6) throw new Error("not AdamW");
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";

/** AdamW hyper-parameters (PyTorch's defaults but the weight decay, which is cellpose's). */
export interface AdamWOptions {
  /** decoupled weight decay (default 0.1, cellpose's `weight_decay`) */
  weightDecay?: number;
  /** (default [0.9, 0.999]) */
  betas?: [number, number];
  /** (default 1e-8) */
  eps?: number;
}

/** The optimiser state that a checkpoint keeps: step count and both moments per parameter. */
export interface AdamWState {
  /** steps taken */
  step: number;
  /** first moments by parameter name */
  m: Map<string, Float32Array>;
  /** second moments by parameter name */
  v: Map<string, Float32Array>;
}

/** AdamW over named Float32Array parameters, updated in place. */
export class AdamW {
  /** the moments and step count (saved and restored by checkpoints) */
  readonly state: AdamWState;
  private readonly wd: number;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;

  /** `params` are updated in place by {@link step}. */
  constructor(
    readonly params: Map<string, Float32Array>,
    opts: AdamWOptions = {},
    state?: AdamWState,
  ) {
    this.wd = opts.weightDecay ?? 0.1;
    [this.b1, this.b2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.state = state ?? {
      step: 0,
      m: new Map([...params].map(([k, p]) => [k, new Float32Array(p.length)])),
      v: new Map([...params].map(([k, p]) => [k, new Float32Array(p.length)])),
    };
    for (const [k, p] of params) {
      if (this.state.m.get(k)?.length !== p.length || this.state.v.get(k)?.length !== p.length) {
        throw new CellposeError("BAD_MODEL", `optimizer state does not match parameter ${k}`, k);
      }
    }
  }

  /** One step with learning rate `lr`; `grads` must hold every parameter's gradient. */
  step(grads: Map<string, Float32Array>, lr: number): void {
    const s = this.state;
    s.step++;
    const decay = 1 - lr * this.wd;
    const w1 = 1 - this.b1, b2 = this.b2, w2 = 1 - this.b2;
    const stepSize = lr / (1 - this.b1 ** s.step);
    const bc2 = Math.sqrt(1 - this.b2 ** s.step);
    const eps = this.eps;
    for (const [k, p] of this.params) {
      const g = grads.get(k);
      if (!g || g.length !== p.length) {
        throw new CellposeError(
          "BAD_SHAPE",
          `gradient of ${k} is missing or has the wrong size`,
          k,
        );
      }
      const m = s.m.get(k)!, v = s.v.get(k)!;
      // each stored value is rounded to float32, as PyTorch's kernel rounds its results
      for (let i = 0; i < p.length; i++) {
        const gi = g[i];
        const mi = m[i] = m[i] + w1 * (gi - m[i]);
        const vi = v[i] = v[i] * b2 + w2 * gi * gi;
        p[i] = p[i] * decay - stepSize * mi / (Math.sqrt(vi) / bc2 + eps);
      }
    }
  }
}
