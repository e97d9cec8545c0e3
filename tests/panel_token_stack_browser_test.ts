/**
 * The panel in real headless Chromium against a server started with a token: without the token
 * the panel says so; the token entered in its field is used for every call (health, models, the
 * job, its events and results) and survives a reload (session storage). A Z-stack of two planes
 * is segmented plane by plane (stitch threshold 0.5) with the shipped `nuclei` model and exported: the label TIFF is the server's
 * [Z, H, W] masks, the CSV has a row per mask of the stack, the outlines are those of the plane
 * shown.
 */
import { join } from "node:path";
import { chromium } from "playwright-core";
import { assert, assertEquals } from "./assert.ts";
import { REPO } from "./fixtures.ts";
import { ARTIFACTS, CHROMIUM, CHROMIUM_OPTIONS, missing, startTinyServer } from "./e2e.ts";
import { buildPanel } from "../plugin-ui/build.ts";
import { readImage } from "../io/image.ts";
import { readNpy } from "../io/npy.ts";
import { encodeTiff } from "../io/tiff_write.ts";
import { masksToOutlines, outlinesText } from "../io/outlines.ts";

const IMAGE = join(REPO, "examples", "03f583ec5018.png");
const H = 360, W = 360;
const TOKEN = "panel-test-token-8c1f";

/** Two planes: the sample image's first channel, and the same mirrored left to right. */
async function stackTiff(): Promise<Uint8Array> {
  const rgb = (await readImage(IMAGE)).image;
  const data = new Uint8Array(2 * H * W);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const v = Number(rgb.data[(y * W + x) * 3]);
      data[y * W + x] = v;
      data[H * W + y * W + (W - 1 - x)] = v;
    }
  }
  return encodeTiff({ data, shape: [2, H, W] });
}

Deno.test({
  name: "panel: server token from its field (session storage); Z-stack run and exports (Chromium)",
  ignore: missing(CHROMIUM),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dist = await buildPanel();
    const server = await startTinyServer(dist, { token: TOKEN });
    const browser = await chromium.launch(CHROMIUM_OPTIONS);
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const dir = await Deno.makeTempDir({ prefix: "panel_stack_" });
    const auth = { authorization: `Bearer ${TOKEN}` };
    try {
      const stack = join(dir, "stack.tif");
      await Deno.writeFile(stack, await stackTiff());
      const page = await browser.newPage({
        viewport: { width: 1280, height: 800 },
        acceptDownloads: true,
      });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(server.url + "/");
      await page.locator("cellpose-panel").waitFor();
      const health = page.locator("#health");
      await page.getByText("needs its token: enter it under Server token").waitFor();
      assertEquals((await fetch(`${server.url}/v1/health`)).status, 401);

      await page.getByLabel("Server token").fill(TOKEN);
      await page.getByLabel("Server token").press("Enter");
      await page.getByLabel("Server token").blur();
      await page.getByText("server ok").waitFor();
      // a reload keeps the token (session storage) and uses it at once
      await page.reload();
      await page.locator("cellpose-panel").waitFor();
      await page.getByText("server ok").waitFor();
      assertEquals(await page.getByLabel("Server token").inputValue(), TOKEN);
      assertEquals(
        await page.evaluate(() => sessionStorage.getItem("cellpose.token")),
        TOKEN,
      );

      await page.getByLabel("Model", { exact: true }).selectOption("nuclei");
      await page.getByText("model nuclei (loaded)").waitFor({ timeout: 60_000 });
      assert(/model nuclei/.test((await health.textContent())!));
      await page.setInputFiles('input[type="file"]', stack);
      await page.getByText("stack.tif: 2 × 360 × 360 (ZYX)").waitFor();
      await page.locator('input[name="stitch_threshold"]').fill("0.5");
      await page.locator('input[name="stitch_threshold"]').blur();
      await page.getByRole("button", { name: "Run" }).click();
      const count = page.locator("#mask-count");
      await count.waitFor({ timeout: 120_000 }).catch(async (e) => {
        await page.screenshot({ path: join(ARTIFACTS, "panel-stack-failed.png") });
        const said = await page.locator("aside").innerText();
        throw new Error(`no mask count: the panel shows\n${said}`, { cause: e });
      });
      const shown = Number((await count.textContent())!.split(" ")[0]);

      const jobs = (await (await fetch(`${server.url}/v1/jobs`, { headers: auth })).json()).jobs;
      assertEquals(jobs.length, 1);
      assertEquals(jobs[0].status, "done");
      assertEquals(shown, jobs[0].nMasks);
      assert(shown > 0, "the nuclei model finds masks in the stack");
      const masks = readNpy(
        new Uint8Array(
          await (await fetch(`${server.url}/v1/jobs/${jobs[0].id}/result?format=npy`, {
            headers: auth,
          })).arrayBuffer(),
        ),
      );
      assertEquals(masks.shape, [2, H, W]);
      const data = masks.data as Uint16Array;

      const save = async (button: string) => {
        const [d] = await Promise.all([
          page.waitForEvent("download"),
          page.getByRole("button", { name: button, exact: true }).click(),
        ]);
        const path = join(ARTIFACTS, d.suggestedFilename());
        await d.saveAs(path);
        return { name: d.suggestedFilename(), path };
      };
      // the label TIFF: the whole stack, equal to the server's masks
      const tiff = await save("Label TIFF");
      assertEquals(tiff.name, "stack_cp_masks.tif"); // the CLI's name
      const back = await readImage(tiff.path);
      assertEquals(back.image.shape, [2, H, W]);
      assertEquals(Array.from(back.image.data), Array.from(data));
      // the CSV: one row per mask of the stack
      const csv = await save("CSV");
      assertEquals(csv.name, "stack_stats_cp_masks.csv");
      const rows = (await Deno.readTextFile(csv.path)).trim().split("\n");
      assertEquals(rows.length - 1, new Set(data.filter((v) => v > 0)).size);
      // the outlines: of the plane shown (the second)
      await page.getByLabel("Z plane").fill("1");
      await page.getByText("2/2").waitFor();
      const outlines = await save("Outlines");
      assertEquals(outlines.name, "stack_z1_cp_outlines.txt");
      const plane1 = { data: data.subarray(H * W), shape: [H, W] };
      assertEquals(
        await Deno.readTextFile(outlines.path),
        outlinesText(masksToOutlines(plane1)),
      );
      await page.screenshot({ path: join(ARTIFACTS, "panel-stack.png") });
      assertEquals(errors, []);
      assertEquals(await page.locator(".error").count(), 0);
    } finally {
      await browser.close();
      await server.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
