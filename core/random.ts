/**
 * NumPy's legacy random generator (`np.random.seed` / `np.random.rand` / `permutation` /
 * `choice` / `randn`): MT19937 with NumPy's seeding and its exact draw-to-number rules, so that a
 * seed gives the same numbers as cellpose's training code (`np.random.seed(iepoch)` before each
 * epoch's image order and augmentation draws).
 *
 * @example
 * ```ts
 * import { NumpyRandom } from "./random.ts";
 * const rng = new NumpyRandom(0);
 * const order = rng.permutation(8); // np.random.seed(0); np.random.permutation(8)
 * if (order.join() !== "6,2,1,7,3,0,5,4") throw new Error("not NumPy's order");
 * ```
 * @module
 */
import { CellposeError } from "./errors.ts";

const N = 624;
const M = 397;

/** MT19937 with NumPy's `RandomState` seeding and conversions. */
export class NumpyRandom {
  private readonly mt = new Uint32Array(N);
  private pos = N;
  private gauss: number | null = null;

  /** `seed`: an integer in [0, 2^32), as `np.random.seed(seed)` takes. */
  constructor(seed: number) {
    this.seed(seed);
  }

  /** Re-seeds as `np.random.seed(seed)` does. */
  seed(seed: number): void {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `seed must be an integer in [0, 2^32), got ${seed}`,
        seed,
      );
    }
    let s = seed >>> 0;
    for (let i = 0; i < N; i++) {
      this.mt[i] = s;
      s = (Math.imul(1812433253, (s ^ (s >>> 30)) >>> 0) + i + 1) >>> 0;
    }
    this.pos = N;
    this.gauss = null;
  }

  /** draws the next block of 624 numbers (MT19937's twist) */
  private refill() {
    const mt = this.mt;
    for (let k = 0; k < N; k++) {
      const y = (mt[k] & 0x80000000) | (mt[(k + 1) % N] & 0x7fffffff);
      mt[k] = mt[(k + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.pos = 0;
  }

  /** The next 32-bit output. */
  uint32(): number {
    if (this.pos >= N) this.refill();
    let y = this.mt[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) with 53 random bits (`np.random.rand()`). */
  random(): number {
    const a = this.uint32() >>> 5;
    const b = this.uint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** An integer in [0, max] by masked rejection (NumPy's legacy `random_interval`). */
  interval(max: number): number {
    if (max === 0) return 0;
    if (max > 0xffffffff) {
      throw new CellposeError("BAD_PARAMETER", `interval max must be < 2^32, got ${max}`, max);
    }
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    do v = (this.uint32() & mask) >>> 0; while (v > max);
    return v;
  }

  /** `np.random.permutation(n)`: a shuffled `0..n-1` (Fisher-Yates from the end). */
  permutation(n: number): number[] {
    const a = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.interval(i);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /**
   * `np.random.choice(n, size, p=probs)`: `size` draws from `0..n-1` with the given
   * probabilities (inverse CDF, `searchsorted(side="right")` as NumPy does).
   */
  choice(probs: ArrayLike<number>, size: number): number[] {
    const cdf = new Float64Array(probs.length);
    let acc = 0;
    for (let i = 0; i < probs.length; i++) cdf[i] = acc += probs[i];
    for (let i = 0; i < cdf.length; i++) cdf[i] /= acc;
    const out: number[] = [];
    for (let k = 0; k < size; k++) {
      const u = this.random();
      let lo = 0, hi = cdf.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdf[mid] <= u) lo = mid + 1;
        else hi = mid;
      }
      out.push(Math.min(lo, cdf.length - 1));
    }
    return out;
  }

  /** A standard normal draw (`np.random.randn()`: polar Box-Muller, the second value cached). */
  normal(): number {
    if (this.gauss !== null) {
      const g = this.gauss;
      this.gauss = null;
      return g;
    }
    let x1: number, x2: number, r2: number;
    do {
      x1 = 2 * this.random() - 1;
      x2 = 2 * this.random() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt(-2 * Math.log(r2) / r2);
    this.gauss = f * x1;
    return f * x2;
  }
}
