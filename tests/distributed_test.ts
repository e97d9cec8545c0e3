/**
 * Block-wise runs on many processes, through the CLI, with the tiny cpsam: on a real redis-server
 * (started here on a free loopback port, stopped after) with workers as separate processes, one
 * killed mid-block, or started after the run was queued; and scheduler-free (plan / block /
 * merge, as SLURM array tasks run it). The labels equal the single-process `segmentLarge` result
 * exactly. Bad input: a Redis that does not answer, a plan from another image, an image changed
 * after planning, a Zarr without multiscales metadata.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { type CliProcess, runCli, spawnCli } from "./cli.ts";
import { FIXTURES } from "./fixtures.ts";
import { writeOmeZarr } from "./ome_zarr_write.ts";
import { freePort, startRedis } from "./redis_server.ts";
import { connectRedis, queueKeys } from "../distributed/redis.ts";
import { readTiff } from "../io/tiff_read.ts";
import { TiffStripWriter } from "../io/tiff_strips.ts";
import { openOmeZarr } from "../io/ome_zarr.ts";
import { loadModel } from "../models/load.ts";
import { segmentLarge } from "../pipeline/segment_large.ts";

const SEG = ["--block_size", "128", "--halo", "32", "--cellprob_threshold", "-1"];
const SEG_MORE = [...SEG, "--flow_threshold", "0"];
const LIB = { blockSize: 128, halo: 32, cellprobThreshold: -1, flowThreshold: 0 };

function assertMatch(text: string, re: RegExp): void {
  assert(re.test(text), `expected ${re} in:\n${text}`);
}

/** Seeded uniform numbers in [0, 1). */
function random(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** A uint16 image of bright discs on a noisy background. */
function blobs(h: number, w: number, seed: number): Uint16Array {
  const rnd = random(seed);
  const px = new Uint16Array(h * w).map(() => 100 + Math.floor(rnd() * 50));
  for (let k = 0; k < h * w / 600; k++) {
    const cy = rnd() * h, cx = rnd() * w, r = 5 + rnd() * 7;
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(h, cy + r); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(w, cx + r); x++) {
        if ((y - cy) ** 2 + (x - cx) ** 2 < r * r) px[y * w + x] = 900 + Math.floor(rnd() * 50);
      }
    }
  }
  return px;
}

async function writeImage(path: string, h: number, w: number, seed: number): Promise<Uint16Array> {
  const px = blobs(h, w, seed);
  const writer = await TiffStripWriter.create(path, w, h, Uint16Array);
  await writer.write(px);
  await writer.close();
  return px;
}

async function labelsOf(path: string): Promise<Uint16Array | Uint32Array> {
  return (await readTiff(await Deno.readFile(path), path)).image.data as Uint16Array;
}

/** A temporary folder with the tiny model converted once, and the env for child processes. */
async function setup(): Promise<{ dir: string; model: string; env: Record<string, string> }> {
  const dir = await Deno.makeTempDir({ prefix: "distributed_test_" });
  const models = join(dir, "models");
  await Deno.mkdir(models);
  const model = join(models, "tiny-cpsam.pt");
  await Deno.copyFile(join(FIXTURES, "tiny-cpsam.pt"), model);
  return { dir, model, env: { CELLPOSE_LOCAL_MODELS_PATH: models } };
}

/** The single-process result: segmentLarge on the same image, same options. */
async function reference(
  input: string,
  out: string,
  modelPath: string,
  env: Record<string, string>,
) {
  const previous = Deno.env.get("CELLPOSE_LOCAL_MODELS_PATH");
  Deno.env.set("CELLPOSE_LOCAL_MODELS_PATH", env.CELLPOSE_LOCAL_MODELS_PATH);
  const model = await loadModel(modelPath, { device: "cpu" });
  try {
    const r = await segmentLarge(input, out, { model, ...LIB });
    assert(r.nMasks > 1000 && r.blocks === 12, `reference: ${r.nMasks} masks, ${r.blocks} blocks`);
    return await labelsOf(out);
  } finally {
    await model.dispose();
    if (previous === undefined) Deno.env.delete("CELLPOSE_LOCAL_MODELS_PATH");
    else Deno.env.set("CELLPOSE_LOCAL_MODELS_PATH", previous);
  }
}

/** The queue holds nothing of finished runs. */
async function assertQueueEmpty(url: string) {
  const redis = await connectRedis(url);
  try {
    const k = queueKeys();
    assertEquals(await redis.xLen(k.jobs), 0, "no jobs left");
    assertEquals((await redis.keys("cellpose:run:*")).length, 0, "no run plans left");
    assertEquals((await redis.keys("cellpose:done:*")).length, 0, "no done streams left");
  } finally {
    redis.destroy();
  }
}

const [H, W] = [400, 380];

Deno.test({
  name: "redis: 3 worker processes, one killed mid-block: labels equal segmentLarge's exactly",
  sanitizeResources: false,
  async fn() {
    const { dir, model, env } = await setup();
    const procs: CliProcess[] = [];
    const redis = await startRedis(dir);
    try {
      const input = join(dir, "blobs.tif");
      await writeImage(input, H, W, 3);
      const want = await reference(input, join(dir, "reference.tif"), model, env);
      const worker = (name: string) =>
        spawnCli(
          ["worker", redis.url, "--device", "cpu", "--claim_after", "2", "--name", name],
          { env },
        );
      const workers = ["w1", "w2", "w3"].map(worker);
      procs.push(...workers);
      for (const w of workers) await w.waitFor(/waiting for jobs/);
      const out = join(dir, "out");
      const coord = spawnCli([
        "segment",
        input,
        "--distributed",
        redis.url,
        "--savedir",
        out,
        "--pretrained_model",
        model,
        ...SEG_MORE,
        "--no_npy",
        "--json",
      ], { env });
      procs.push(coord);
      // w1 dies in the middle of its first block
      const started = await workers[0].waitFor(/block (\d+) of .*: started/);
      workers[0].kill("SIGKILL");
      const killed = Number(started[1]);
      assertEquals((await coord.result()).code, 0, coord.stderr);
      const result = JSON.parse(coord.stdout.trim());
      assertEquals(result.blocks, 12);
      assert(!("w1" in result.workers), `w1 finished nothing: ${JSON.stringify(result.workers)}`);
      assertEquals(Object.values(result.workers).reduce((a, b) => Number(a) + Number(b), 0), 12);
      // another worker took the killed block over after --claim_after
      assertMatch(
        workers[1].stderr + workers[2].stderr,
        new RegExp(`block ${killed} of .*: started \\(taken over\\)`),
      );
      assertEquals(
        await labelsOf(join(out, "blobs_cp_masks.tif")),
        want,
        "labels equal segmentLarge's",
      );
      assertEquals(
        [...Deno.readDirSync(out)].map((e) => e.name),
        ["blobs_cp_masks.tif"],
        "block results removed",
      );
      await assertQueueEmpty(redis.url);
      // stopped by SIGTERM: exit 0
      for (const w of workers.slice(1)) {
        w.kill("SIGTERM");
        assertEquals((await w.result(20000)).code, 0, w.stderr);
        assertMatch(w.stderr, /worker stopped after \d+ blocks/);
      }
    } finally {
      for (const p of procs) p.kill();
      for (const p of procs) await p.result(20000).catch(() => {});
      await redis.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "redis: workers started after the run was queued, an OME-Zarr image: labels equal segmentLarge's",
  sanitizeResources: false,
  async fn() {
    const { dir, model, env } = await setup();
    const procs: CliProcess[] = [];
    const redis = await startRedis(dir);
    try {
      const tif = join(dir, "blobs.tif");
      const px = await writeImage(tif, H, W, 3);
      const want = await reference(tif, join(dir, "reference.tif"), model, env);
      // the same pixels as an OME-Zarr 0.5 image
      const image = join(dir, "blobs.ome.zarr");
      await writeOmeZarr(image, { data: px, shape: [H, W] }, {
        version: "0.5",
        axes: "yx",
        chunks: [100, 100],
      });
      const out = join(dir, "out");
      const coord = spawnCli([
        "segment",
        image,
        "--distributed",
        redis.url,
        "--savedir",
        out,
        "--save_tif",
        "--pretrained_model",
        model,
        ...SEG_MORE,
        "--no_npy",
        "--json",
      ], { env });
      procs.push(coord);
      await coord.waitFor(/blocks 0\/12 .* 0 workers +\(waiting for `cellpose worker`\)/);
      const w1 = spawnCli(["worker", redis.url, "--device", "cpu", "--name", "early"], { env });
      procs.push(w1);
      await w1.waitFor(/block \d+: done/);
      const w2 = spawnCli(["worker", redis.url, "--device", "cpu", "--name", "late"], { env });
      procs.push(w2);
      assertEquals((await coord.result()).code, 0, coord.stderr);
      const result = JSON.parse(coord.stdout.trim());
      assert(result.workers.early >= 1 && result.workers.late >= 1, JSON.stringify(result.workers));
      const tiffOut = join(out, "blobs_cp_masks.tif");
      assertEquals(result.outputs, [join(image, "labels", "cp_masks"), tiffOut]);
      const got = await labelsOf(tiffOut);
      assertEquals(got, want, "labels equal segmentLarge's");
      const zarrLabels = await (await openOmeZarr(join(image, "labels", "cp_masks"))).read({
        y0: 0,
        x0: 0,
        y1: H,
        x1: W,
      });
      assertEquals(zarrLabels.data, got, "the OME-Zarr labels equal the TIFF's");
      await assertQueueEmpty(redis.url);
    } finally {
      for (const p of procs) p.kill("SIGTERM");
      for (const p of procs) await p.result(20000).catch(() => {});
      await redis.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "plan / block / merge: array tasks give segmentLarge's labels; another image's plan is refused",
  sanitizeResources: false,
  async fn() {
    const { dir, model, env } = await setup();
    try {
      const a = join(dir, "a.tif"), b = join(dir, "b.tif");
      await writeImage(a, H, W, 3);
      await writeImage(b, H, W, 4);
      const want = await reference(a, join(dir, "reference.tif"), model, env);
      const work = join(dir, "work");
      const cli = (...args: string[]) => runCli(args, { env });
      const planA = join(dir, "plan-a.json");
      const planned = await cli(
        "plan",
        a,
        "--out",
        planA,
        "--work_dir",
        work,
        "--pretrained_model",
        model,
        ...SEG_MORE,
        "--json",
      );
      assertEquals(planned.code, 0, planned.stderr);
      assertEquals(JSON.parse(planned.stdout).blocks, 12);
      // blocks in any order, two at a time, as array tasks would
      const order = [7, 0, 11, 3, 5, 9, 1, 10, 2, 8, 4, 6];
      for (let i = 0; i < order.length; i += 2) {
        const runs = await Promise.all(
          order.slice(i, i + 2).map((k) =>
            cli("block", planA, "--index", String(k), "--device", "cpu")
          ),
        );
        for (const r of runs) assertEquals(r.code, 0, r.stderr);
      }
      const again = await cli("block", planA, "--index", "7", "--device", "cpu");
      assertMatch(again.stderr, /block 7 of 12: already done/);
      // one result missing: merge names it
      await Deno.rename(join(work, "block-000005.cpb"), join(dir, "block-5.keep"));
      const missing = await cli("merge", planA);
      assertEquals(missing.code, 1, missing.stderr);
      assertMatch(
        missing.stderr,
        /1 of 12 blocks have no result in .*work yet: 5 \(run `cellpose block PLAN --index 5`/,
      );
      await Deno.rename(join(dir, "block-5.keep"), join(work, "block-000005.cpb"));
      const merged = await cli("merge", planA, "--keep_blocks", "--json");
      assertEquals(merged.code, 0, merged.stderr);
      assertEquals(
        await labelsOf(join(dir, "a_cp_masks.tif")),
        want,
        "labels equal segmentLarge's",
      );
      // a plan for another image over the same work folder: merge refuses, naming both images
      const planB = join(dir, "plan-b.json");
      const plannedB = await cli(
        "plan",
        b,
        "--out",
        planB,
        "--work_dir",
        work,
        "--pretrained_model",
        model,
        ...SEG_MORE,
      );
      assertEquals(plannedB.code, 0, plannedB.stderr);
      const foreign = await cli("merge", planB);
      assertEquals(foreign.code, 1, foreign.stderr);
      assertMatch(
        foreign.stderr,
        new RegExp(
          `results of blocks 0-11 in .*work were made by plan [0-9a-f]{16} for ${a}, but this plan \\([0-9a-f]{16}\\) is for ${b}`,
        ),
      );
      // the image changed after planning: a block refuses, naming what was planned and what is there
      await writeImage(a, H, W + 1, 5);
      const changed = await cli("block", planA, "--index", "0", "--force", "--device", "cpu");
      assertEquals(changed.code, 1, changed.stderr);
      assertMatch(
        changed.stderr,
        new RegExp(
          `the plan [0-9a-f]{16} was made for ${a} \\(tiff, 400 x 380 x 1, .*\\), but that image is now ${a} \\(tiff, 400 x 381 x 1`,
        ),
      );
      // an edited plan
      const text = await Deno.readTextFile(planA);
      await Deno.writeTextFile(planA, text.replace('"halo": 32', '"halo": 30'));
      const edited = await cli("block", planA, "--index", "0");
      assertMatch(edited.stderr, /the plan was edited after planning/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "distributed: a Redis that does not answer, a non-OME Zarr: clear errors in a few seconds",
  sanitizeResources: false,
  async fn() {
    const { dir, model, env } = await setup();
    // something that accepts connections and never answers
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of silent) held.push(c);
    })();
    try {
      const input = join(dir, "img.tif");
      await writeImage(input, 64, 64, 1);
      const nobody = `redis://127.0.0.1:${freePort()}`;
      const mute = `redis://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`;
      for (const url of [nobody, mute]) {
        for (
          const args of [["segment", input, "--distributed", url, "--no_npy"], ["worker", url]]
        ) {
          const t0 = performance.now();
          const p = await runCli(args, { env, timeoutMs: 15000 });
          const s = (performance.now() - t0) / 1000;
          assertEquals(p.code, 2, p.stderr);
          assertMatch(
            p.stderr,
            new RegExp(`Redis at ${url} does not answer \\(.+\\): is redis-server running there`),
          );
          assert(s < 10, `${args[0]} gave up after ${s.toFixed(1)} s`);
        }
      }
      const bad = await runCli(["worker", "http://127.0.0.1:6379"], { env });
      assertEquals(bad.code, 2, bad.stderr);
      assertMatch(
        bad.stderr,
        /a Redis URL looks like redis:\/\/HOST:PORT, got "http:\/\/127.0.0.1:6379"/,
      );
      // a Zarr group without OME-Zarr metadata, through segment --distributed and plan
      const plain = join(dir, "plain.zarr");
      await Deno.mkdir(plain);
      await Deno.writeTextFile(join(plain, ".zgroup"), '{"zarr_format": 2}');
      const seg = await runCli([
        "segment",
        plain,
        "--distributed",
        nobody,
        "--no_npy",
        "--pretrained_model",
        model,
      ], { env });
      assertEquals(seg.code, 1, seg.stderr);
      assertMatch(
        seg.stderr,
        new RegExp(`${plain}: a Zarr group without OME-Zarr 'multiscales' metadata`),
      );
      const plan = await runCli(["plan", plain, "--out", join(dir, "p.json")], { env });
      assertEquals(plan.code, 1, plan.stderr);
      assertMatch(
        plan.stderr,
        new RegExp(`${plain}: a Zarr group without OME-Zarr 'multiscales' metadata`),
      );
    } finally {
      silent.close();
      for (const c of held) c.close();
      await accepting.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
