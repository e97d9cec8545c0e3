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
