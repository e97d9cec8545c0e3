// Parity of the training path with cellpose v4's own training code on the train-* fixtures
// (TRAIN-MANIFEST.json: cellpose's train.py, transforms.random_rotate_and_resize,
// dynamics.labels_to_flows and torch.optim.AdamW run on tiny-cpsam.pt and two dsb2018 images).
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { DATA, fixture, FIXTURES } from "./fixtures.ts";
import type { NdArray } from "../core/ndarray.ts";
import { NumpyRandom } from "../core/random.ts";
import { readCheckpointFile, type StateDict } from "../models/checkpoint.ts";
import { writeCheckpoint } from "../models/checkpoint_write.ts";
import { randomRotateAndResize, warpAffine } from "../train/augment.ts";
import { loadTrainingImage, type TrainingImage } from "../train/dataset.ts";
import { learningRates } from "../train/schedule.ts";
import { TrainingNet } from "../train/net.ts";
import { AdamW } from "../train/adamw.ts";
import { gpuAdapterInfo } from "../models/runtime.ts";

interface ParamEntry {
  name: string;
  shape: number[];
  offset: number;
  numel: number;
}
const man = JSON.parse(await Deno.readTextFile(join(FIXTURES, "TRAIN-MANIFEST.json"))) as {
  param_index: ParamEntry[];
  diam_train: number[];
  diam_labels: number;
  aug_draws: number[][];
  aug_scale: number[];
  loss: number;
  loss_terms: { mse_flows_over_2: number; bce_cellprob: number };
  losses: number[];
  adamw: { lr: number; weight_decay: number };
  epoch_order_nimg8: number[][];
};
const SOURCES = ["a65bbfc5673e", "4d14a3629b6a"];
const f32 = async (name: string) => (await fixture(name)) as NdArray<Float32Array>;
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const split = (flat: Float32Array) =>
  new Map(man.param_index.map((e) => [e.name, flat.slice(e.offset, e.offset + e.numel)]));

let prepared: TrainingImage[] | undefined;
async function images(): Promise<TrainingImage[]> {
  prepared ??= await Promise.all(SOURCES.map((s) =>
    loadTrainingImage({
      image: join(DATA, "dsb2018", `${s}.png`),
      labels: join(DATA, "dsb2018", `${s}_masks.tif`),
    })
  ));
  return prepared;
}

Deno.test("train parity: _reshape_norm, labels_to_flows and diameters equal cellpose's", async () => {
  const imgs = await images();
  for (let i = 0; i < 2; i++) {
    const norm = await f32(`train-${i}-normalized`);
    const flows = await f32(`train-${i}-flows`);
    assertEquals(imgs[i].image.shape, norm.shape);
    assert(maxAbs(imgs[i].image.data, norm.data) <= 1e-3, "normalised image");
    // cellpose's [labels, labels > 0.5, flowY, flowX] without its first channel
    const plane = norm.shape[1] * norm.shape[2];
    assert(maxAbs(imgs[i].labels.data, flows.data.subarray(plane)) <= 1e-3, "flows");
    assert(Math.abs(imgs[i].diameter - man.diam_train[i]) <= 1e-9, "diameter");
  }
  const mean = imgs.reduce((s, t) => s + Math.max(5, t.diameter), 0) / imgs.length;
  assert(Math.abs(mean - man.diam_labels) <= 1e-9, "diam_labels");
});

Deno.test("train parity: NumPy's draws, image order per epoch and LR schedules", async () => {
  // np.random.seed(5) gives the recorded augmentation draws, in cellpose's call order
  const rng = new NumpyRandom(5);
  for (const draws of man.aug_draws) for (const d of draws) assertEquals(rng.random(), d);
  man.epoch_order_nimg8.forEach((order, epoch) => {
    assertEquals(new NumpyRandom(epoch).permutation(8), order);
  });
  for (const n of [50, 100, 400]) {
    assertEquals(learningRates(1e-5, n), [
      ...(await fixture(`train-lr-${n}`)).data as Float64Array,
    ]);
  }
});

Deno.test("train parity: random_rotate_and_resize with the recorded draws", async () => {
  const imgs = await images();
  const out = randomRotateAndResize(
    imgs.map((t) => t.image),
    imgs.map((t) => t.labels),
    new NumpyRandom(5),
  );
  assertEquals(out.scale, man.aug_scale);
  assert(maxAbs(out.images.data, (await f32("train-aug-images")).data) <= 1e-3, "images");
  assert(maxAbs(out.labels.data, (await f32("train-aug-labels")).data) <= 1e-3, "labels");
});

Deno.test("train parity: a mirrored warp equals warping the flipped plane, bit for bit", async () => {
  const img = (await images())[1].image;
  const [, H, W] = img.shape;
  const plane = img.data.subarray(0, H * W);
  const flipped = new Float32Array(H * W);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) flipped[y * W + x] = plane[y * W + W - 1 - x];
  }
  // rotation by 0.7 rad and scale 1.1 about the centre, partly outside the image
  const [c, s] = [1.1 * Math.cos(0.7), 1.1 * Math.sin(0.7)];
  const m = [c, -s, 40, s, c, -60] as [number, number, number, number, number, number];
  for (const nearest of [false, true]) {
    const a = warpAffine({ data: plane, shape: [H, W] }, m, 256, 256, nearest, true);
    const b = warpAffine({ data: flipped, shape: [H, W] }, m, 256, 256, nearest);
    assertEquals(a, b, nearest ? "nearest" : "linear");
  }
});

Deno.test("train parity: loss, every gradient and two AdamW steps on tiny-cpsam", async () => {
  const sd = await readCheckpointFile(join(FIXTURES, "tiny-cpsam.pt"));
  const net = new TrainingNet(sd, { rdrop: 0 });
  const images = await f32("train-aug-images");
  const labels = await f32("train-aug-labels");
  try {
    assertEquals(net.trainable, man.param_index.map((e) => e.name));
    // the network output in train mode, and the loss with its two terms (1e-5 relative)
    assert(maxAbs((await net.forward(images)).data, (await f32("train-net-output")).data) <= 1e-4);
    const r = await net.lossAndGradients(images, labels);
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
    assert(rel(r.loss, man.loss) <= 1e-5, `loss ${r.loss} vs ${man.loss}`);
    assert(rel(r.mse, man.loss_terms.mse_flows_over_2) <= 1e-5, `mse ${r.mse}`);
    assert(rel(r.bce, man.loss_terms.bce_cellprob) <= 1e-5, `bce ${r.bce}`);
    // every parameter's gradient: |ours - ref| / |ref| <= 1e-3
    const g0 = (await f32("train-grads-0")).data;
    let worst = 0;
    for (const e of man.param_index) {
      const ref = g0.subarray(e.offset, e.offset + e.numel);
      const ours = r.grads.get(e.name)!;
      let d2 = 0, n2 = 0;
      for (let i = 0; i < e.numel; i++) (d2 += (ours[i] - ref[i]) ** 2, n2 += ref[i] ** 2);
      const err = Math.sqrt(d2) / Math.sqrt(n2);
      worst = Math.max(worst, err);
      assert(err <= 1e-3, `${e.name}: gradient relative error ${err}`);
    }
    console.log(`worst gradient relative error ${worst.toExponential(2)}`);

    // AdamW alone, on cellpose's own gradients: parameters after one step within 1e-5
    const { lr, weight_decay } = man.adamw;
    const p0 = (await f32("train-params-0")).data;
    const p1 = (await f32("train-params-1")).data;
    const p2 = (await f32("train-params-2")).data;
    const alone = split(p0);
    new AdamW(alone, { weightDecay: weight_decay }).step(split(g0), lr);
    for (const e of man.param_index) {
      assert(maxAbs(alone.get(e.name)!, p1.subarray(e.offset, e.offset + e.numel)) <= 1e-5);
    }

    // our gradients and our AdamW, two steps on the same batch. Where the reference gradient is
    // below eps (1e-8) the first step's size is g / (|g| + eps), set by float32 rounding noise
    // (e.g. the key biases, whose true gradient is 0: softmax ignores a constant per query), so
    // those elements are held to the size of such a step (lr / 10) instead of 1e-5.
    for (const [k, p] of split(p0)) net.state.get(k)!.data.set(p);
    const opt = new AdamW(net.parameters(), { weightDecay: weight_decay });
    for (const [step, ref] of [[0, p1], [1, p2]] as const) {
      const s = await net.lossAndGradients(images, labels);
      assert(rel(s.loss, man.losses[step]) <= 1e-5, `loss at step ${step}: ${s.loss}`);
      opt.step(s.grads, lr);
      let noisy = 0;
      for (const e of man.param_index) {
        const ours = net.state.get(e.name)!.data;
        for (let i = 0; i < e.numel; i++) {
          const d = Math.abs(ours[i] - ref[e.offset + i]);
          if (Math.abs(g0[e.offset + i]) >= 1e-8) {
            assert(d <= 1e-5, `${e.name}[${i}] after step ${step + 1}: off by ${d}`);
          } else if (d > 1e-5) {
            noisy++;
            assert(d <= lr / 10, `${e.name}[${i}] after step ${step + 1}: off by ${d}`);
          }
        }
      }
      assert(noisy <= 100, `${noisy} near-zero-gradient elements off by more than 1e-5`);
    }
  } finally {
    await net.release();
  }
});

Deno.test("train parity: cellpose's saved model reads back; ours round-trips in fp32 and fp16", async () => {
  const saved = await readCheckpointFile(join(FIXTURES, "train-tiny-step2.pt"));
  const p2 = split((await f32("train-params-2")).data);
  for (const [k, p] of p2) assertEquals(saved.get(k)!.data, p, k);
  assertEquals([...saved.get("diam_labels")!.data], [Math.fround(man.diam_labels)]);
  const dir = await Deno.makeTempDir();
  try {
    for (const precision of ["fp32", "fp16"] as const) {
      const path = join(dir, `m-${precision}.pt`);
      await writeCheckpoint(saved, path, { precision });
      const back: StateDict = await readCheckpointFile(path);
      assertEquals([...back.keys()], [...saved.keys()]);
      for (const [k, t] of saved) {
        assertEquals(back.get(k)!.shape, t.shape);
        const tol = precision === "fp32"
          ? 0
          : 1e-3 * Math.max(1, maxAbs(t.data, new Float32Array(t.data.length)));
        assert(maxAbs(back.get(k)!.data, t.data) <= tol, `${k} (${precision})`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// PyTorch itself reads what we write, where Debian's python3-torch is installed.
const torch = ["python3", "/usr/bin/python3"].find((py) => {
  try {
    return new Deno.Command(py, { args: ["-c", "import torch"], stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
});
Deno.test({
  name: "train parity: torch.load(weights_only=True) reads a model we wrote",
  ignore: !torch,
  fn: async () => {
    const saved = await readCheckpointFile(join(FIXTURES, "train-tiny-step2.pt"));
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "model.pt");
      await writeCheckpoint(saved, path);
      const script = `import torch, sys
sd = torch.load(sys.argv[1], weights_only=True)
ref = torch.load(sys.argv[2], weights_only=True)
assert list(sd.keys()) == list(ref.keys())
print(max(float((sd[k].float() - ref[k].float()).abs().max()) for k in ref))`;
      const out = new Deno.Command(torch!, {
        args: ["-c", script, path, join(FIXTURES, "train-tiny-step2.pt")],
      }).outputSync();
      assert(out.success, new TextDecoder().decode(out.stderr));
      assertEquals(Number(new TextDecoder().decode(out.stdout).trim()), 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const gpu = await gpuAdapterInfo();
Deno.test({
  name: "train parity: gradients on WebGPU equal the CPU's within 1e-3 relative",
  ignore: !gpu,
  fn: async () => {
    const sd = await readCheckpointFile(join(FIXTURES, "tiny-cpsam.pt"));
    const first = async (name: string) => {
      const a = await f32(name);
      return { data: a.data.slice(0, a.data.length / 2), shape: [1, ...a.shape.slice(1)] };
    };
    const [images, labels] = [await first("train-aug-images"), await first("train-aug-labels")];
    const cpu = new TrainingNet(sd, { rdrop: 0 });
    const webgpu = new TrainingNet(sd, { rdrop: 0, device: "webgpu" });
    try {
      const a = await cpu.lossAndGradients(images, labels);
      const b = await webgpu.lossAndGradients(images, labels);
      assert(Math.abs(a.loss - b.loss) <= 1e-5 * a.loss, `loss ${a.loss} vs ${b.loss}`);
      for (const [k, g] of a.grads) {
        const h = b.grads.get(k)!;
        let d2 = 0, n2 = 0;
        for (let i = 0; i < g.length; i++) (d2 += (g[i] - h[i]) ** 2, n2 += g[i] ** 2);
        assert(Math.sqrt(d2 / n2) <= 1e-3, `${k}: ${Math.sqrt(d2 / n2)} on ${gpu!.description}`);
      }
    } finally {
      await cpu.release();
      await webgpu.release();
    }
  },
});
