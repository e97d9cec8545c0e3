/**
 * Fine-tuning on a shifted task (issue 10): the shipped `nuclei` model, which segments the stained
 * histology images of DSB2018 poorly, is fine-tuned by `cellpose train` on 8 of them and scored by
 * `cellpose eval` (AP@0.5) on 8 others, before and after, with the CLI commands a user runs:
 *
 * ```sh
 * cellpose segment EVAL --pretrained_model nuclei --save_tif --no_npy --savedir before
 * cellpose train --pretrained_model nuclei --dir TRAIN --n_epochs 25 --nimg_per_epoch 16 \
 *   --learning_rate 5e-4
 * cellpose segment EVAL --pretrained_model TRAIN/models/M --save_tif --no_npy --savedir after
 * cellpose eval before EVAL; cellpose eval after EVAL
 * ```
 *
 * The kind: RGB images whose channel means differ by more than 8 grey levels (stained histology,
 * all 256 x 320; 97 of the 600 images of `dsb2018-train`). Evaluation: the 8 such images of
 * `../shared/data/dsb2018/`; training: the first 8 others of `dsb2018-train` in name order. All 16
 * are in the pool `nuclei` was trained from (13 in its training part), so "before" is `nuclei` on
 * images it has seen. Wall and CPU seconds (of the child process, from /proc) per command.
 * `FINETUNE_EPOCHS` (default 25), `FINETUNE_NIMG` (images per epoch, default 16) and `FINETUNE_LR`
 * (default 5e-4, the learning rate `nuclei` was trained with) change the recipe; the rest is
 * cellpose's (batch 1, 10 warm-up epochs, weight decay 0.1, layer drop 0.4). Work files go to
 * `.cache/bench-finetune/` (gitignored).
 * @module
 */
import { join } from "node:path";
import { spawnCli } from "../tests/cli.ts";

const root = new URL("..", import.meta.url).pathname;
const data = join(root, "../shared/data");

/** The 8 stained histology images of dsb2018/ (evaluation). */
const EVAL = [
  "0e21d7b3eea8",
  "3b0709483b1e",
  "4d14a3629b6a",
  "55f98f43c152",
  "65c8527c16a0",
  "815524d88283",
  "a08166d91d2c",
  "ebc18868864a",
];
/** The first 8 other stained histology images of dsb2018-train/ (training). */
const TRAIN = [
  "0121d6759c5a",
  "01d44a26f668",
  "0bf33d3db428",
  "0c2550a23b8a",
  "0d3640c1f1b8",
  "0e4c2e2780de",
  "136000dc18fa",
  "13f2bec0a24c",
];

/** CPU seconds (user + system, all threads) of process `pid` so far, or NaN once it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/**
 * Runs the CLI with `args` (its progress on stderr kept out of the table); resolves to its stdout,
 * wall and CPU seconds.
 */
async function cli(args: string[]): Promise<{ stdout: string; wall: number; cpu: number }> {
  const t0 = performance.now();
  const child = spawnCli(args);
  let cpu = 0;
  const poll = setInterval(() => {
    const c = cpuSeconds(child.pid);
    if (c > cpu) cpu = c;
  }, 500);
  const out = await child.result(Infinity);
  clearInterval(poll);
  if (out.code !== 0) {
    throw new Error(`cellpose ${args[0]} exited ${out.code}: ${out.stderr.slice(-300)}`);
  }
  return { stdout: out.stdout, wall: (performance.now() - t0) / 1000, cpu };
}

/** Links `names` (image and `_masks.tif`) from `from` into a new folder `dir`. */
async function linkImages(from: string, names: string[], dir: string) {
  await Deno.mkdir(dir, { recursive: true });
  for (const n of names) {
    for (const f of [`${n}.png`, `${n}_masks.tif`]) await Deno.symlink(join(from, f), join(dir, f));
  }
}

/** Segments the evaluation images with `model` and scores them: AP@0.5 and counts. */
async function score(model: string, evalDir: string, savedir: string) {
  const seg = await cli([
    "segment",
    evalDir,
    "--pretrained_model",
    model,
    "--save_tif",
    "--no_npy",
    "--savedir",
    savedir,
  ]);
  const ev = JSON.parse(
    (await cli(["eval", savedir, evalDir, "--thresholds", "0.5", "--json"])).stdout,
  );
  if (ev.images.length !== EVAL.length) throw new Error(`eval scored ${ev.images.length} images`);
  return { ap: ev.meanAP[0], tp: ev.tp[0], fp: ev.fp[0], fn: ev.fn[0], seg };
}

export default async function main(): Promise<void> {
  const epochs = Deno.env.get("FINETUNE_EPOCHS") ?? "25";
  const nimg = Deno.env.get("FINETUNE_NIMG") ?? "16";
  const lr = Deno.env.get("FINETUNE_LR") ?? "5e-4";
  const cache = join(root, ".cache/bench-finetune");
  await Deno.mkdir(cache, { recursive: true });
  const work = await Deno.makeTempDir({ dir: cache, prefix: "run_" });
  try {
    const evalDir = join(work, "eval"), trainDir = join(work, "train");
    await linkImages(join(data, "dsb2018"), EVAL, evalDir);
    await linkImages(join(data, "dsb2018-train"), TRAIN, trainDir);
    const before = await score("nuclei", evalDir, join(work, "before"));
    const tr = await cli([
      "train",
      "--pretrained_model",
      "nuclei",
      "--dir",
      trainDir,
      "--n_epochs",
      epochs,
      "--nimg_per_epoch",
      nimg,
      "--learning_rate",
      lr,
      "--model_name_out",
      "finetuned",
      "--json",
    ]);
    // one line per epoch, then the summary with every epoch's loss
    const losses: number[] = JSON.parse(tr.stdout.trim().split("\n").at(-1)!).trainLosses;
    const after = await score(join(trainDir, "models/finetuned"), evalDir, join(work, "after"));
    console.log(
      `8 + 8 stained histology images of DSB2018; fine-tuning: ${epochs} epochs x ${nimg} images, ` +
        `batch 1, learning rate ${lr}; training loss ${losses[0].toFixed(3)} (epoch 0) -> ` +
        `${losses.at(-1)!.toFixed(3)} (epoch ${losses.length - 1}); ` +
        `train ${tr.wall.toFixed(0)} s wall, ${tr.cpu.toFixed(0)} s CPU\n`,
    );
    console.log("| model | AP@0.5 (8 eval images) | TP | FP | FN | segment s (wall / CPU) |");
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const [name, r] of [["nuclei", before], ["nuclei fine-tuned", after]] as const) {
      console.log(
        `| ${name} | ${r.ap.toFixed(3)} | ${r.tp} | ${r.fp} | ${r.fn} | ` +
          `${r.seg.wall.toFixed(0)} / ${r.seg.cpu.toFixed(0)} |`,
      );
    }
    console.log(`\nAP@0.5 after / before: ${(after.ap / before.ap).toFixed(2)}x`);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) await main();
