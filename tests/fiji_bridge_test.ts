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
import { ARTIFACTS, missing, startTinyServer } from "./e2e.ts";
import { buildFijiBridge } from "../plugin-ui/fiji/build.ts";
import { readImage } from "../io/image.ts";
import { readNpy } from "../io/npy.ts";
import { averagePrecision } from "../metrics/matching.ts";

const IJ_JAR = "/usr/share/java/ij.jar";
const XVFB = "/usr/bin/xvfb-run";
const IMAGE = join(REPO, "examples", "03f583ec5018.png");
const TRUTH = join(REPO, "examples", "03f583ec5018_masks.tif");

async function waitForFile(
  path: string,
  timeoutMs: number,
  proc: Deno.ChildProcess,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  let exited = false;
  proc.status.then(() => (exited = true));
  while (Date.now() < end) {
    try {
      if ((await Deno.stat(path)).size > 0) return;
    } catch { /* not yet */ }
    if (exited) throw new Error("ImageJ exited before the macro finished");
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`ImageJ did not finish within ${timeoutMs / 1000} s`);
}

Deno.test({
  name: "fiji bridge: ImageJ macro runs Segment..., label image and ROI Manager match the server",
  ignore: missing(IJ_JAR, XVFB, "/usr/bin/javac"),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const jar = await buildFijiBridge(IJ_JAR);
    const home = await Deno.makeTempDir({ prefix: "fiji_e2e_" });
    await Deno.mkdir(join(home, "plugins"), { recursive: true });
    await Deno.copyFile(jar, join(home, "plugins", "Cellpose_SAM.jar"));
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
    const macroFile = join(home, "segment.ijm");
    await Deno.writeTextFile(macroFile, macro);
    const proc = new Deno.Command(XVFB, {
      args: [
        "-a",
        "-s",
        "-screen 0 1280x800x24",
        "java",
        "-Xmx1g",
        `-Duser.home=${home}`,
        `-Dplugins.dir=${home}`,
        "-jar",
        IJ_JAR,
        "-macro",
        macroFile,
      ],
      env: { HOME: home },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      await waitForFile(out, 120_000, proc);
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
      try {
        Deno.kill(-proc.pid, "SIGKILL");
      } catch { /* already gone */ }
      await proc.output().catch(() => {});
      await server.cleanup();
      await Deno.remove(home, { recursive: true });
    }
  },
});
