// Every VJP rule of train/autodiff.ts against central finite differences, run by onnxruntime-node.
import { assert } from "./assert.ts";
import { Graph, type Value } from "../train/autodiff.ts";
import { openGraphSession } from "../train/session.ts";
import { NumpyRandom } from "../core/random.ts";
import type { NdArray } from "../core/ndarray.ts";

const rng = new NumpyRandom(7);
const randn = (shape: number[], s = 1) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * s;
  return { data: d, shape };
};

interface Case {
  name: string;
  inputs: [string, number[], boolean][];
  build: (g: Graph, x: Value[]) => Value;
  /** input values (default: standard normal) */
  values?: Record<string, NdArray<Float32Array>>;
}

/**
 * loss = sum(out * R) for a fixed random R; checks d loss / d input for every input marked
 * for gradients on up to 24 coordinates each: relative error of the vector <= 2e-3.
 */
async function check(c: Case) {
  const g = new Graph();
  const xs = c.inputs.map(([n, s, grad]) => g.input(n, s, grad));
  const out = c.build(g, xs);
  const r = randn([...out.shape]);
  const loss = g.reduceMeanAll(g.mul(out, g.constant(r.data, r.shape)));
  const wrt = xs.filter((x) => x.grad);
  const grads = g.gradients(loss, wrt);
  const session = await openGraphSession(
    g.encode([loss, ...grads], ["loss", ...wrt.map((w) => `d_${w.name}`)]),
  );
  const feeds: Record<string, NdArray<Float32Array>> = {};
  for (const [n, s] of c.inputs) feeds[n] = c.values?.[n] ?? randn(s);
  const base = await session.run(feeds);
  for (const w of wrt) {
    const analytic = base[`d_${w.name}`].data;
    const x = feeds[w.name].data;
    const coords = [...Array(x.length).keys()];
    const pick = coords.length <= 24 ? coords : rng.permutation(x.length).slice(0, 24);
    let num2 = 0, diff2 = 0;
    for (const i of pick) {
      const x0 = x[i];
      const h = 1e-2 * Math.max(1, Math.abs(x0));
      x[i] = x0 + h;
      const lp = (await session.run(feeds)).loss.data[0];
      x[i] = x0 - h;
      const lm = (await session.run(feeds)).loss.data[0];
      x[i] = x0;
      const numeric = (lp - lm) / (2 * h);
      num2 += numeric ** 2;
      diff2 += (numeric - analytic[i]) ** 2;
    }
    const rel = Math.sqrt(diff2) / Math.max(Math.sqrt(num2), 1e-6);
    assert(rel <= 2e-3, `${c.name}: d/d${w.name} relative error ${rel.toExponential(2)}`);
  }
  await session.release();
}

const cases: Case[] = [
  {
    name: "add broadcast",
    inputs: [["a", [2, 3, 4], true], ["b", [3, 1], true]],
    build: (g, [a, b]) => g.add(a, b),
  },
  {
    name: "sub broadcast",
    inputs: [["a", [4], true], ["b", [2, 4], true]],
    build: (g, [a, b]) => g.sub(a, b),
  },
  {
    name: "mul broadcast",
    inputs: [["a", [2, 3, 4], true], ["b", [1, 3, 1], true]],
    build: (g, [a, b]) => g.mul(a, b),
  },
  { name: "scale", inputs: [["a", [5], true]], build: (g, [a]) => g.scale(a, -2.5) },
  {
    name: "matmul 2d",
    inputs: [["a", [3, 4], true], ["b", [4, 5], true]],
    build: (g, [a, b]) => g.matmul(a, b),
  },
  {
    name: "matmul batched, broadcast operand",
    inputs: [["a", [2, 3, 4, 5], true], ["b", [3, 5, 2], true]],
    build: (g, [a, b]) => g.matmul(a, b),
  },
  {
    name: "gemm with bias",
    inputs: [["x", [6, 4], true], ["w", [3, 4], true], ["b", [3], true]],
    build: (g, [x, w, b]) => g.gemm(x, w, b),
  },
  {
    name: "gemm without bias",
    inputs: [["x", [6, 4], true], ["w", [3, 4], true]],
    build: (g, [x, w]) => g.gemm(x, w),
  },
  {
    name: "reshape + transpose",
    inputs: [["a", [2, 3, 4], true]],
    build: (g, [a]) => g.transpose(g.reshape(a, [6, 4]), [1, 0]),
  },
  {
    name: "transpose 5-d",
    inputs: [["a", [2, 3, 2, 2, 3], true]],
    build: (g, [a]) => g.transpose(a, [2, 0, 4, 1, 3]),
  },
  { name: "slice", inputs: [["a", [4, 6], true]], build: (g, [a]) => g.slice(a, 1, 2, 5) },
  {
    name: "pad",
    inputs: [["a", [2, 3, 3], true]],
    build: (g, [a]) => g.pad(a, [0, 1, 1, 0, 1, 2]),
  },
  {
    name: "concat",
    inputs: [["a", [2, 3], true], ["b", [2, 2], false], ["c", [2, 1], true]],
    build: (g, [a, b, c]) => g.concat([a, b, c], 1),
  },
  {
    name: "reduceSum keep",
    inputs: [["a", [3, 4, 2], true]],
    build: (g, [a]) => g.reduceSum(a, [0, 2], true),
  },
  {
    name: "reduceSum drop",
    inputs: [["a", [3, 4, 2], true]],
    build: (g, [a]) => g.reduceSum(a, [1], false),
  },
  { name: "softmax", inputs: [["a", [3, 7], true]], build: (g, [a]) => g.softmax(a) },
  {
    name: "layerNorm",
    inputs: [["x", [5, 8], true], ["w", [8], true], ["b", [8], true]],
    build: (g, [x, w, b]) => g.layerNorm(x, w, b, 1e-6),
  },
  { name: "gelu", inputs: [["x", [4, 6], true]], build: (g, [x]) => g.gelu(x) },
];

for (const c of cases) Deno.test(`autodiff: ${c.name} matches finite differences`, () => check(c));

Deno.test("autodiff: cellpose loss matches finite differences and its formula", async () => {
  const y = randn([2, 3, 4, 4]);
  const lbl = randn([2, 3, 4, 4]);
  await check({
    name: "cellposeLoss",
    inputs: [["y", [2, 3, 4, 4], true], ["lbl", [2, 3, 4, 4], false]],
    values: { y, lbl },
    build: (g, [yv, lv]) => g.reshape(g.cellposeLoss(yv, lv).loss, [1]),
  });
  // the loss value against the formula computed here in float64
  const g = new Graph();
  const { loss, mse, bce } = g.cellposeLoss(g.input("y", y.shape), g.input("lbl", lbl.shape));
  const s = await openGraphSession(g.encode([loss, mse, bce], ["loss", "mse", "bce"]));
  const out = await s.run({ y, lbl });
  let m = 0, b = 0;
  const hw = 16;
  for (let n = 0; n < 2; n++) {
    for (let i = 0; i < hw; i++) {
      for (let c = 0; c < 2; c++) {
        const d = y.data[(n * 3 + c) * hw + i] - 5 * lbl.data[(n * 3 + 1 + c) * hw + i];
        m += d * d;
      }
      const x = y.data[(n * 3 + 2) * hw + i];
      const z = lbl.data[n * 3 * hw + i] > 0.5 ? 1 : 0;
      b += Math.max(x, 0) - x * z + Math.log1p(Math.exp(-Math.abs(x)));
    }
  }
  m /= 2 * 2 * hw * 2;
  b /= 2 * hw;
  assert(Math.abs(out.mse.data[0] - m) <= 1e-6 * m, `mse ${out.mse.data[0]} vs ${m}`);
  assert(Math.abs(out.bce.data[0] - b) <= 1e-6 * b, `bce ${out.bce.data[0]} vs ${b}`);
  assert(Math.abs(out.loss.data[0] - (m + b)) <= 1e-6 * (m + b));
  await s.release();
});
