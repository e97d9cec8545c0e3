import { assert, assertAlmostEquals, assertEquals, assertThrows } from "./assert.ts";
import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import { parseArgs } from "../cli/args.ts";
import { createProgress } from "../cli/progress.ts";
import { readImage, writeNpy } from "../mod.ts";
import { DATA, fixture, FIXTURES, manifest, REPO } from "./fixtures.ts";
import { assertMasksMatch } from "./match_masks.ts";
import { runCli, spawnCli } from "./cli.ts";

// ---------------------------------------------------------------- the parser, in process

const specs = {
  flow_threshold: { kind: "number", default: 0.4, description: "" },
  cellprob_threshold: { kind: "number", default: 0, description: "" },
  min_size: { kind: "integer", default: 15, description: "" },
  do_3D: { kind: "boolean", description: "" },
  norm_percentile: { kind: "numbers", count: 2, default: [1, 99], description: "" },
  device: { kind: "string", choices: ["auto", "cpu"], default: "auto", description: "" },
  savedir: { kind: "string", description: "" },
} as const;

Deno.test("cli args: snake_case, kebab-case and --name=value are the same flag", () => {
  const a = parseArgs(["x.tif", "--flow_threshold", "0.6", "--do_3D", "--savedir=out"], specs);
  const b = parseArgs(["--flow-threshold=0.6", "--do-3d", "x.tif", "--savedir", "out"], specs);
  assertEquals(a, b);
  assertEquals(a.values.flow_threshold, 0.6);
  assertEquals(a.values.do_3D, true);
  assertEquals(a.positionals, ["x.tif"]);
  assertEquals(a.values.min_size, 15);
  assertEquals(a.values.savedir, "out");
});

Deno.test("cli args: negative numbers are values, --norm_percentile takes two", () => {
  const { values } = parseArgs(
    ["--cellprob_threshold", "-2.5", "--norm_percentile", "0.5", "99.5"],
    specs,
  );
  assertEquals(values.cellprob_threshold, -2.5);
  assertEquals(values.norm_percentile, [0.5, 99.5]);
  assertEquals(parseArgs(["--norm-percentile=2,98"], specs).values.norm_percentile, [2, 98]);
  assertEquals(parseArgs([], specs).values.norm_percentile, [1, 99]);
});

Deno.test("cli args: bad input names the flag as typed", () => {
  const cases: [string[], string][] = [
    [["--flow-treshold", "1"], "unknown option --flow-treshold. Did you mean --flow_threshold?"],
    [["--min_size", "2.5"], "--min_size expects a whole number, got '2.5'"],
    [["--flow_threshold", "abc"], "--flow_threshold expects a number, got 'abc'"],
    [["--device", "tpu"], "--device must be one of auto, cpu; got 'tpu'"],
    [["--savedir"], "--savedir needs a value"],
    [["--norm_percentile", "1"], "--norm_percentile expects 2 numbers"],
    [["--do_3D=yes"], "--do_3D is a switch"],
  ];
  for (const [argv, message] of cases) {
    const e = assertThrows(() => parseArgs(argv, specs), CellposeError, message);
    assertEquals(e.code, "BAD_PARAMETER");
  }
});

Deno.test("cli progress: a live line with tiles/s and ETA on a terminal, plain lines otherwise", () => {
  const lines: string[] = [];
  const tty = createProgress({ total: 2, tty: true, columns: 120, write: (t) => lines.push(t) });
  tty.start("a.png");
  tty.update({ stage: "network", tilesDone: 0, tilesTotal: 8 });
  tty.update({ stage: "network", tilesDone: 8, tilesTotal: 8 });
  tty.done("3 masks");
  assert(lines[1].startsWith("\r\x1b[K[1/2] a.png  network █"), lines[1]);
  assert(/█ 8\/8 tiles {2}[\d.]+ tiles\/s {2}ETA /.test(lines[1]), lines[1]);
  assertEquals(lines[2], "\r\x1b[K", "the live line is cleared");
  assert(lines[3].startsWith("[1/2] a.png: 3 masks ("), lines[3]);
  const plain: string[] = [];
  const log = createProgress({ total: 1, tty: false, write: (t) => plain.push(t) });
  log.start("b.tif");
  log.update({ stage: "network", tilesDone: 1, tilesTotal: 2 });
  log.fail("b.tif: not an image");
  assertEquals(plain, ["[1/1] b.tif: started\n", "[1/1] b.tif: FAILED: b.tif: not an image\n"]);
});

// ---------------------------------------------------------------- the CLI, as a subprocess

const cache = await Deno.makeTempDir({ prefix: "cellpose-cli-test-models-" });
const work = await Deno.makeTempDir({ prefix: "cellpose-cli-test-" });
globalThis.addEventListener("unload", () => {
  for (const d of [cache, work]) Deno.removeSync(d, { recursive: true });
});
// the tiny random model, copied so its converted network lands in the temp cache
const tinyModel = join(cache, "tiny-cpsam.pt");
await Deno.copyFile(join(FIXTURES, "tiny-cpsam.pt"), tinyModel);

/** `cellpose <args>` from the repository, with the temporary model cache. */
const cli = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, { cwd: REPO, env: { CELLPOSE_LOCAL_MODELS_PATH: cache, ...env } });

const jsonLines = (s: string) => s.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));

Deno.test("cli: --help of every command says what it does, with examples", async () => {
  for (
    const [args, words] of [
      [["--help"], ["segment", "eval", "models", "serve", "Exit codes"]],
      [["segment", "--help"], ["_cp_masks.tif", "--savedir", "--flow_threshold", "[default: 0.4]"]],
      [["eval", "--help"], ["error rate", "--thresholds", "Examples"]],
      [["models", "--help"], ["download", "convert", cache]],
      [["serve", "--help"], ["--port", "--token"]],
    ] as const
  ) {
    const r = await cli([...args]);
    assertEquals(r.code, 0, r.stderr);
    for (const w of words) assert(r.stdout.includes(w), `${args.join(" ")} --help lacks '${w}'`);
  }
});

Deno.test("cli: wrong command lines exit 2 naming the problem", async () => {
  const image = join(DATA, "dsb2018", "00071198d059.png");
  for (
    const [args, message] of [
      [["segment", image, "--flow_thresold", "0.5"], "--flow_thresold"],
      [["segment", image, "--diameter", "big"], "--diameter expects a number"],
      [["segment"], "no images given"],
      [["segment", image, "--no_npy"], "nothing to write"],
      [["segment", join(work, "missing.tif")], "no such file or folder"],
      [["segment", join(work, "*.nothing")], "no image matches"],
      [["eval", work], "eval needs two arguments"],
      [["models", "fly"], "unknown models action 'fly'"],
      [["segmnt", image], "unknown command 'segmnt'"],
    ] as const
  ) {
    const r = await cli([...args]);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert(r.stderr.includes(message), `${args.join(" ")}: ${r.stderr}`);
  }
});

const tiny = ["--pretrained_model", tinyModel];

/** Labels in a label image, background excluded. */
function labelsOf(data: ArrayLike<number>): Set<number> {
  const s = new Set<number>();
  for (let i = 0; i < data.length; i++) if (data[i]) s.add(data[i]);
  return s;
}

Deno.test("cli: segment a dsb2018 PNG and an .npy with the tiny model; outputs read back", async () => {
  const savedir = join(work, "segment");
  const png = join(DATA, "dsb2018", "00071198d059.png");
  const npy = join(FIXTURES, "eval3ch-image.npy");
  const r = await cli([
    "segment",
    png,
    npy,
    ...tiny,
    "--savedir",
    savedir,
    "--json",
    "--save_tif",
    "--save_txt",
    "--save_rois",
    "--save_csv",
    "--save_flows",
  ]);
  assertEquals(r.code, 0, r.stderr);
  assert(r.stderr.includes("[2/2] eval3ch-image.npy"), r.stderr);
  const results = jsonLines(r.stdout);
  assertEquals(results.map((x) => x.path), [png, npy]);
  for (const res of results) {
    const base = join(savedir, res.path.endsWith(".png") ? "00071198d059" : "eval3ch-image");
    assertEquals(res.outputs, [
      `${base}_seg.npy`,
      `${base}_cp_masks.tif`,
      `${base}_cp_outlines.txt`,
      `${base}_rois.zip`,
      `${base}_dP_cp_masks.tif`,
      `${base}_cellprob_cp_masks.tif`,
      `${base}_stats_cp_masks.csv`,
    ]);
    const { image: masks } = await readImage(`${base}_cp_masks.tif`);
    const labels = labelsOf(masks.data);
    assertEquals(labels.size, res.nMasks);
    assertEquals(Math.max(0, ...labels), res.nMasks, "labels are 1..N");
    const csv = (await Deno.readTextFile(`${base}_stats_cp_masks.csv`)).trim().split("\n");
    assertEquals(csv.length, res.nMasks + 1);
    const { image: flows } = await readImage(`${base}_dP_cp_masks.tif`);
    assertEquals(flows.shape, [2, ...masks.shape]);
    for (const k of ["normalize", "network", "dynamics", "total"]) {
      assert(res.timings[k] >= 0, `timing ${k}`);
    }
  }
  assert(results[1].nMasks > 0, "the tiny model finds masks in eval3ch");
});

Deno.test("cli: segment --channel_axis 2 reproduces cellpose's masks of eval2ch", async () => {
  const savedir = join(work, "eval2ch");
  const r = await cli([
    "segment",
    join(FIXTURES, "eval2ch-image.npy"),
    "--channel_axis",
    "2",
    ...tiny,
    "--savedir",
    savedir,
    "--no_npy",
    "--save_tif",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const { image: got } = await readImage(join(savedir, "eval2ch-image_cp_masks.tif"));
  const want = await fixture("eval2ch-masks");
  assertEquals(got.shape, want.shape);
  assertMasksMatch(got, want, 1);
});

Deno.test("cli: a Z stack with --stitch_threshold; 2D-only outputs are skipped, not failed", async () => {
  const planes = await fixture("eval3ch-image"); // [3, 280, 260] uint8, used here as Z, Y, X
  const [z, h, w, W] = [3, 96, 96, planes.shape[2]];
  const crop = new Uint8Array(z * h * w);
  for (let k = 0; k < z; k++) {
    for (let y = 0; y < h; y++) {
      crop.set(
        planes.data.subarray(
          (k * planes.shape[1] + y) * W,
          (k * planes.shape[1] + y) * W + w,
        ) as Uint8Array,
        (k * h + y) * w,
      );
    }
  }
  const stack = join(work, "stack.npy");
  await Deno.writeFile(stack, writeNpy({ data: crop, shape: [z, h, w] }));
  const r = await cli([
    "segment",
    stack,
    "--z_axis",
    "0",
    "--stitch_threshold",
    "0.5",
    ...tiny,
    "--no_npy",
    "--save_tif",
    "--save_png",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const [res] = jsonLines(r.stdout);
  assertEquals(res.outputs, [join(work, "stack_cp_masks.tif")]);
  assertEquals(res.skipped, ["--save_png: for 2D images only (masks [3,96,96])"]);
  const { image: masks } = await readImage(res.outputs[0]);
  assertEquals(masks.shape, [z, h, w]);
  assertEquals(labelsOf(masks.data).size, res.nMasks);
});

Deno.test("cli: a corrupt file in a folder is reported, the others are done (exit 1)", async () => {
  const dir = join(work, "mixed");
  await Deno.mkdir(dir);
  await Deno.copyFile(join(DATA, "dsb2018", "00071198d059.png"), join(dir, "a.png"));
  await Deno.writeFile(join(dir, "b.tif"), new TextEncoder().encode("not a tiff at all"));
  await Deno.copyFile(join(FIXTURES, "eval3ch-image.npy"), join(dir, "c.npy"));
  await Deno.copyFile(join(DATA, "dsb2018", "00071198d059_masks.tif"), join(dir, "a_masks.tif"));
  const r = await cli(["segment", dir, ...tiny, "--json"]);
  assertEquals(r.code, 1, r.stderr);
  const results = jsonLines(r.stdout);
  assertEquals(results.map((x) => x.path), ["a.png", "b.tif", "c.npy"].map((f) => join(dir, f)));
  assert(results[1].error.includes("b.tif"), results[1].error);
  assertEquals(results[1].code, "BAD_FILE");
  assert(r.stderr.includes("1 of 3 images failed"), r.stderr);
  assertEquals(results[0].outputs, [join(dir, "a_seg.npy")]);
  assertEquals(results[2].outputs, [join(dir, "c_seg.npy")]);
  for (const f of ["a_seg.npy", "c_seg.npy"]) await Deno.stat(join(dir, f));
});

Deno.test("cli: an image whose last output cannot be written leaves none of its outputs behind", async () => {
  const savedir = join(work, "blocked");
  // a folder where the CSV would go: every other output is written, then the image fails
  await Deno.mkdir(join(savedir, "a_stats_cp_masks.csv", "x"), { recursive: true });
  const png = join(work, "a.png");
  await Deno.copyFile(join(DATA, "dsb2018", "00071198d059.png"), png);
  const r = await cli([
    "segment",
    png,
    ...tiny,
    "--savedir",
    savedir,
    "--json",
    "--save_tif",
    "--save_rois",
    "--save_csv",
  ]);
  assertEquals(r.code, 1, r.stderr);
  assert(jsonLines(r.stdout)[0].error, r.stdout);
  const left = [...Deno.readDirSync(savedir)].map((d) => d.name);
  assertEquals(
    left,
    ["a_stats_cp_masks.csv"],
    "no _seg.npy, _cp_masks.tif, _rois.zip, no partials",
  );
});

Deno.test("cli: --max_image_bytes refuses a larger image before decoding it, naming the flag", async () => {
  const png = join(DATA, "dsb2018", "00071198d059.png");
  const r = await cli([
    "segment",
    png,
    ...tiny,
    "--no_npy",
    "--save_tif",
    "--max_image_bytes",
    "1000",
  ]);
  assertEquals(r.code, 1, r.stderr);
  assert(
    /in its PNG header .*the limit is 1000 bytes \(--max_image_bytes\)/.test(r.stderr),
    r.stderr,
  );
});

Deno.test("cli: a missing model exits 3 and says how to get the weights", async () => {
  const image = join(DATA, "dsb2018", "00071198d059.png");
  const missing = await cli(["segment", image, "--pretrained_model", join(work, "nope.pt")]);
  assertEquals(missing.code, 3, missing.stderr);
  assert(missing.stderr.includes(join(work, "nope.pt")), missing.stderr);
  // cpsam from a server that cannot be reached (as on a machine without internet)
  const empty = await Deno.makeTempDir({ dir: work });
  const offline = await cli(["segment", image], {
    CELLPOSE_LOCAL_MODELS_PATH: empty,
    CELLPOSE_MODEL_URL: "http://127.0.0.1:9",
  });
  assertEquals(offline.code, 3, offline.stderr);
  for (
    const w of [
      "https://huggingface.co/mouseland/cellpose-sam/resolve/main/cpsam",
      join(empty, "cpsam"),
      "--pretrained_model",
    ]
  ) assert(offline.stderr.includes(w), `no '${w}' in: ${offline.stderr}`);
});

Deno.test("cli: eval of the dsb2018 labels against themselves gives AP 1 everywhere", async () => {
  const dir = join(DATA, "dsb2018");
  const r = await cli(["eval", dir, dir, "--json"]);
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assertEquals(out.images.length, 48);
  assertEquals(out.meanAP, [1, 1, 1]);
  assertEquals(out.fp, [0, 0, 0]);
  assertEquals(out.fn, [0, 0, 0]);
  assertEquals(out.tp, Array(3).fill(2399), "every nucleus of the data set matched");
  assertEquals(out.meanErrorRate, 0);
});

Deno.test("cli: eval pairs <name>_cp_masks predictions with <name>_masks ground truth", async () => {
  const pred = join(work, "pred");
  await Deno.mkdir(pred);
  // one a copy, one a symbolic link: a link counts as the file it points to
  await Deno.copyFile(
    join(DATA, "dsb2018", "00071198d059_masks.tif"),
    join(pred, "00071198d059_cp_masks.tif"),
  );
  await Deno.symlink(
    join(DATA, "dsb2018", "03f583ec5018_masks.tif"),
    join(pred, "03f583ec5018_cp_masks.tif"),
  );
  const r = await cli(["eval", pred, join(DATA, "dsb2018"), "--json", "--thresholds", "0.5"]);
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assertEquals(out.images.map((im: { name: string }) => im.name), ["00071198d059", "03f583ec5018"]);
  assertEquals(out.meanAP, [1]);
  assertEquals(out.missing.length, 46);
  assert(r.stderr.includes("46 ground-truth files have no prediction"), r.stderr);
});

Deno.test("cli: eval of the metrics fixtures gives cellpose's numbers", async () => {
  const { metrics } = await manifest();
  const pred = join(FIXTURES, "metrics-pred.npy"), gt = join(FIXTURES, "metrics-gt.npy");
  const r = await cli(["eval", pred, gt, "--json", "--thresholds", metrics.thresholds.join(",")]);
  assertEquals(r.code, 0, r.stderr);
  const [image] = JSON.parse(r.stdout).images;
  assertEquals(image.tp, metrics.tp);
  assertEquals(image.fp, metrics.fp);
  assertEquals(image.fn, metrics.fn);
  image.ap.forEach((ap: number, i: number) => assertAlmostEquals(ap, metrics.ap[i], 1e-7));
  assertEquals(image.errorRate, (metrics.fp[0] + metrics.fn[0]) / (metrics.tp[0] + metrics.fn[0]));
  const table = await cli(["eval", pred, gt]);
  assertEquals(table.code, 0, table.stderr);
  assert(table.stdout.includes("IoU 0.50: AP 0.649  TP 24  FP 7  FN 6"), table.stdout);
  assert(table.stdout.includes("error rate (IoU 0.5, mean per image): 0.433"), table.stdout);
});

Deno.test("cli: serve answers on the port it prints and stops on Ctrl+C", async () => {
  const serve = spawnCli(["serve", "--port", "0", ...tiny], {
    cwd: REPO,
    env: { CELLPOSE_LOCAL_MODELS_PATH: cache },
  });
  try {
    const [, url] = await serve.waitFor(/listening on (http:\/\/\S+)/);
    const health = await (await fetch(`${url}/v1/health`)).json();
    assertEquals(health.status, "ok");
    serve.kill("SIGINT");
    assertEquals((await serve.result()).code, 0, serve.stderr);
  } finally {
    serve.kill();
    await serve.result();
  }
});
