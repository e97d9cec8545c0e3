/**
 * Hostile clients against the real server (in a process of its own, so its memory is measured
 * alone): request heads and bodies sent at one byte every 5 s, bodies of 300 MB on every route
 * that reads one (sent chunked, so no Content-Length gives them away), a multipart body of 100 000
 * fields, JSON nested 200 000 deep, a `normalize.lowhigh` of a million pairs, a 96 MiB multipart
 * image, and decodes that must not hold up health checks. Each case asserts the status, the
 * message, a time bound and a bound on the growth of the server's peak RSS; the measurements are
 * printed as a table.
 */
import { assert, assertEquals } from "./assert.ts";
import { writeNpy } from "../io/npy.ts";
import { encodePng } from "../io/png.ts";
import { type ServerProcess, spawnServer } from "./server_process.ts";
import { hostileImages } from "./hostile_cases.ts";
import {
  chunked,
  HOST,
  MiB,
  MULTIPART,
  multipartBody,
  partHead,
  raw,
  sleep,
} from "./hostile_clients.ts";

const enc = new TextEncoder();

/** One measured case: its time and the growth of the server's peak RSS over its start. */
interface Row {
  what: string;
  status: number;
  ms: number;
  growthMiB: number;
}

async function measured(
  server: ServerProcess,
  rows: Row[],
  what: string,
  run: () => Promise<{ status: number; text: string; ms?: number }>,
  expect: { status: number | number[]; message: RegExp; maxMs: number; maxGrowthMiB: number },
): Promise<string> {
  server.resetPeak();
  const before = server.rssBytes();
  const t0 = performance.now();
  const r = await run();
  const ms = r.ms ?? performance.now() - t0;
  const growthMiB = (server.peakBytes() - before) / MiB;
  rows.push({ what, status: r.status, ms, growthMiB });
  const statuses = [expect.status].flat();
  assert(statuses.includes(r.status), `${what}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  assert(expect.message.test(r.text), `${what}: message ${r.text.slice(0, 300)}`);
  assert(r.text.length < 2000, `${what}: an answer of ${r.text.length} characters`);
  assert(ms < expect.maxMs, `${what}: ${ms.toFixed(0)} ms (bound ${expect.maxMs})`);
  assert(
    growthMiB < expect.maxGrowthMiB,
    `${what}: peak RSS grew ${growthMiB.toFixed(0)} MiB (bound ${expect.maxGrowthMiB})`,
  );
  return r.text;
}

async function fetched(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  return { status: res.status, text: await res.text() };
}

function printRows(title: string, rows: Row[]) {
  console.log(`\n${title}\n| case | status | time (s) | peak RSS growth (MiB) |`);
  console.log("| --- | ---: | ---: | ---: |");
  for (const r of rows) {
    console.log(
      `| ${r.what} | ${r.status} | ${(r.ms / 1000).toFixed(2)} | ${r.growthMiB.toFixed(0)} |`,
    );
  }
}

/** A small image job that is done, for the routes that need one. */
async function doneJob(url: string): Promise<string> {
  const data = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * 37) % 256);
  const res = await fetch(`${url}/v1/segment`, {
    method: "POST",
    body: writeNpy({ data, shape: [64, 64] }) as Uint8Array<ArrayBuffer>,
  });
  assertEquals(res.status, 202, await res.clone().text());
  const { id } = await res.json();
  for (let i = 0; i < 600; i++) {
    const job = await (await fetch(`${url}/v1/jobs/${id}`)).json();
    if (job.status === "done") return id;
    assert(job.status === "queued" || job.status === "running", JSON.stringify(job));
    await sleep(100);
  }
  throw new Error(`job ${id} not done in 60 s`);
}

Deno.test({
  name: "server hostile clients: slow, huge, deep and many get 4xx in bounded time and memory",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await spawnServer({ maxUploadBytes: 32 * MiB, maxSpoolBytes: 32 * MiB });
    const rows: Row[] = [];
    try {
      const url = server.url;
      const viewer = (await (await fetch(`${url}/v1/bridge/register`, {
        method: "POST",
        body: '{"name": "hostile"}',
      })).json()).id;
      assert(typeof viewer === "string");
      const job = await doneJob(url);

      // slow clients, both at once, with health checked meanwhile
      const health: number[] = [];
      let slow = true;
      const sampler = (async () => {
        while (slow) {
          const t = performance.now();
          const res = await fetch(`${url}/v1/health`).catch(() => undefined);
          if (!res) break;
          await res.body?.cancel();
          health.push(performance.now() - t);
          await sleep(250);
        }
      })();
      await Promise.all([
        measured(
          server,
          rows,
          "request head at 1 byte / 5 s",
          () =>
            raw(url, `GET /v1/health HTTP/1.1\r\n${HOST}\r\n`, [], {
              slowHead: true,
              gapMs: 5000,
            }),
          {
            status: 408,
            message: /request head not complete within 10 s/,
            maxMs: 20_000,
            maxGrowthMiB: 64,
          },
        ),
        measured(
          server,
          rows,
          "body at 1 byte / 5 s",
          () =>
            raw(
              url,
              `POST /v1/segment HTTP/1.1\r\n${HOST}Content-Type: application/octet-stream\r\n` +
                "Content-Length: 1000\r\n\r\n",
              Array.from({ length: 1000 }, () => new Uint8Array([0])),
              { gapMs: 5000 },
            ),
          {
            status: 408,
            message: /upload too slow: \d bytes in 1\d\.\d s/,
            maxMs: 20_000,
            maxGrowthMiB: 64,
          },
        ),
      ]);
      slow = false;
      await sampler;
      assert(health.length > 20, `${health.length} health samples`);
      assert(Math.max(...health) < 1000, `health took up to ${Math.max(...health)} ms`);

      // 300 MB chunked bodies on every route that reads a body
      const routes: [string, string, Uint8Array?][] = [
        ["POST /v1/segment", "application/octet-stream"],
        ["POST /v1/segment", MULTIPART, enc.encode(partHead("image", "x.tif"))],
        [`PUT /v1/jobs/${job}/masks`, "image/tiff"],
        ["POST /v1/train", MULTIPART, enc.encode(partHead("image", "x.tif"))],
        ["POST /v1/train", "application/json", enc.encode('{"jobs": ["')],
        ["POST /v1/segment_large", "image/tiff"],
        ["POST /v1/bridge/register", "application/json", enc.encode('{"name": "')],
        [`POST /v1/bridge/${viewer}/error`, "application/json", enc.encode('{"message": "')],
        [`POST /v1/bridge/${viewer}/image`, MULTIPART, enc.encode(partHead("image", "x.tif"))],
        [`POST /v1/bridge/${viewer}/show`, MULTIPART, enc.encode(partHead("labels", "x.tif"))],
      ];
      for (const [route, type, prefix] of routes) {
        const [method, path] = route.split(" ");
        await measured(
          server,
          rows,
          `300 MB chunked to ${route.replace(job, ":job").replace(viewer, ":viewer")} (${
            type.split(";")[0]
          })`,
          () =>
            raw(
              url,
              `${method} ${path} HTTP/1.1\r\n${HOST}Content-Type: ${type}\r\n` +
                "Transfer-Encoding: chunked\r\n\r\n",
              chunked(300 * MiB, prefix),
            ),
          {
            status: 413,
            message: /TOO_LARGE.*(limit is|over) \d+ bytes/,
            maxMs: 30_000,
            maxGrowthMiB: 128,
          },
        );
      }

      // a multipart body of 100 000 fields is refused at field 65
      const fields = multipartBody(
        Array.from({ length: 100_000 }, (_, i) => [`f${i}`, "1"] as [string, string]),
      );
      await measured(
        server,
        rows,
        "multipart of 100 000 fields",
        () =>
          fetched(`${url}/v1/segment`, {
            method: "POST",
            headers: { "content-type": MULTIPART },
            body: fields,
          }),
        { status: 413, message: /more than 64 parts/, maxMs: 10_000, maxGrowthMiB: 64 },
      );

      // JSON nested 200 000 deep: a 400 naming the field, no stack trace in the log
      const deep = "[".repeat(200_000) + "]".repeat(200_000);
      const png = encodePng({ data: new Uint8Array(32 * 32), shape: [32, 32] });
      for (
        const [what, body, path, type] of [
          [
            "params",
            multipartBody([["image", png, "a.png"], ["params", deep]]),
            "/v1/segment",
            MULTIPART,
          ],
          [
            "normalize",
            multipartBody([["image", png, "a.png"], ["normalize", `{"lowhigh": ${deep}}`]]),
            "/v1/segment",
            MULTIPART,
          ],
          ["body", enc.encode(deep), "/v1/train", "application/json"],
          [ // under the route's 16 KiB limit
            "body",
            enc.encode(`{"name": ${"[".repeat(5000)}${"]".repeat(5000)}}`),
            "/v1/bridge/register",
            "application/json",
          ],
        ] as [string, Uint8Array<ArrayBuffer>, string, string][]
      ) {
        const text = await measured(
          server,
          rows,
          `JSON nested ${path.includes("bridge") ? "5000" : "200 000"} deep (${path} ${what})`,
          () =>
            fetched(`${url}${path}`, { method: "POST", headers: { "content-type": type }, body }),
          {
            status: 400,
            message: /JSON nested deeper than 32 levels/,
            maxMs: 10_000,
            maxGrowthMiB: 64,
          },
        );
        assertEquals(JSON.parse(text).error.field, what);
      }

      // a million lowhigh pairs (6 MB): refused by the field limit, not echoed
      const million = JSON.stringify({ lowhigh: Array.from({ length: 1e6 }, () => [0, 1]) });
      for (const field of ["normalize", "params"]) {
        const value = field === "params" ? `{"normalize": ${million}}` : million;
        await measured(
          server,
          rows,
          `normalize.lowhigh of 1e6 pairs as "${field}"`,
          () =>
            fetched(`${url}/v1/segment`, {
              method: "POST",
              headers: { "content-type": MULTIPART },
              body: multipartBody([["image", png, "a.png"], [field, value]]),
            }),
          {
            status: 413,
            message: new RegExp(`multipart field \\\\"${field}\\\\" is over 1048576 bytes`),
            maxMs: 10_000,
            maxGrowthMiB: 128,
          },
        );
      }
      // 50 000 pairs (under the field limit) 20 times: refused, or failed jobs with short errors
      const many = JSON.stringify({ lowhigh: Array.from({ length: 50_000 }, () => [0, 1]) });
      await measured(server, rows, "normalize.lowhigh of 50 000 pairs, 20 times", async () => {
        const answers = await Promise.all(
          Array.from({ length: 20 }, () =>
            fetched(`${url}/v1/segment`, {
              method: "POST",
              headers: { "content-type": MULTIPART },
              body: multipartBody([["image", png, "a.png"], ["normalize", many]]),
            })),
        );
        for (const a of answers) {
          assert([202, 400, 429].includes(a.status), `HTTP ${a.status} ${a.text.slice(0, 200)}`);
          assert(a.text.length < 1000, `an answer of ${a.text.length} characters`);
          if (a.status !== 202) continue;
          const id = JSON.parse(a.text).id;
          let j;
          for (let i = 0; i < 300; i++) {
            j = await (await fetch(`${url}/v1/jobs/${id}`)).json();
            if (j.status === "failed" || j.status === "done") break;
            await sleep(100);
          }
          assertEquals(j.status, "failed");
          assert(j.error.message.length < 400, `a job error of ${j.error.message.length} chars`);
          assert(/lowhigh/.test(j.error.message), j.error.message);
        }
        return { status: answers[0].status, text: "lowhigh" };
      }, { status: [202, 400, 429], message: /lowhigh/, maxMs: 60_000, maxGrowthMiB: 256 });

      const logged = server.log();
      assert(!/internal error|RangeError|stack/i.test(logged), `the server logged:\n${logged}`);
      const h = await (await fetch(`${url}/v1/health`)).json();
      assertEquals(h.status, "ok");
    } finally {
      printRows("hostile clients (server at 32 MiB maxUploadBytes)", rows);
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "server hostile: a 96 MiB multipart image costs under twice its size; health stays responsive " +
    "while large images and decompression bombs decode",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await spawnServer({ maxUploadBytes: 256 * MiB, maxPixels: 2 ** 28 });
    const rows: Row[] = [];
    try {
      const url = server.url;
      const viewer = (await (await fetch(`${url}/v1/bridge/register`, {
        method: "POST",
        body: "{}",
      })).json()).id;
      const size = 96 * MiB;
      const image = new Uint8Array(size).fill(7);
      const body = multipartBody([["image", image, "big.tif"]]);
      await measured(
        server,
        rows,
        "96 MiB multipart image to the bridge",
        () =>
          fetched(`${url}/v1/bridge/${viewer}/image`, {
            method: "POST",
            headers: { "content-type": MULTIPART },
            body,
          }),
        { status: 200, message: /"ok":true/, maxMs: 30_000, maxGrowthMiB: 2 * 96 },
      );

      // PNGs of 6000 x 6000 (36 M pixels, ~40 KB each), decoded while health is polled
      const png = encodePng({ data: new Uint8Array(6000 * 6000), shape: [6000, 6000] });
      const health: number[] = [];
      let decoding = true;
      const sampler = (async () => {
        while (decoding) {
          const t = performance.now();
          const res = await fetch(`${url}/v1/health`).catch(() => undefined);
          if (!res) break;
          await res.body?.cancel();
          health.push(performance.now() - t);
          await sleep(50);
        }
      })();
      const t0 = performance.now();
      // sync=1 refuses the decoded image as over syncMaxPixels: all the work is the decode
      const answers = await Promise.all(
        Array.from({ length: 6 }, () =>
          fetched(`${url}/v1/segment?sync=1`, {
            method: "POST",
            headers: { "content-type": "image/png" },
            body: png as Uint8Array<ArrayBuffer>,
          })),
      );
      const decodeMs = performance.now() - t0;
      decoding = false;
      await sampler;
      for (const a of answers) {
        assertEquals(a.status, 413, a.text);
        assert(/sync=1 takes images up to/.test(a.text), a.text);
      }
      health.sort((a, b) => a - b);
      const p95 = health[Math.floor(0.95 * (health.length - 1))];
      console.log(
        `6 decodes of 6000 x 6000 PNGs: ${(decodeMs / 1000).toFixed(1)} s; health ` +
          `${health.length} samples, p50 ${health[health.length >> 1].toFixed(1)} ms, p95 ` +
          `${p95.toFixed(1)} ms, max ${health.at(-1)!.toFixed(1)} ms`,
      );
      assert(health.length >= 5, `${health.length} health samples in ${decodeMs} ms`);
      assert(p95 < 500, `health p95 ${p95} ms while decoding`);

      // the hostile files of tests/hostile_cases.ts (bombs, an IFD loop): 422 naming the problem,
      // bounded time and memory, health answered meanwhile
      for (const c of hostileImages()) {
        const during: number[] = [];
        let on = true;
        const poll = (async () => {
          while (on) {
            const t = performance.now();
            const res = await fetch(`${url}/v1/health`).catch(() => undefined);
            if (!res) break;
            await res.body?.cancel();
            during.push(performance.now() - t);
            await sleep(50);
          }
        })();
        const text = await measured(server, rows, c.name, async () => {
          const answers = await Promise.all([0, 1].map(() =>
            fetched(`${url}/v1/segment`, {
              method: "POST",
              body: c.bytes as Uint8Array<ArrayBuffer>,
            })
          ));
          return answers[1].status === answers[0].status ? answers[0] : answers[1];
        }, {
          // the server's maxPixels may refuse a declared size first (413), else the reader (422)
          status: [422, 413],
          message: new RegExp(`${c.message.source}|\\(option maxPixels\\)`),
          maxMs: 20_000,
          maxGrowthMiB: 256,
        });
        on = false;
        await poll;
        assert([c.code, "TOO_LARGE"].includes(JSON.parse(text).error.code), text);
        assert(Math.max(...during) < 1000, `${c.name}: health took ${Math.max(...during)} ms`);
      }
    } finally {
      printRows("large uploads", rows);
      await server.stop();
    }
  },
});
