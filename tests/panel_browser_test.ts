/**
 * The panel in real headless Chromium (Debian's, driven by playwright-core), served by the real
 * server (started with the tiny cpsam model): choose the shipped `nuclei` model, open the README's
 * sample image, run, see the overlay and the mask count (equal to the server's; the masks match the
 * truth), hover a mask, export the label TIFF (identical to the server's result), delete a mask by
 * clicking it. Screenshots go to test-artifacts/.
 */
import { join } from "node:path";
import { chromium } from "playwright-core";
import { assert, assertEquals } from "./assert.ts";
import { REPO } from "./fixtures.ts";
import { ARTIFACTS, CHROMIUM, CHROMIUM_OPTIONS, missing, startTinyServer } from "./e2e.ts";
import { buildPanel } from "../plugin-ui/build.ts";
import { readImage } from "../io/image.ts";
import { readNpy } from "../io/npy.ts";
import { averagePrecision } from "../metrics/matching.ts";

const IMAGE = join(REPO, "examples", "03f583ec5018.png");
const TRUTH = join(REPO, "examples", "03f583ec5018_masks.tif");
const H = 360, W = 360;

Deno.test({
  name: "panel: model choice, open, run, overlay and count, hover, export TIFF, delete (Chromium)",
  ignore: missing(CHROMIUM),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dist = await buildPanel();
    const server = await startTinyServer(dist);
    const browser = await chromium.launch(CHROMIUM_OPTIONS);
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    try {
      const page = await browser.newPage({
        viewport: { width: 1280, height: 800 },
        acceptDownloads: true,
      });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(server.url + "/");
      await page.locator("cellpose-panel").waitFor();
      await page.getByLabel("Model", { exact: true }).selectOption("nuclei");
      await page.getByText("model nuclei (loaded)").waitFor({ timeout: 60_000 });
      await page.setInputFiles('input[type="file"]', IMAGE);
      await page.getByText("03f583ec5018.png: 360 × 360 × 3").waitFor();
      await page.getByRole("button", { name: "Run" }).click();
      const count = page.locator("#mask-count");
      await count.waitFor({ timeout: 60_000 });
      const shown = Number((await count.textContent())!.split(" ")[0]);

      // the count is the server's, and the labels the panel holds are the server's result
      const jobs = (await (await fetch(`${server.url}/v1/jobs`)).json()).jobs;
      assertEquals(jobs.length, 1);
      assertEquals(jobs[0].status, "done");
      assertEquals(shown, jobs[0].nMasks);
      assert(shown > 0, "the nuclei model finds masks in this image");
      const masks = readNpy(
        new Uint8Array(
          await (await fetch(`${server.url}/v1/jobs/${jobs[0].id}/result?format=npy`))
            .arrayBuffer(),
        ),
      );
      assertEquals(masks.shape, [H, W]);
      const { ap } = averagePrecision((await readImage(TRUTH)).image, masks);
      assert(ap[0] >= 0.6, `AP@0.5 ${ap[0]}`);
      await page.screenshot({ path: join(ARTIFACTS, "panel-result.png") });

      // the view's transform: the image is fitted and centred in the canvas
      const box = (await page.locator("cellpose-image-view").boundingBox())!;
      const scale = Math.min(box.width / W, box.height / H);
      const at = (x: number, y: number) => ({
        x: box.x + (box.width - W * scale) / 2 + (x + 0.5) * scale,
        y: box.y + (box.height - H * scale) / 2 + (y + 0.5) * scale,
      });
      // a pixel inside a mask, away from its border
      const data = masks.data as Uint16Array;
      let target = -1;
      for (let y = 1; y < H - 1 && target < 0; y++) {
        for (let x = 1; x < W - 1; x++) {
          const l = data[y * W + x];
          if (
            l && data[y * W + x - 1] === l && data[y * W + x + 1] === l &&
            data[(y - 1) * W + x] === l &&
            data[(y + 1) * W + x] === l
          ) {
            target = y * W + x;
            break;
          }
        }
      }
      assert(target >= 0);
      const label = data[target];
      const p = at(target % W, Math.floor(target / W));
      await page.mouse.move(p.x, p.y);
      assertEquals(
        await page.locator("#hover").textContent(),
        `x ${target % W}, y ${Math.floor(target / W)} · label ${label}`,
      );

      // export: the label TIFF made in the browser equals the server's masks
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.getByRole("button", { name: "Label TIFF" }).click(),
      ]);
      assertEquals(download.suggestedFilename(), "03f583ec5018_cp_masks.tif"); // the CLI's name
      const saved = join(ARTIFACTS, download.suggestedFilename());
      await download.saveAs(saved);
      const tiff = await readImage(saved);
      assertEquals(tiff.image.shape, [H, W]);
      assertEquals(Array.from(tiff.image.data), Array.from(data));

      // delete the mask under the cursor
      await page.getByRole("button", { name: "Delete mask" }).click();
      await page.mouse.click(p.x, p.y);
      await page.getByText(`${shown - 1} masks`).waitFor();
      await page.mouse.move(p.x, p.y + 1);
      await page.mouse.move(p.x, p.y);
      assertEquals(
        await page.locator("#hover").textContent(),
        `x ${target % W}, y ${Math.floor(target / W)} · label 0`,
      );
      await page.screenshot({ path: join(ARTIFACTS, "panel-edited.png") });
      assertEquals(errors, []);
    } finally {
      await browser.close();
      await server.cleanup();
    }
  },
});
