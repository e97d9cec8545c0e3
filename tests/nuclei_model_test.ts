/**
 * The model shipped with the project (`pretrained/nuclei/`): it resolves by name with no network
 * and no cache, segments the README's sample image well, and is offered when cpsam cannot be had.
 * Needs nothing from `../shared`: these are the checks a fresh clone can run.
 */
import { assert, assertEquals } from "./assert.ts";
import { join } from "node:path";
import {
  averagePrecision,
  listModels,
  loadModel,
  readImage,
  resolveModel,
  segment,
} from "../mod.ts";
import { bundledModelPath } from "../models/store.ts";
import { REPO } from "./fixtures.ts";
import { runCli } from "./cli.ts";

const SAMPLE = join(REPO, "examples", "03f583ec5018.png");
const SAMPLE_LABELS = join(REPO, "examples", "03f583ec5018_masks.tif");
const cache = await Deno.makeTempDir({ prefix: "cp-nuclei-cache-" });
const work = await Deno.makeTempDir({ prefix: "cp-nuclei-work-" });
// nothing may be downloaded: a server that refuses every connection
const offline = { CELLPOSE_LOCAL_MODELS_PATH: cache, CELLPOSE_MODEL_URL: "http://127.0.0.1:9" };

globalThis.addEventListener("unload", () => {
  for (const d of [cache, work]) Deno.removeSync(d, { recursive: true });
});

/** `cellpose <args>` offline, in the work folder. */
const cli = (args: string[]) => runCli(args, { cwd: work, env: offline });

Deno.test("nuclei: resolves by name to the shipped file, and is listed, with an empty cache", async () => {
  const path = bundledModelPath("nuclei")!;
  assertEquals(path, join(REPO, "pretrained", "nuclei", "nuclei.pt"));
  const r = await resolveModel("nuclei", { cacheDir: cache, download: false });
  assertEquals(r, { name: "nuclei", path, kind: "checkpoint" });
  const listed = (await listModels({ cacheDir: cache })).find((m) => m.name === "nuclei");
  assertEquals(listed?.bundled, true);
  assertEquals(listed?.path, path);
  assertEquals(bundledModelPath("cpsam"), undefined);
});

// the shipped weights give 0.789 on the sample (15 of 17 nuclei: one split in two, a corner
// fragment missed); the bound catches a worse model
Deno.test("nuclei: the README's sample image is segmented with AP@0.5 >= 0.78", async () => {
  const net = await loadModel("nuclei", { device: "cpu", cacheDir: cache });
  try {
    const { image } = await readImage(SAMPLE);
    const truth = (await readImage(SAMPLE_LABELS)).image;
    const { masks } = await segment(image, { model: net, device: "cpu" });
    const { ap } = averagePrecision(truth, masks);
    assert(ap[0] >= 0.78, `AP@0.5 ${ap[0].toFixed(3)} < 0.78`);
  } finally {
    await net.dispose();
  }
});

Deno.test("nuclei: the README's first command writes real masks offline", async () => {
  const out = join(work, "results");
  const r = await cli([
    "segment",
    SAMPLE,
    "--pretrained_model",
    "nuclei",
    "--save_tif",
    "--savedir",
    out,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const masks = (await readImage(join(out, "03f583ec5018_cp_masks.tif"))).image;
  const truth = (await readImage(SAMPLE_LABELS)).image;
  const { ap } = averagePrecision(truth, masks);
  assert(ap[0] >= 0.78, `AP@0.5 ${ap[0].toFixed(3)} < 0.78`);
});

Deno.test("nuclei: when cpsam cannot be downloaded, the message offers the shipped model", async () => {
  const r = await cli(["segment", SAMPLE, "--savedir", join(work, "none")]);
  assertEquals(r.code, 3, r.stderr);
  assert(r.stderr.includes("--pretrained_model nuclei"), r.stderr);
});
