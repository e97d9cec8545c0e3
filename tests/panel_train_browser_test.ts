/**
 * The panel's Train section in real headless Chromium against the real server with the tiny cpsam
 * model: segment a dsb2018 image, add its (edited) masks to the training set (the server's job now
 * holds exactly the panel's labels), start a training and cancel it, train again to the end with
 * the loss curve drawn from the per-epoch events (equal to the server's losses), then "Use this
 * model" makes it the server's model. Screenshots go to test-artifacts/.
 */
import { join } from "node:path";
import { chromium } from "playwright-core";
import { assert, assertEquals } from "./assert.ts";
import { DATA } from "./fixtures.ts";
import { ARTIFACTS, CHROMIUM, CHROMIUM_OPTIONS, missing, startTinyServer } from "./e2e.ts";
import { buildPanel } from "../plugin-ui/build.ts";
import { readNpy } from "../io/npy.ts";

const IMAGE = join(DATA, "dsb2018", "0e21d7b3eea8.png");

Deno.test({
  name:
    "panel: add corrected masks to training, train (cancel, then to the end), loss curve, use the model (Chromium)",
  ignore: missing(CHROMIUM),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dist = await buildPanel();
    const server = await startTinyServer(dist);
    const browser = await chromium.launch(CHROMIUM_OPTIONS);
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(server.url + "/");
      await page.locator("cellpose-panel").waitFor();
      await page.setInputFiles('input[type="file"]', IMAGE);
      await page.getByText("0e21d7b3eea8.png: 256 × 320 × 3").waitFor();
      await page.getByRole("button", { name: "Run", exact: true }).click();
      const count = page.locator("#mask-count");
      await count.waitFor({ timeout: 60_000 }).catch(async (e) => {
        await page.screenshot({ path: join(ARTIFACTS, "panel-train-failed.png") });
        throw e;
      });
      const shown = Number((await count.textContent())!.split(" ")[0]);

      // edit: delete one mask (the first labelled pixel's), then add to the training set
      const job = (await (await fetch(`${server.url}/v1/jobs`)).json()).jobs[0];
      const npy = async () =>
        readNpy(
          new Uint8Array(
            await (await fetch(`${server.url}/v1/jobs/${job.id}/result?format=npy`)).arrayBuffer(),
          ),
        ).data as Uint16Array;
      const before = await npy();
      await page.getByRole("button", { name: "Add to training set" }).click();
      await page.getByText(`0e21d7b3eea8.png · ${shown} masks`).waitFor();
      assertEquals(Array.from(await npy()), Array.from(before)); // unedited: the same labels
      assert(shown >= 5, `the tiny model finds ${shown} masks; training needs 5`);

      // start a long training and cancel it
      const epochs = page.getByLabel("epochs");
      await epochs.fill("500");
      await page.getByLabel("model name").fill("panel_cells");
      await page.getByRole("button", { name: "Start training" }).click();
      await page.locator("#train-status").getByText("running · epoch").waitFor({
        timeout: 120_000,
      });
      await page.getByRole("button", { name: "Cancel training" }).click();
      await page.locator("#train-status").getByText("cancelled").waitFor({ timeout: 60_000 });
      let trainings = (await (await fetch(`${server.url}/v1/train`)).json()).jobs;
      assertEquals(trainings.map((t: { status: string }) => t.status), ["cancelled"]);

      // train to the end: 4 epochs at a high learning rate
      await epochs.fill("4");
      await page.getByLabel("learning rate").fill("0.001");
      await page.getByRole("button", { name: "Start training" }).click();
      await page.locator("#train-status").getByText("done").waitFor({ timeout: 300_000 });
      trainings = (await (await fetch(`${server.url}/v1/train`)).json()).jobs;
      const done = trainings.find((t: { status: string }) => t.status === "done");
      assertEquals(done.modelName, "panel_cells");
      assertEquals(done.trainLosses.length, 4);
      // the curve has one point per epoch, the last one the server's last loss
      const points = (await page.locator("#loss-curve polyline").getAttribute("points"))!
        .trim().split(" ");
      assertEquals(points.length, 4);
      await page.getByText(`epoch 4/4 · loss ${done.trainLosses[3].toFixed(4)}`).waitFor();
      await page.screenshot({ path: join(ARTIFACTS, "panel-trained.png") });

      // use it: the server's model for the next segmentations
      await page.getByRole("button", { name: "Use this model" }).click();
      await page.getByText("segmenting with panel_cells").waitFor();
      const models = await (await fetch(`${server.url}/v1/models`)).json();
      assertEquals(models.current.name, "panel_cells");
      assert(models.models.some((m: { name: string }) => m.name === "panel_cells"));
      await page.getByText("model panel_cells (loaded)").waitFor({ timeout: 30_000 });
      assertEquals(errors, []);
    } finally {
      await browser.close();
      await server.cleanup();
    }
  },
});
