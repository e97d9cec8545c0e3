/**
 * Plugins > Cellpose-SAM > Train... end to end with real ImageJ 1.53 under Xvfb against the real
 * server (tiny model): the human-in-the-loop loop of Fiji. A dsb2018 image is segmented, its ROIs
 * are "corrected" (the ROI Manager is replaced by the ground truth's ROIs), Train... sends the
 * image with the ROI Manager as its labels, the training's epochs appear in the Log, the model's
 * name comes back, the server now segments with it, and Segment runs again with the new model.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { DATA } from "./fixtures.ts";
import { startTinyServer } from "./e2e.ts";
import { imagejHome, imagejMissing, runMacro } from "./imagej.ts";
import { encodeRoiZip } from "../io/roi.ts";
import { readImage } from "../io/image.ts";
import { toLabels } from "../core/labels.ts";

const NAME = "0e21d7b3eea8";
const IMAGE = join(DATA, "dsb2018", `${NAME}.png`);
const TRUTH = join(DATA, "dsb2018", `${NAME}_masks.tif`);

Deno.test({
  name:
    "fiji train: Segment, correct the ROIs, Train... (ROI Manager as labels), Segment with the new model",
  ignore: imagejMissing(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const home = await imagejHome("fiji_train_");
    // the corrected ROIs: the ground truth's masks as an ImageJ ROI zip
    const truth = (await readImage(TRUTH)).image;
    const labels = { data: toLabels(truth, "truth"), shape: truth.shape };
    const nTruth = new Set(labels.data).size - 1;
    await Deno.writeFile(join(home, "corrected.zip"), encodeRoiZip(labels));
    const server = await startTinyServer();
    const out = join(home, "result.txt");
    const macro = `
open("${IMAGE}");
run("Segment...", "server=${server.url} token=[] diameter=0 flow=0.4 cell=0 minimum=15");
first = roiManager("count");
close("*_cp_masks");
selectImage("${NAME}.png");
roiManager("reset");
roiManager("Open", "${join(home, "corrected.zip")}");
corrected = roiManager("count");
run("Train...", "server=${server.url} image=${NAME}.png labels=[<ROI Manager>] model=fiji_cells epochs=3 learning=0.001 use");
model = call("cellpose.TrainCommand.lastModel");
logText = getInfo("log");
selectImage("${NAME}.png");
run("Segment");
n = roiManager("count");
File.saveString(first + "\\n" + corrected + "\\n" + model + "\\n" + n + "\\n" + logText, "${out}");
run("Quit");
`;
    try {
      await runMacro(home, macro, out, 300_000);
      const [first, corrected, model, n, ...log] = (await Deno.readTextFile(out)).split("\n");
      assertEquals(Number(corrected), nTruth);
      assertEquals(model, "fiji_cells");
      const trainings = (await (await fetch(`${server.url}/v1/train`)).json()).jobs;
      assertEquals(trainings.length, 1);
      const t = trainings[0];
      assertEquals([t.status, t.modelName, t.nTrain, t.trainLosses.length], [
        "done",
        "fiji_cells",
        1,
        3,
      ]);
      const text = log.join("\n");
      for (let e = 1; e <= 3; e++) {
        assert(
          text.includes(`epoch ${e}/3 loss ${t.trainLosses[e - 1].toFixed(4)}`),
          `Log lacks epoch ${e}:\n${text}`,
        );
      }
      assert(text.includes("the server now segments with fiji_cells"), text);
      const models = await (await fetch(`${server.url}/v1/models`)).json();
      assertEquals(models.current.name, "fiji_cells");
      // the second Segment ran with the trained model: the ROI Manager holds its masks
      const jobs = (await (await fetch(`${server.url}/v1/jobs`)).json()).jobs;
      assertEquals(jobs.length, 2);
      // the first Segment (the tiny model's masks, often none) filled the ROI Manager with its
      // masks; none must not stop ImageJ at the ROI Manager's "no ROIs" dialog
      assertEquals(Number(first), jobs[0].nMasks);
      assertEquals(Number(n), jobs[1].nMasks);
    } finally {
      await server.cleanup();
      await Deno.remove(home, { recursive: true });
    }
  },
});
