/**
 * The Fiji/ImageJ bridge end to end with real ImageJ 1.53 (Debian's `imagej`, its ij.jar) under
 * Xvfb: the bridge jar is built and installed into a plugins folder, a dsb2018 image is opened,
 * `Plugins > Cellpose-SAM > Segment...` is run by a macro against the real server, choosing the
 * shipped `nuclei` model in its dialog, on the README's sample image; ImageJ's label image and ROI
 * Manager count are checked against what the server returned, and the masks against the truth.
 * A screenshot of ImageJ with the result is kept in test-artifacts/fiji-result.png.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { REPO } from "./fixtures.ts";
import { ARTIFACTS, startTinyServer } from "./e2e.ts";
import { imagejHome, imagejMissing, runMacro } from "./imagej.ts";
import { encodeTiff } from "../io/tiff_write.ts";
import { readImage } from "../io/image.ts";
import { readNpy } from "../io/npy.ts";
import { averagePrecision } from "../metrics/matching.ts";

const IMAGE = join(REPO, "examples", "03f583ec5018.png");
const TRUTH = join(REPO, "examples", "03f583ec5018_masks.tif");

Deno.test({
  name: "fiji bridge: ImageJ macro runs Segment..., label image and ROI Manager match the server",
  ignore: imagejMissing(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const home = await imagejHome("fiji_e2e_");
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const server = await startTinyServer();
    const out = join(home, "result.txt");
    const labelsOut = join(home, "labels.tif");
    const shot = join(ARTIFACTS, "fiji-result.png");
    const macro = `
open("${IMAGE}");
source = getImageID();
run("Segment...", "server=${server.url} token=[] model=nuclei diameter=0 flow=0.4 cell=0 minimum=15");
n = roiManager("count");
title = getTitle();
getRawStatistics(nPixels, mean, min, max);
depth = bitDepth();
saveAs("Tiff", "${labelsOut}");
// arrange the windows for the screenshot: image with ROIs, label image, ROI Manager
setLocation(490, 110);
run("Set... ", "zoom=150");
selectImage(source);
setLocation(0, 110);
run("Set... ", "zoom=150");
roiManager("Show All without labels");
selectWindow("ROI Manager");
setLocation(990, 110);
selectWindow("Log");
run("Close");
wait(500);
run("Capture Screen");
saveAs("PNG", "${shot}");
File.saveString(n + "\\n" + max + "\\n" + title + "\\n" + depth, "${out}");
run("Quit");
`;
    try {
      await runMacro(home, macro, out, 120_000);
      const [count, max, title, depth] = (await Deno.readTextFile(out)).trim().split("\n");
      const jobs = (await (await fetch(`${server.url}/v1/jobs`)).json()).jobs;
      assertEquals(jobs.length, 1, "one job submitted by the bridge");
      assertEquals(jobs[0].status, "done");
      const n = jobs[0].nMasks as number;
      assert(n > 0);
      assertEquals(Number(count), n, "ROI Manager holds one ROI per mask");
      assertEquals(Number(max), n, "labels are 1..N");
      assertEquals(title, "03f583ec5018_cp_masks");
      const current = (await (await fetch(`${server.url}/v1/models`)).json()).current;
      assertEquals(current.name, "nuclei", "the dialog's model was loaded");
      assertEquals(Number(depth), 16);
      const server_masks = readNpy(
        new Uint8Array(
          await (await fetch(`${server.url}/v1/jobs/${jobs[0].id}/result?format=npy`))
            .arrayBuffer(),
        ),
      );
      const ij = await readImage(labelsOut);
      assertEquals(ij.image.shape, server_masks.shape);
      assertEquals(Array.from(ij.image.data), Array.from(server_masks.data as Uint16Array));
      const { ap } = averagePrecision((await readImage(TRUTH)).image, ij.image);
      assert(ap[0] >= 0.6, `AP@0.5 of the nuclei model in Fiji: ${ap[0]}`);
    } finally {
      await server.cleanup();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "fiji bridge: an image too large to send goes by its file path (--data_dir), labels streamed to a file; an unsaved one is refused with the reason",
  ignore: imagejMissing(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const home = await imagejHome("fiji_large_");
    const data = join(home, "data");
    await Deno.mkdir(data);
    const tif = join(data, "slide.tif");
    // the sample's first channel as a 2-D grey TIFF (the server's large path reads 2-D images)
    const { image } = await readImage(IMAGE);
    const [h, w, c] = image.shape;
    const grey = new Uint8Array(h * w).map((_, i) => image.data[i * c]);
    await Deno.writeFile(tif, encodeTiff({ data: grey, shape: [h, w] }));
    const server = await startTinyServer(undefined, { dataDirs: [data] });
    const out = join(home, "result.txt");
    const labelsOut = join(home, "labels.tif");
    // "send=0.0001": every image is "too large to send"; a new image has no file to name
    const macro = `
newImage("unsaved", "8-bit ramp", 64, 64, 1);
run("Segment...", "server=${server.url} token=[] model=nuclei diameter=0 flow=0.4 cell=0 minimum=15 send=0.0001");
refused = call("cellpose.CellposeBridge.lastError");
close("unsaved");
open("${tif}");
run("Segment...", "server=${server.url} token=[] model=nuclei diameter=0 flow=0.4 cell=0 minimum=15 send=0.0001");
error = call("cellpose.CellposeBridge.lastError");
title = getTitle();
saveAs("Tiff", "${labelsOut}");
File.saveString(error + "\\n" + title + "\\n" + refused, "${out}");
run("Quit");
`;
    try {
      await runMacro(home, macro, out, 180_000);
      const [error, title, ...rest] = (await Deno.readTextFile(out)).split("\n");
      const refused = rest.join("\n");
      assertEquals(error, "", "Segment by path succeeded");
      assert(refused.includes("too large to send") && refused.includes("--data_dir"), refused);
      assertEquals(title, "slide_cp_masks");
      assertEquals(
        (await (await fetch(`${server.url}/v1/jobs`)).json()).jobs.length,
        0,
        "nothing uploaded",
      );
      const direct = await fetch(
        `${server.url}/v1/segment_large?path=${
          encodeURIComponent(tif)
        }&flow_threshold=0.4&cellprob_threshold=0.0&min_size=15`,
        { method: "POST" },
      );
      const nMasks = Number(direct.headers.get("x-cellpose-masks"));
      const want = await readImage(new Uint8Array(await direct.arrayBuffer()), "want.tif");
      assert(nMasks > 10, `the nuclei model finds the sample's nuclei (${nMasks})`);
      const ij = await readImage(labelsOut);
      assertEquals(ij.image.shape, want.image.shape);
      assertEquals(Array.from(ij.image.data), Array.from(want.image.data));
    } finally {
      await server.cleanup();
      await Deno.remove(home, { recursive: true });
    }
  },
});
