/**
 * The local server over real HTTP on a free loopback port: segmentation of the eval2ch fixture
 * with the tiny cpsam checkpoint (masks equal to cellpose's up to renumbering), progress events,
 * results in every format, cancel, queue limits, health/models/OpenAPI, the panel, bad requests,
 * upload limits, token auth on a non-loopback bind, CORS and the Host check.
 */
import { join } from "node:path";
import { unzipSync } from "fflate";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { fixture, FIXTURES } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import { readNpy, writeNpy } from "../io/npy.ts";
import { readImage } from "../io/image.ts";
import { encodePng } from "../io/png.ts";
import { encodeLabels } from "../io/labels.ts";
import { type RunningServer, type ServerOptions, startServer } from "../server/main.ts";
import { SEGMENT_PARAMS } from "../server/params.ts";

const TINY = join(FIXTURES, "tiny-cpsam.pt");
const cache = await Deno.makeTempDir({ prefix: "server_test_models_" });
globalThis.addEventListener("unload", () => Deno.removeSync(cache, { recursive: true }));
const IMAGE = await Deno.readFile(join(FIXTURES, "eval2ch-image.npy"));
const NPY = { "content-type": "application/x-npy" };

/** Encoders return `Uint8Array<ArrayBufferLike>`; fetch bodies want an `ArrayBuffer` view. */
const body = (u: Uint8Array) => u as Uint8Array<ArrayBuffer>;

function serve(options: ServerOptions = {}): Promise<RunningServer> {
  return startServer({ port: 0, log: () => {}, preload: false, modelsDir: cache, ...options });
}

/** A server loading the tiny model (jobs wait for the load). */
function serveTiny(options: ServerOptions = {}): Promise<RunningServer> {
  return serve({ model: TINY, device: "cpu", preload: true, ...options });
}

interface Sse {
  id: number;
  event: string;
  data: Record<string, unknown>;
}

/** Reads a whole event stream (the server closes it after the final status). */
async function readEvents(url: string, headers: Record<string, string> = {}): Promise<Sse[]> {
  const res = await fetch(url, { headers });
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const out: Sse[] = [];
  for (const block of (await res.text()).split("\n\n")) {
    const fields = Object.fromEntries(
      block.split("\n").filter((l) => l && !l.startsWith(":")).map((l) => {
        const at = l.indexOf(": ");
        return [l.slice(0, at), l.slice(at + 2)];
      }),
    );
    if (fields.id) {
      out.push({ id: Number(fields.id), event: fields.event, data: JSON.parse(fields.data) });
    }
  }
  return out;
}

/** Reads an event stream until its text includes `marker`; returns the text so far. */
async function readUntil(reader: ReadableStreamDefaultReader<string>, marker: string) {
  let seen = "";
  while (!seen.includes(marker)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`stream ended before ${marker}: ${seen}`);
    seen += value;
  }
  return seen;
}

/** Asserts an error response: status, code and the named field. */
async function assertApiError(res: Response, status: number, code: string, field?: string) {
  const body = await res.json();
  assertEquals(res.status, status, JSON.stringify(body));
  assertEquals(res.headers.get("content-type"), "application/json; charset=utf-8");
  assertEquals(body.error.code, code, body.error.message);
  assert(typeof body.error.message === "string" && body.error.message.length > 10);
  assertEquals(body.error.field, field, body.error.message);
}

/** True when `a` and `b` are the same label image up to renumbering. */
function sameUpToRenumbering(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  const ab = new Map<number, number>(), ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if ((x === 0) !== (y === 0)) return false;
    if ((ab.get(x) ?? y) !== y || (ba.get(y) ?? x) !== x) return false;
    ab.set(x, y);
    ba.set(y, x);
  }
  return true;
}

/** A random uint8 image as .npy bytes (fixed seed). */
function randomNpy(h: number, w: number, seed = 1): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(h * w);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return body(writeNpy({ data, shape: [h, w] }));
}

Deno.test("server: segmentation jobs with the tiny model over HTTP", async (t) => {
  const server = await serveTiny({ maxQueued: 1 });
  const ref = await fixture("eval2ch-masks");
  const nRef = new Set(ref.data as Uint16Array).size - 1;
  try {
    await t.step("async job: 202, ordered events, masks equal cellpose's", async () => {
      const res = await fetch(`${server.url}/v1/segment?channel_axis=2`, {
        method: "POST",
        headers: NPY,
        body: IMAGE,
      });
      const job = await res.json();
      assertEquals(res.status, 202, JSON.stringify(job));
      assertEquals(res.headers.get("location"), `/v1/jobs/${job.id}`);
      assert(job.status === "queued" || job.status === "running");

      const events = await readEvents(`${server.url}/v1/jobs/${job.id}/events`);
      assertEquals(events.map((e) => e.id), events.map((_, i) => i + 1));
      assertEquals(events.filter((e) => e.event === "status").map((e) => e.data.status), [
        "queued",
        "running",
        "done",
      ]);
      const stages = events.filter((e) => e.event === "progress").map((e) =>
        e.data.stage as string
      );
      const order = ["normalize", "network", "dynamics", "done"];
      assertEquals([...new Set(stages)], order);
      for (let i = 1; i < stages.length; i++) {
        assert(order.indexOf(stages[i]) >= order.indexOf(stages[i - 1]), `${stages}`);
      }
      const tiles = events.filter((e) => e.data.stage === "network");
      for (let i = 1; i < tiles.length; i++) {
        assert((tiles[i].data.tilesDone as number) >= (tiles[i - 1].data.tilesDone as number));
      }
      assertEquals(tiles.at(-1)!.data.tilesDone, tiles.at(-1)!.data.tilesTotal);
      const last = events.at(-1)!;
      assertEquals(last.data.status, "done");
      assertEquals(last.data.nMasks, nRef);

      // resuming after Last-Event-ID replays only the later events
      const resumed = await readEvents(`${server.url}/v1/jobs/${job.id}/events`, {
        "last-event-id": "3",
      });
      assertEquals(resumed.map((e) => e.id), events.slice(3).map((e) => e.id));

      const status = await (await fetch(`${server.url}/v1/jobs/${job.id}`)).json();
      assertEquals([status.status, status.nMasks, status.shape], ["done", nRef, [300, 417]]);

      const get = (format: string) =>
        fetch(`${server.url}/v1/jobs/${job.id}/result?format=${format}`);
      const npyRes = await get("npy");
      assertEquals(
        npyRes.headers.get("content-disposition"),
        'attachment; filename="image_cp_masks.npy"',
      );
      const masks = readNpy(new Uint8Array(await npyRes.arrayBuffer()));
      assertEquals(masks.shape, [300, 417]);
      assert(sameUpToRenumbering(masks.data as Uint16Array, ref.data as Uint16Array));

      for (const format of ["tiff", "png"]) {
        const back = await readImage(new Uint8Array(await (await get(format)).arrayBuffer()));
        assertEquals(back.image.shape, [300, 417]);
        assertEquals(Array.from(back.image.data), Array.from(masks.data as Uint16Array), format);
      }
      const rois = unzipSync(new Uint8Array(await (await get("roi")).arrayBuffer()));
      assertEquals(Object.keys(rois).length, nRef);
      const csv = (await (await get("csv")).text()).trim().split("\n");
      assertEquals(csv.length, nRef + 1);
      const outlines = (await (await get("outlines")).text()).trim().split("\n");
      assertEquals(outlines.length, nRef);
      assertEquals((await (await get("json")).json()).nMasks, nRef);
      const flows = readNpy(new Uint8Array(await (await get("flows")).arrayBuffer()));
      assertEquals(flows.shape, [2, 300, 417]);
      const cellprob = readNpy(new Uint8Array(await (await get("cellprob")).arrayBuffer()));
      assertEquals(cellprob.shape, [300, 417]);
      await assertApiError(await get("bmp"), 400, "BAD_PARAMETER", "format");

      // the panel sends edited labels through the viewer bridge: they replace the job's masks
      const viewer = await (await fetch(`${server.url}/v1/bridge/register`, {
        method: "POST",
        body: JSON.stringify({ name: "test viewer" }),
      })).json();
      const edited = Uint16Array.from(masks.data as Uint16Array, (v) => (v === 1 ? 0 : v));
      const show = new FormData();
      show.set("job", job.id);
      show.set("title", "edited");
      show.set(
        "labels",
        new Blob([body(encodeLabels({ data: edited, shape: [300, 417] }, "tif"))]),
      );
      const shown = await fetch(`${server.url}/v1/bridge/${viewer.id}/show`, {
        method: "POST",
        body: show,
      });
      assertEquals(shown.status, 200, await shown.text());
      assertEquals((await (await get("json")).json()).nMasks, nRef - 1);
      const after = readNpy(new Uint8Array(await (await get("npy")).arrayBuffer()));
      assertEquals(Array.from(after.data as Uint16Array), Array.from(edited));

      const del = await fetch(`${server.url}/v1/jobs/${job.id}`, { method: "DELETE" });
      assertEquals((await del.json()).cancelled, false);
      await assertApiError(await fetch(`${server.url}/v1/jobs/${job.id}`), 404, "NOT_FOUND", "id");
    });

    await t.step("sync=1 with multipart: parameters as fields and a params JSON", async () => {
      const form = new FormData();
      form.set("image", new Blob([IMAGE]), "cells.npy");
      form.set("params", JSON.stringify({ channel_axis: 2, flowThreshold: 0.4 }));
      form.set("cellprob_threshold", "0");
      const res = await fetch(`${server.url}/v1/segment?sync=1&format=npy`, {
        method: "POST",
        body: form,
      });
      assertEquals(res.status, 200);
      assertEquals(
        res.headers.get("content-disposition"),
        'attachment; filename="cells_cp_masks.npy"',
      );
      const masks = readNpy(new Uint8Array(await res.arrayBuffer()));
      assert(sameUpToRenumbering(masks.data as Uint16Array, ref.data as Uint16Array));
      // a synchronous job is not kept
      const id = res.headers.get("x-job-id")!;
      assertEquals((await fetch(`${server.url}/v1/jobs/${id}`)).status, 404);
      await (await fetch(`${server.url}/v1/jobs/${id}`)).body?.cancel();
    });

    await t.step("full queue: 429 with Retry-After; cancel frees the worker", async () => {
      // one tile per batch: a cancel is seen after at most one tile
      const big = randomNpy(800, 800);
      const post = () =>
        fetch(`${server.url}/v1/segment?batch_size=1`, { method: "POST", headers: NPY, body: big });
      const a = await (await post()).json(); // runs
      const b = await (await post()).json(); // waits (maxQueued 1)
      const full = await post();
      assert(Number(full.headers.get("retry-after")) >= 1);
      await assertApiError(full, 429, "QUEUE_FULL");
      assertEquals(b.status, "queued");

      const cancelB = await (await fetch(`${server.url}/v1/jobs/${b.id}`, { method: "DELETE" }))
        .json();
      assertEquals([cancelB.status, cancelB.cancelled], ["cancelled", true]);

      // wait until A runs (its events stream says so), then cancel it mid-run
      const stream = await fetch(`${server.url}/v1/jobs/${a.id}/events`);
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      let seen = await readUntil(reader, '"status":"running"');
      const del = await fetch(`${server.url}/v1/jobs/${a.id}`, { method: "DELETE" });
      assertEquals((await del.json()).cancelled, true);
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        seen += value;
      }
      assert(seen.trimEnd().endsWith('data: {"status":"cancelled"}'), seen.slice(-200));

      // the cancelled work stops and the worker takes the next job
      const res = await fetch(`${server.url}/v1/segment?sync=1`, {
        method: "POST",
        headers: NPY,
        body: randomNpy(64, 64),
      });
      assertEquals((await res.json()).shape, [64, 64]);
      const health = await (await fetch(`${server.url}/v1/health`)).json();
      assertEquals([health.queue.running, health.queue.queued], [0, 0]);
    });

    await t.step("health, models and the OpenAPI description", async () => {
      const health = await (await fetch(`${server.url}/v1/health`)).json();
      assertEquals(health.status, "ok");
      assertEquals(health.model, { name: TINY, state: "loaded", device: "cpu" });
      assertEquals(health.device.network, "cpu");
      assert("webgpu" in health.device);
      assert(health.memory.rss > 0);
      assertEquals(health.queue.concurrency, 1);

      const models = await (await fetch(`${server.url}/v1/models`)).json();
      assertEquals(models.current.state, "loaded");
      assert(Array.isArray(models.models));
      const missing = await fetch(`${server.url}/v1/models/no-such-model/load`, { method: "POST" });
      await assertApiError(missing, 404, "MODEL_NOT_FOUND");
      const path = await fetch(
        `${server.url}/v1/models/${encodeURIComponent("/etc/passwd")}/load`,
        {
          method: "POST",
        },
      );
      await assertApiError(path, 400, "BAD_PARAMETER", "name");
      // a failed load leaves the loaded model in service
      assertEquals((await (await fetch(`${server.url}/v1/health`)).json()).model.state, "loaded");
      // loading the model again swaps in a new instance; later jobs use it
      const again = await fetch(`${server.url}/v1/models/${encodeURIComponent(TINY)}/load`, {
        method: "POST",
      });
      assertEquals((await again.json()).current, { name: TINY, state: "loaded", device: "cpu" });
      const after = await fetch(`${server.url}/v1/segment?sync=1`, {
        method: "POST",
        body: randomNpy(64, 64),
      });
      assertEquals((await after.json()).shape, [64, 64]);

      const doc = await (await fetch(`${server.url}/openapi.json`)).json();
      assertEquals(doc.openapi, "3.1.0");
      for (
        const p of [
          "/v1/segment",
          "/v1/jobs/{id}",
          "/v1/jobs/{id}/events",
          "/v1/jobs/{id}/result",
          "/v1/models",
          "/v1/models/{name}/load",
          "/v1/health",
        ]
      ) assert(p in doc.paths, p);
      const names = doc.paths["/v1/segment"].post.parameters.map((p: { name: string }) => p.name);
      for (const p of SEGMENT_PARAMS) assert(names.includes(p.name), p.name);
    });
  } finally {
    await server.close();
  }
});

Deno.test("server: a cancelled job that does not stop in time gets its worker replaced", async () => {
  const server = await serveTiny({ cancelGraceMs: 1 });
  try {
    const big = randomNpy(800, 800, 2);
    const job = await (await fetch(`${server.url}/v1/segment?batch_size=1`, {
      method: "POST",
      headers: NPY,
      body: big,
    })).json();
    const stream = await fetch(`${server.url}/v1/jobs/${job.id}/events`);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    await readUntil(reader, '"stage":"network"');
    await reader.cancel();
    await (await fetch(`${server.url}/v1/jobs/${job.id}`, { method: "DELETE" })).body?.cancel();
    // the next job runs in a fresh worker, which loads the model again
    const res = await fetch(`${server.url}/v1/segment?sync=1`, {
      method: "POST",
      headers: NPY,
      body: randomNpy(64, 64),
    });
    assertEquals((await res.json()).shape, [64, 64]);
    const health = await (await fetch(`${server.url}/v1/health`)).json();
    assertEquals(health.workerRestarts, 1);
    assertEquals([health.queue.running, health.queue.queued], [0, 0]);
  } finally {
    await server.close();
  }
});

Deno.test("server: bad requests get a 4xx JSON error naming the field", async () => {
  const server = await serve();
  const png = body(encodePng({ data: new Uint8Array(64 * 48), shape: [48, 64] }));
  const post = (query: string, data: BodyInit, type = "image/png") =>
    fetch(`${server.url}/v1/segment${query}`, {
      method: "POST",
      headers: { "content-type": type },
      body: data,
    });
  try {
    await assertApiError(await post("", "hello", "text/plain"), 415, "UNSUPPORTED", "content-type");
    await assertApiError(
      await post("", "{}", "application/json"),
      415,
      "UNSUPPORTED",
      "content-type",
    );
    await assertApiError(await post("", new Uint8Array(0)), 400, "BAD_PARAMETER", "body");
    await assertApiError(await post("", new Uint8Array([1, 2, 3, 4, 5])), 422, "BAD_FILE", "image");
    await assertApiError(await post("?foo=1", png), 400, "BAD_PARAMETER", "foo");
    await assertApiError(
      await post("?flow_threshold=abc", png),
      400,
      "BAD_PARAMETER",
      "flow_threshold",
    );
    await assertApiError(await post("?niter=1.5", png), 400, "BAD_PARAMETER", "niter");
    await assertApiError(await post("?tileOverlap=0.5", png), 400, "BAD_PARAMETER", "tileOverlap");
    await assertApiError(
      await post("?flow_threshold=0.4&flowThreshold=0.5", png),
      400,
      "BAD_PARAMETER",
      "flowThreshold",
    );
    await assertApiError(await post("?do_3D=yes", png), 400, "BAD_PARAMETER", "do_3D");
    await assertApiError(
      await post(`?normalize=${encodeURIComponent('{"percentile":[99,1]}')}`, png),
      400,
      "BAD_PARAMETER",
      "normalize.percentile",
    );
    await assertApiError(await post("?channel_axis=2", png), 400, "BAD_PARAMETER", "channel_axis");
    await assertApiError(await post("?format=bmp", png), 400, "BAD_PARAMETER", "format");
    await assertApiError(await post("?sync=maybe", png), 400, "BAD_PARAMETER", "sync");

    const noImage = new FormData();
    noImage.set("diameter", "30");
    await assertApiError(
      await fetch(`${server.url}/v1/segment`, { method: "POST", body: noImage }),
      400,
      "BAD_PARAMETER",
      "image",
    );
    const badJson = new FormData();
    badJson.set("image", new Blob([png]), "a.png");
    badJson.set("params", "{diameter: 30");
    await assertApiError(
      await fetch(`${server.url}/v1/segment`, { method: "POST", body: badJson }),
      400,
      "BAD_PARAMETER",
      "params",
    );
    // a valid request with no model loaded: 503, not a stuck job
    await assertApiError(await post("?diameter=30", png), 503, "MODEL_NOT_FOUND");

    await assertApiError(await fetch(`${server.url}/v1/jobs/nope`), 404, "NOT_FOUND", "id");
    await assertApiError(await fetch(`${server.url}/v1/jobs/nope/result`), 404, "NOT_FOUND", "id");
    await assertApiError(await fetch(`${server.url}/v1/nothing`), 404, "NOT_FOUND");
    const health = await (await fetch(`${server.url}/v1/health`)).json();
    assertEquals([health.queue.running, health.queue.queued, health.queue.stored], [0, 0, 0]);
  } finally {
    await server.close();
  }
});

Deno.test("server: uploads and images over the limits get 413", async () => {
  const server = await serve({ maxUploadBytes: 1000, maxPixels: 50_000, syncMaxPixels: 100 });
  const url = `${server.url}/v1/segment`;
  try {
    const big = new Uint8Array(5000);
    await assertApiError(
      await fetch(url, { method: "POST", headers: NPY, body: big }),
      413,
      "TOO_LARGE",
      "body",
    );
    // a streamed body has no Content-Length: the bytes are counted
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(1000));
        c.close();
      },
    });
    await assertApiError(
      await fetch(url, { method: "POST", headers: NPY, body: stream }),
      413,
      "TOO_LARGE",
      "body",
    );
    const form = new FormData();
    form.set("image", new Blob([big]), "big.npy");
    await assertApiError(
      await fetch(url, { method: "POST", body: form }),
      413,
      "TOO_LARGE",
      "body",
    );

    const server2 = await serve({ maxPixels: 50_000, syncMaxPixels: 100 });
    try {
      // a PNG header declaring 300 x 300 pixels is refused before decoding
      const png = body(encodePng({ data: new Uint8Array(300 * 300), shape: [300, 300] }));
      const tooBig = await fetch(`${server2.url}/v1/segment`, { method: "POST", body: png });
      await assertApiError(tooBig, 413, "TOO_LARGE", "image");
      const small = body(encodePng({ data: new Uint8Array(20 * 20), shape: [20, 20] }));
      const sync = await fetch(`${server2.url}/v1/segment?sync=1`, { method: "POST", body: small });
      await assertApiError(sync, 413, "TOO_LARGE", "sync");
    } finally {
      await server2.close();
    }
  } finally {
    await server.close();
  }
});

Deno.test("server: uploads in progress share a byte budget; past it 429", async () => {
  const server = await serve({ maxUploadingBytes: 1000 });
  const url = `${server.url}/v1/segment`;
  const health = async () => (await (await fetch(`${server.url}/v1/health`)).json()).queue;
  try {
    const finish = Promise.withResolvers<void>();
    const slow = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(800).fill(7));
      },
      async pull(c) {
        await finish.promise;
        c.close();
      },
    });
    const first = fetch(url, { method: "POST", headers: NPY, body: slow });
    for (let i = 0; (await health()).uploadingBytes < 800; i++) {
      assert(i < 1000, "the server never received the first 800 bytes");
      await new Promise((r) => setTimeout(r, 10));
    }
    const refused = await fetch(url, { method: "POST", headers: NPY, body: new Uint8Array(500) });
    assertEquals(refused.headers.get("retry-after"), "2");
    await assertApiError(refused, 429, "QUEUE_FULL", "body");
    finish.resolve();
    await assertApiError(await first, 422, "BAD_FILE", "image"); // 800 bytes of 7s: no image
    assertEquals((await health()).uploadingBytes, 0);
  } finally {
    await server.close();
  }
});

Deno.test("server: a non-loopback bind needs a token, then every API call does", async () => {
  const noToken = await assertRejects(
    () => serve({ host: "0.0.0.0", token: "" }),
    CellposeError,
    "token",
  );
  assertEquals(noToken.code, "BAD_PARAMETER");
  const lines: string[] = [];
  const token = "test-token-0123456789";
  const server = await serve({ host: "0.0.0.0", token, log: (l) => lines.push(l) });
  assert(lines.some((l) => l.includes("Bearer")), lines.join("\n"));
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const none = await fetch(`${base}/v1/health`);
    assertEquals(none.headers.get("www-authenticate"), 'Bearer realm="cellpose"');
    await assertApiError(none, 401, "UNAUTHORIZED", "authorization");
    await assertApiError(
      await fetch(`${base}/v1/health`, { headers: { authorization: "Bearer wrong-token" } }),
      401,
      "UNAUTHORIZED",
      "authorization",
    );
    await assertApiError(await fetch(`${base}/openapi.json`), 401, "UNAUTHORIZED", "authorization");
    const ok = await fetch(`${base}/v1/health`, { headers: { authorization: `Bearer ${token}` } });
    assertEquals([ok.status, (await ok.json()).status], [200, "ok"]);
    // EventSource cannot send headers: ?token= works too
    const q = await fetch(`${base}/v1/health?token=${token}`);
    assertEquals(q.status, 200);
    await q.body?.cancel();
    // the panel's static page is public
    const page = await fetch(`${base}/`);
    assertEquals(page.status, 200);
    await page.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("server: a port already in use is a clear error", async () => {
  const first = await serve();
  try {
    const e = await assertRejects(() => serve({ port: first.port }), CellposeError, "port");
    assertEquals(e.code, "BAD_PARAMETER");
  } finally {
    await first.close();
  }
});

/** Sends a raw HTTP/1.1 request with a chosen Host header; returns the status code. */
async function statusWithHost(port: number, host: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(
      `GET /v1/health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    ),
  );
  const text = await new Response(conn.readable).text();
  return Number(text.split(" ")[1]);
}

Deno.test("server: CORS for configured origins, 403 for others and for foreign Host names", async () => {
  const server = await serve({ corsOrigins: ["http://viewer.test"] });
  const health = `${server.url}/v1/health`;
  try {
    const allowed = await fetch(health, { headers: { origin: "http://viewer.test" } });
    assertEquals(allowed.status, 200);
    assertEquals(allowed.headers.get("access-control-allow-origin"), "http://viewer.test");
    await allowed.body?.cancel();

    const preflight = await fetch(`${server.url}/v1/segment`, {
      method: "OPTIONS",
      headers: {
        origin: "http://viewer.test",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    assertEquals(preflight.status, 204);
    assertEquals(preflight.headers.get("access-control-allow-origin"), "http://viewer.test");
    assert(preflight.headers.get("access-control-allow-headers")!.includes("Authorization"));
    assert(preflight.headers.get("access-control-allow-methods")!.includes("DELETE"));

    const evil = await fetch(health, { headers: { origin: "http://evil.test" } });
    assertEquals(evil.headers.get("access-control-allow-origin"), null);
    await assertApiError(evil, 403, "FORBIDDEN", "origin");

    // the panel's own origin needs no configuration
    const own = await fetch(health, { headers: { origin: `http://localhost:${server.port}` } });
    assertEquals(own.status, 200);
    await own.body?.cancel();

    // without a token, only loopback Host names are served (DNS rebinding)
    assertEquals(await statusWithHost(server.port, `127.0.0.1:${server.port}`), 200);
    assertEquals(await statusWithHost(server.port, `localhost:${server.port}`), 200);
    assertEquals(await statusWithHost(server.port, `evil.test:${server.port}`), 403);
  } finally {
    await server.close();
  }
});

Deno.test("server: serves the built panel, or a page saying how to build it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "server_test_panel_" });
  const notBuilt = await serve({ panelDir: dir });
  try {
    const page = await (await fetch(`${notBuilt.url}/`)).text();
    assert(page.includes("not built") && page.includes("deno task build:panel"), page);
    await Deno.writeTextFile(join(dir, "index.html"), "<cellpose-panel></cellpose-panel>");
    await Deno.writeTextFile(join(dir, "cellpose-panel.js"), "export {};");
    const index = await fetch(`${notBuilt.url}/`);
    assertEquals(await index.text(), "<cellpose-panel></cellpose-panel>");
    const js = await fetch(`${notBuilt.url}/cellpose-panel.js`);
    assert(js.headers.get("content-type")!.includes("javascript"));
    assertEquals(await js.text(), "export {};");
    await assertApiError(await fetch(`${notBuilt.url}/missing.js`), 404, "NOT_FOUND");
  } finally {
    await notBuilt.close();
    await Deno.remove(dir, { recursive: true });
  }
});
