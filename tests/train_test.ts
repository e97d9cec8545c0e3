// The training loop and the `cellpose train` command: exact resume, learning on real images,
// and clear errors for bad training data.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { runCli } from "./cli.ts";
import { DATA, FIXTURES } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import { initCpsam } from "../models/cpsam_init.ts";
import { readCheckpointFile } from "../models/checkpoint.ts";
import { writeCheckpoint } from "../models/checkpoint_write.ts";
import { trainingPairs } from "../io/files.ts";
import { loadTrainingImage } from "../train/dataset.ts";
import { type LabelledImage, train } from "../train/train.ts";

/** A synthetic image of `n x n` square cells with their labels. */
function squares(size: number, cell: number, seed: number): LabelledImage {
  const masks = new Uint16Array(size * size);
  const image = new Float32Array(size * size);
  const per = Math.floor(size / cell);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const cy = Math.floor(y / cell), cx = Math.floor(x / cell);
      const inside = y % cell > 1 && x % cell > 1 && cy < per && cx < per;
      masks[y * size + x] = inside ? cy * per + cx + 1 : 0;
      image[y * size + x] = inside ? 1 + ((cy * 7 + cx * 3 + seed) % 5) / 5 : 0;
    }
  }
  return {
    image: { data: image, shape: [size, size] },
    masks: { data: masks, shape: [size, size] },
  };
}

Deno.test("train: an interrupted run resumed gives exactly the uninterrupted run's model", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = [squares(96, 12, 0), squares(80, 10, 1), squares(100, 14, 2)];
    const base = {
      model: initCpsam({ dim: 16, depth: 2, heads: 2, seed: 3 }),
      train: data,
      nEpochs: 3,
      learningRate: 1e-3,
      savePath: dir,
      augment: { channelShuffle: true, noise: 0.1 },
    };
    const whole = await train({ ...base, modelName: "whole" });
    // stop after 4 batches, then resume
    const abort = new AbortController();
    let steps = 0;
    const err = await assertRejects(
      () =>
        train({
          ...base,
          modelName: "parts",
          signal: abort.signal,
          onProgress: (p) => {
            if (p.stage === "step" && ++steps === 4) abort.abort();
          },
        }),
      CellposeError,
      "resume",
    );
    assertEquals(err.code, "CANCELLED");
    const parts = await train({ ...base, modelName: "parts", resume: true });
    assertEquals(parts.trainLosses, whole.trainLosses);
    for (const [k, t] of whole.model) assertEquals(parts.model.get(k)!.data, t.data, k);
    // the saved file is the returned model; the resume checkpoint is gone once done
    const saved = await readCheckpointFile(join(dir, "models", "parts"));
    for (const [k, t] of whole.model) assertEquals(saved.get(k)!.data, t.data, k);
    await assertRejects(
      () => Deno.stat(join(dir, "models", "parts.resume.json")),
      Deno.errors.NotFound,
    );
    // an interrupted run may be extended: n_epochs 2 stopped in its second epoch, resumed with
    // n_epochs 3, is the uninterrupted 3-epoch run (the epochs done keep their learning rates)
    const interrupt = (name: string, nEpochs: number) => {
      const stop = new AbortController();
      let n = 0;
      return train({
        ...base,
        nEpochs,
        modelName: name,
        signal: stop.signal,
        onProgress: (p) => {
          if (p.stage === "step" && ++n === 4) stop.abort();
        },
      }).catch((e) => assertEquals(e.code, "CANCELLED"));
    };
    await interrupt("grow", 2);
    const grown = await train({ ...base, modelName: "grow", resume: true });
    assertEquals(grown.trainLosses, whole.trainLosses);
    for (const [k, t] of whole.model) assertEquals(grown.model.get(k)!.data, t.data, k);
    // ending before the epochs already trained, or other options, is refused, naming them
    await interrupt("other", 3);
    await assertRejects(
      () => train({ ...base, modelName: "other", nEpochs: 1, resume: true }),
      CellposeError,
      "2 epochs are already trained",
    );
    await assertRejects(
      () => train({ ...base, modelName: "other", learningRate: 2e-3, resume: true }),
      CellposeError,
      "learningRate",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: bad training data and models are clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = initCpsam({ dim: 16, depth: 1, heads: 1 });
    const few = squares(40, 20, 0); // 4 masks
    await assertRejects(
      () => train({ model, train: [few], nEpochs: 1, savePath: dir }),
      CellposeError,
      "min_train_masks = 5",
    );
    const bad = {
      ...squares(64, 16, 0),
      masks: { data: new Uint16Array(60 * 64), shape: [60, 64] },
    };
    await assertRejects(
      () => train({ model, train: [bad], nEpochs: 1, savePath: dir }),
      CellposeError,
      "do not match the image's 64 x 64",
    );
    // a cellpose 3 checkpoint is not cpsam
    const cp3 = join(dir, "cyto3.pt");
    await writeCheckpoint(
      new Map([["downsample.down.res_down_0.conv.weight", {
        data: new Float32Array(4),
        shape: [4],
      }]]),
      cp3,
    );
    const e = await assertRejects(
      () => train({ model: cp3, train: [squares(64, 12, 0)], nEpochs: 1, savePath: dir }),
      CellposeError,
      "cellpose 3",
    );
    assertEquals(e.code, "BAD_MODEL");
    // an image without labels, and labels of another size, name the files
    await Deno.writeFile(
      join(dir, "lonely.png"),
      await Deno.readFile(join(DATA, "dsb2018", "00071198d059.png")),
    );
    await assertRejects(() => trainingPairs(dir), CellposeError, "lonely.png has no labels");
    await Deno.copyFile(
      join(DATA, "dsb2018", "03f583ec5018_masks.tif"),
      join(dir, "lonely_masks.tif"),
    );
    await assertRejects(
      () =>
        loadTrainingImage({
          image: join(dir, "lonely.png"),
          labels: join(dir, "lonely_masks.tif"),
        }),
      CellposeError,
      "lonely_masks.tif is",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// A full disk: a 128 KiB tmpfs (needs root, as CI runs).
const canMount = Deno.uid() === 0 &&
  new Deno.Command("sh", { args: ["-c", "command -v mount"], stdout: "null" }).outputSync().success;
Deno.test({
  name: "train: a full disk while saving is a clear error and leaves no file",
  ignore: !canMount,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const mounted = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=128k", "tmpfs", dir],
    })
      .outputSync();
    if (!mounted.success) return; // not allowed in this container: nothing to test
    try {
      const sd = initCpsam({ dim: 32, depth: 1, heads: 1 });
      const e = await assertRejects(
        () => writeCheckpoint(sd, join(dir, "m.pt")),
        CellposeError,
        "m.pt",
      );
      assertEquals(e.code, "BAD_FILE");
      assert(/space|quota|full/i.test(e.message), e.message);
      assertEquals([...Deno.readDirSync(dir)].length, 0);
    } finally {
      new Deno.Command("umount", { args: [dir] }).outputSync();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("train CLI: 20 epochs on 8 dsb2018 images from tiny-cpsam lower the training loss", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const names = [...Deno.readDirSync(join(DATA, "dsb2018"))].map((e) => e.name)
      .filter((n) => n.endsWith("_masks.tif")).sort().slice(0, 8).map((n) => n.slice(0, -10));
    for (const n of names) {
      for (const f of [`${n}.png`, `${n}_masks.tif`]) {
        await Deno.symlink(join(DATA, "dsb2018", f), join(dir, f));
      }
    }
    const out = await runCli([
      "train",
      "--dir",
      dir,
      "--pretrained_model",
      join(FIXTURES, "tiny-cpsam.pt"),
      "--n_epochs",
      "20",
      "--learning_rate",
      "1e-3",
      "--model_name_out",
      "t8",
      "--json",
    ]);
    assertEquals(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const epochs = lines.filter((l) => "epoch" in l);
    assertEquals(epochs.length, 20);
    const mean = (xs: { loss: number }[]) => xs.reduce((s, x) => s + x.loss, 0) / xs.length;
    const first = mean(epochs.slice(0, 3)), last = mean(epochs.slice(-3));
    assert(last < 0.8 * first, `training loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    const model = await readCheckpointFile(join(dir, "models", "t8"));
    const summary = lines.at(-1)!;
    assertEquals(model.get("diam_labels")!.data[0], Math.fround(summary.diamLabels));
    assertEquals(model.size, (await readCheckpointFile(join(FIXTURES, "tiny-cpsam.pt"))).size);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train CLI: exit 2 for data without labels, 3 for a model that is not cpsam", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.symlink(join(DATA, "dsb2018", "00071198d059.png"), join(dir, "a.png"));
    let out = await runCli([
      "train",
      "--dir",
      dir,
      "--pretrained_model",
      join(FIXTURES, "tiny-cpsam.pt"),
    ]);
    assertEquals(out.code, 2, out.stderr);
    assert(out.stderr.includes("a.png has no labels"), out.stderr);
    await Deno.symlink(join(DATA, "dsb2018", "00071198d059_masks.tif"), join(dir, "a_masks.tif"));
    await Deno.writeTextFile(join(dir, "notmodel.pt"), "this is not a checkpoint");
    out = await runCli(["train", "--dir", dir, "--pretrained_model", join(dir, "notmodel.pt")]);
    assertEquals(out.code, 3, out.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
