/**
 * One naming rule and one encoder per output: `cellpose segment` writes files through
 * `saveOutputs`, the server sends `GET /v1/jobs/:id/result?format=` through the same table
 * (`io/output_formats.ts`). The same image segmented by both gives files of the same names and
 * the same bytes; a failed image leaves no file behind.
 */
import { basename, join } from "node:path";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { FIXTURES, REPO } from "./fixtures.ts";
import { segmentCommand } from "../cli/commands/segment.ts";
import { startServer } from "../server/main.ts";
import { saveOutputs } from "../io/outputs.ts";
import { OUTPUT_KINDS, outputFileName } from "../io/output_formats.ts";
import { outputNames } from "../io/names.ts";
import { CellposeError } from "../core/errors.ts";

const IMAGE = join(REPO, "examples", "03f583ec5018.png");
const TINY = join(FIXTURES, "tiny-cpsam.pt");

/** The CLI flag and the server's format of each output both can make. */
const SHARED: [string, string][] = [
  ["--save_tif", "tiff"],
  ["--save_png", "png"],
  ["--save_txt", "outlines"],
  ["--save_rois", "roi"],
  ["--save_csv", "csv"],
];

Deno.test("outputs: the CLI and the server name every output the same, with the same bytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outputs_naming_" });
  const cache = await Deno.makeTempDir({ prefix: "outputs_naming_models_" });
  const server = await startServer({
    port: 0,
    log: () => {},
    model: TINY,
    device: "cpu",
    modelsDir: cache,
  });
  try {
    const code = await segmentCommand.run([
      IMAGE,
      "--pretrained_model",
      TINY,
      "--device",
      "cpu",
      "--savedir",
      dir,
      "--no_npy",
      ...SHARED.map(([flag]) => flag),
    ]);
    assertEquals(code, 0);
    const form = new FormData();
    form.set("image", new Blob([await Deno.readFile(IMAGE)]), basename(IMAGE));
    const job = await (await fetch(`${server.url}/v1/segment`, { method: "POST", body: form }))
      .json();
    for (let i = 0; i < 600; i++) {
      const s = await (await fetch(`${server.url}/v1/jobs/${job.id}`)).json();
      if (s.status === "done") break;
      assert(s.status === "queued" || s.status === "running", JSON.stringify(s));
      await new Promise((r) => setTimeout(r, 200));
    }
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(files.length, SHARED.length);
    const served: string[] = [];
    for (const [flag, format] of SHARED) {
      const res = await fetch(`${server.url}/v1/jobs/${job.id}/result?format=${format}`);
      assertEquals(res.status, 200, format);
      const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1];
      assert(name && files.includes(name), `${format}: ${name} is one of the CLI's ${files}`);
      served.push(name);
      const bytes = new Uint8Array(await res.arrayBuffer());
      assertEquals(bytes, await Deno.readFile(join(dir, name)), `${flag} / format=${format}`);
    }
    assertEquals(served.sort(), files);
    assert(files.includes("03f583ec5018_cp_masks.tif") && files.includes("03f583ec5018_rois.zip"));
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("outputs: names follow one rule, and a failed image leaves nothing behind", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outputs_atomic_" });
  try {
    const names = outputNames(join(dir, "a.tif"));
    for (const kind of OUTPUT_KINDS) assert(outputFileName(kind, "x/a.tif").startsWith("a_"), kind);
    assertEquals([names.masksTif, names.rois, names.seg].map((p) => basename(p)), [
      "a_cp_masks.tif",
      "a_rois.zip",
      "a_seg.npy",
    ]);
    const masks = { data: new Uint16Array([0, 1, 1, 0]), shape: [2, 2] };
    // the cell probability (written last) does not match its shape: the two files staged before
    // it are removed, none is renamed
    const cellprob = { data: new Float32Array(3), shape: [2, 2] };
    await assertRejects(
      () =>
        saveOutputs(join(dir, "a.tif"), { masks, cellprob }, ["masks_tif", "rois", "cellprob_tif"]),
      CellposeError,
      "TIFF needs",
    );
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), []);
    const ok = await saveOutputs(join(dir, "a.tif"), { masks }, ["masks_tif", "overlay_png"]);
    assertEquals(ok.written.map((p) => basename(p)), ["a_cp_masks.tif"]);
    assertEquals(ok.skipped, ["overlay_png: image [none] does not match the masks"]);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["a_cp_masks.tif"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
