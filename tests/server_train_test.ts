/**
 * Training over HTTP (`/v1/train`) on a real server with the tiny cpsam checkpoint and dsb2018
 * images: uploaded pairs and segmentation jobs whose masks were replaced by the ground truth
 * (`PUT /v1/jobs/:id/masks`) train together; per-epoch losses stream as events and go down; the
 * model lands in the model folder, is listed, loads and segments; a cancel stops the training and
 * leaves no model; bad requests are refused with the field named.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { DATA, FIXTURES } from "./fixtures.ts";
import { type RunningServer, type ServerOptions, startServer } from "../server/main.ts";

const TINY = join(FIXTURES, "tiny-cpsam.pt");
const DSB = join(DATA, "dsb2018");
const NAMES = [...Deno.readDirSync(DSB)].map((e) => e.name).filter((n) => n.endsWith("_masks.tif"))
  .sort().slice(0, 8).map((n) => n.slice(0, -"_masks.tif".length));
const png = (n: string) => Deno.readFile(join(DSB, `${n}.png`));
const masks = (n: string) => Deno.readFile(join(DSB, `${n}_masks.tif`));

async function serve(options: ServerOptions = {}): Promise<RunningServer & { dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "server_train_" });
  await Deno.copyFile(TINY, join(dir, "tiny"));
  const s = await startServer({
    port: 0,
    log: () => {},
    model: "tiny",
    modelsDir: dir,
    device: "cpu",
    ...options,
  });
  const close = s.close.bind(s);
  return Object.assign(s, {
    dir,
    close: async () => {
      await close();
      await Deno.remove(dir, { recursive: true });
    },
  });
}

interface Sse {
  event: string;
  data: Record<string, unknown>;
}

async function readEvents(url: string): Promise<Sse[]> {
  const res = await fetch(url);
  assertEquals(res.status, 200);
  const out: Sse[] = [];
  for (const block of (await res.text()).split("\n\n")) {
    const f = Object.fromEntries(
      block.split("\n").filter((l) => l && !l.startsWith(":")).map((l) => {
        const at = l.indexOf(": ");
        return [l.slice(0, at), l.slice(at + 2)];
      }),
    );
    if (f.id) out.push({ event: f.event, data: JSON.parse(f.data) });
  }
  return out;
}

function trainForm(names: string[], fields: Record<string, string>, jobs: string[] = []) {
  return (async () => {
    const form = new FormData();
    for (const n of names) {
      form.append("image", new Blob([await png(n)]), `${n}.png`);
      form.append("masks", new Blob([await masks(n)]), `${n}_masks.tif`);
    }
    for (const j of jobs) form.append("job", j);
    for (const [k, v] of Object.entries(fields)) form.set(k, v);
    return form;
  })();
}

async function segmentJob(url: string, n: string): Promise<string> {
  const res = await fetch(`${url}/v1/segment`, {
    method: "POST",
    headers: { "content-type": "image/png" },
    body: await png(n),
  });
  assertEquals(res.status, 202);
  const { id } = await res.json();
  const events = await readEvents(`${url}/v1/jobs/${id}/events`);
  assertEquals(events.at(-1)!.data.status, "done");
  return id;
}

Deno.test("server train: 4 dsb2018 images (2 uploaded, 2 corrected jobs) lower the loss; the model is listed, loads and segments", async () => {
  const s = await serve();
  try {
    // four segmentations whose masks the "user" replaces by the ground truth
    const jobs: string[] = [];
    for (const n of NAMES.slice(2, 4)) {
      const id = await segmentJob(s.url, n);
      const put = await fetch(`${s.url}/v1/jobs/${id}/masks`, {
        method: "PUT",
        headers: { "content-type": "image/tiff" },
        body: await masks(n),
      });
      assertEquals(put.status, 200, await put.clone().text());
      assert(((await put.json()).nMasks as number) > 5);
      jobs.push(id);
    }
    const form = await trainForm(NAMES.slice(0, 2), {
      n_epochs: "20",
      learning_rate: "1e-3",
      model_name: "corrected",
    }, jobs);
    const res = await fetch(`${s.url}/v1/train`, { method: "POST", body: form });
    assertEquals(res.status, 202, await res.clone().text());
    const job = await res.json();
    assertEquals(res.headers.get("location"), `/v1/train/${job.id}`);
    assertEquals([job.kind, job.modelName], ["train", "corrected"]);

    const events = await readEvents(`${s.url}/v1/train/${job.id}/events`);
    const end = events.at(-1)!.data;
    assertEquals(end.status, "done", JSON.stringify(end));
    const epochs = events.filter((e) => e.data.event === "epoch").map((e) => e.data);
    assertEquals(epochs.map((e) => e.epoch), Array.from({ length: 20 }, (_, i) => i + 1));
    const steps = events.filter((e) => e.data.event === "step");
    assertEquals(steps.length, 20 * 4);
    const fractions = events.filter((e) => e.event === "progress").map((e) => e.data.fraction);
    assertEquals(fractions.at(-1), 1);
    assert(fractions.every((f, i) => i === 0 || (f as number) >= (fractions[i - 1] as number)));
    const loss = epochs.map((e) => e.loss as number);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(loss.slice(0, 3)), last = mean(loss.slice(-3));
    assert(last < 0.8 * first, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    assertEquals(end.trainLosses, loss);
    assertEquals([end.nTrain, end.modelName], [4, "corrected"]);
    console.log(
      `server training: ${(end.secondsPerEpoch as number).toFixed(2)} s/epoch (4 images, tiny), ` +
        `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`,
    );

    // in the model folder (no staging left), listed, loadable, and it segments
    assertEquals(end.path, join(s.dir, "corrected"));
    assertEquals([...Deno.readDirSync(join(s.dir, ".training"))].length, 0);
    const models = await (await fetch(`${s.url}/v1/models`)).json();
    assert(models.models.some((m: { name: string }) => m.name === "corrected"));
    const load = await fetch(`${s.url}/v1/models/corrected/load`, { method: "POST" });
    assertEquals(load.status, 200, await load.clone().text());
    assertEquals((await load.json()).current.name, "corrected");
    const seg = await fetch(`${s.url}/v1/segment?sync=1`, {
      method: "POST",
      headers: { "content-type": "image/png" },
      body: await png(NAMES[0]),
    });
    assertEquals(seg.status, 200, await seg.clone().text());
    const r = await seg.json();
    assertEquals(r.shape.length, 2);

    // the name is now taken
    const again = await fetch(`${s.url}/v1/train`, {
      method: "POST",
      body: await trainForm(NAMES.slice(0, 1), { model_name: "corrected", n_epochs: "1" }),
    });
    assertEquals(again.status, 409);
    assertEquals((await again.json()).error.field, "model_name");
  } finally {
    await s.close();
  }
});

Deno.test("server train: a cancelled training stops, says cancelled, and saves no model", async () => {
  const s = await serve();
  try {
    const res = await fetch(`${s.url}/v1/train`, {
      method: "POST",
      body: await trainForm(NAMES.slice(0, 2), { n_epochs: "500", model_name: "never" }),
    });
    assertEquals(res.status, 202, await res.clone().text());
    const { id } = await res.json();
    // wait for the first step, then cancel
    const stream = await fetch(`${s.url}/v1/train/${id}/events`);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes('"event":"step"')) text += (await reader.read()).value ?? "";
    const del = await fetch(`${s.url}/v1/train/${id}`, { method: "DELETE" });
    assertEquals(del.status, 200);
    assertEquals((await del.json()).cancelled, true);
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      text += value;
    }
    assert(text.includes('"status":"cancelled"'), text.slice(-300));
    assertEquals((await (await fetch(`${s.url}/v1/train/${id}`)).json()).status, "cancelled");
    // the worker ends within its step; the staging folder goes with it
    for (let i = 0; i < 100 && [...Deno.readDirSync(join(s.dir, ".training"))].length; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals([...Deno.readDirSync(join(s.dir, ".training"))].length, 0);
    const models = await (await fetch(`${s.url}/v1/models`)).json();
    assert(!models.models.some((m: { name: string }) => m.name === "never"));
  } finally {
    await s.close();
  }
});

Deno.test("server train: bad requests are 4xx naming the field", async () => {
  const s = await serve({ trainMaxImages: 2, trainMaxEpochs: 50 });
  try {
    const post = async (body: BodyInit, headers: Record<string, string> = {}) => {
      const res = await fetch(`${s.url}/v1/train`, { method: "POST", body, headers });
      const j = await res.json();
      return { status: res.status, field: j.error?.field, message: j.error?.message as string };
    };
    const cases: [string, () => BodyInit | Promise<BodyInit>, number, string, string][] = [
      ["no images", async () => await trainForm([], {}), 400, "image", "no training images"],
      [
        "image without masks",
        async () => {
          const f = await trainForm(NAMES.slice(0, 1), {});
          f.append("image", new Blob([await png(NAMES[1])]), "x.png");
          return f;
        },
        400,
        "masks",
        '2 "image" parts but 1 "masks"',
      ],
      [
        "masks of another size",
        async () => {
          const f = new FormData();
          f.append("image", new Blob([await png(NAMES[0])]), "a.png");
          f.append("masks", new Blob([await masks(NAMES[1])]), "b_masks.tif");
          return f;
        },
        422,
        "masks",
        "b_masks.tif have shape",
      ],
      [
        "unknown parameter",
        async () => await trainForm(NAMES.slice(0, 1), { epochs: "3" }),
        400,
        "epochs",
        "unknown training parameter epochs",
      ],
      [
        "too many epochs",
        async () => await trainForm(NAMES.slice(0, 1), { n_epochs: "51" }),
        400,
        "n_epochs",
        "[1, 50]",
      ],
      [
        "bad learning rate",
        async () => await trainForm(NAMES.slice(0, 1), { learning_rate: "fast" }),
        400,
        "learning_rate",
        "a number",
      ],
      [
        "too many images",
        async () => await trainForm(NAMES.slice(0, 3), {}),
        413,
        "image",
        "up to 2",
      ],
      [
        "a path as model",
        async () => await trainForm(NAMES.slice(0, 1), { pretrained_model: "/etc/passwd" }),
        400,
        "pretrained_model",
        "not a path",
      ],
      [
        "an unknown model",
        async () => await trainForm(NAMES.slice(0, 1), { pretrained_model: "nope" }),
        404,
        "pretrained_model",
        "nope",
      ],
      [
        "a bad model name",
        async () => await trainForm(NAMES.slice(0, 1), { model_name: "../x" }),
        400,
        "model_name",
        "a file name",
      ],
      [
        "too few masks",
        async () => await trainForm(NAMES.slice(0, 1), { min_train_masks: "100000" }),
        400,
        "min_train_masks",
        "at least min_train_masks = 100000",
      ],
      ["an unknown job", () => JSON.stringify({ jobs: ["nope"] }), 404, "job", "no job nope"],
      [
        "a text image part",
        () => {
          const f = new FormData();
          f.set("image", "hello");
          return f;
        },
        400,
        "image",
        "a file part",
      ],
      [
        "not an image",
        async () => {
          const f = new FormData();
          f.append("image", new Blob([new Uint8Array([1, 2, 3, 4])]), "junk.png");
          f.append("masks", new Blob([await masks(NAMES[0])]), "m.tif");
          return f;
        },
        422,
        "image",
        "junk.png",
      ],
    ];
    for (const [what, body, status, field, message] of cases) {
      const b = await body();
      const r = await post(b, typeof b === "string" ? { "content-type": "application/json" } : {});
      assertEquals([r.status, r.field], [status, field], `${what}: ${JSON.stringify(r)}`);
      assert(r.message.includes(message), `${what}: ${r.message}`);
    }
    const raw = await post(await png(NAMES[0]), { "content-type": "image/png" });
    assertEquals([raw.status, raw.field], [415, "content-type"]);
    // a job that is not done yet, and one whose masks are too few, are refused at submit
    assertEquals((await fetch(`${s.url}/v1/train/nope`)).status, 404);
  } finally {
    await s.close();
  }
});
