/**
 * Load on the local server (loopback only, bounded, stops by itself): 50 concurrent clients
 * submit small images for 60 s (`--duration=SECONDS` or `$SERVER_LOAD_SECONDS` for shorter
 * runs), follow each accepted job's events to its end and fetch its result; refused submissions
 * (429/503) wait for Retry-After. The server runs in its own process with the tiny cpsam model,
 * so its resident memory is sampled alone; `/v1/health` latency is sampled too, from a process of
 * its own (the main thread must stay responsive while jobs compute in the worker). Every accepted job must end, none lost.
 *
 * With `--hostile` (or `$SERVER_LOAD_HOSTILE=1`), 6 hostile clients run meanwhile, each cycling
 * through request heads and bodies at 1 byte / 5 s, 300 MB chunked bodies, 100 000 multipart
 * fields, JSON nested 200 000 deep, a 6 MB `normalize.lowhigh` and 6000 x 6000 PNGs to decode;
 * each must get its 4xx, and the table says how long they took.
 *
 * Run: `deno task bench server_load --duration=20 [--hostile]`
 * @module
 */
import { writeNpy } from "../io/npy.ts";
import { encodePng } from "../io/png.ts";
import { spawnServer } from "../tests/server_process.ts";
import {
  chunked,
  HOST,
  MiB,
  MULTIPART,
  multipartBody,
  partHead,
  type Raw,
  raw,
} from "../tests/hostile_clients.ts";

const CLIENTS = 50;
const HOSTILE_CLIENTS = 6;

/** One kind of hostile request and the status it must get. */
interface Hostile {
  what: string;
  expect: number;
  run(url: string): Promise<Raw>;
}

/** What the hostile clients saw of one kind of request. */
interface HostileSeen {
  what: string;
  expect: number;
  ok: number;
  busy: number;
  other: string[];
  ms: number[];
}

/** Runs this module in a child process with `args` (see the end); resolves to what it printed. */
async function child<T>(args: string[]): Promise<T> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`the child ${args[0]} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** `GET /v1/health` every 200 ms for `seconds`: the latencies in ms. */
async function healthLatencies(url: string, seconds: number): Promise<number[]> {
  const out: number[] = [];
  const stopAt = performance.now() + seconds * 1000;
  while (performance.now() < stopAt) {
    const t = performance.now();
    await (await fetch(`${url}/v1/health`)).body?.cancel();
    out.push(performance.now() - t);
    await sleep(200);
  }
  return out;
}

/** HOSTILE_CLIENTS clients cycling through the hostile requests for `seconds`. */
async function hostileClients(url: string, seconds: number): Promise<HostileSeen[]> {
  // a viewer for the bridge's routes, kept connected by polling (else dropped after 60 s)
  const register = await fetch(`${url}/v1/bridge/register`, { method: "POST", body: "{}" });
  const viewer = (await register.json()).id;
  const poller = setInterval(() => {
    fetch(`${url}/v1/bridge/${viewer}/next?wait=0`).then((r) => r.body?.cancel(), () => {});
  }, 10_000);
  const kinds = hostileRequests(viewer);
  const seen = kinds.map((k) => ({
    what: k.what,
    expect: k.expect,
    ok: 0,
    busy: 0,
    other: [] as string[],
    ms: [] as number[],
  }));
  const stopAt = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: HOSTILE_CLIENTS }, async (_, k) => {
    for (let i = k; performance.now() < stopAt; i++) {
      const n = i % kinds.length;
      const r = await kinds[n].run(url).catch((e) => ({ status: -1, text: String(e), ms: 0 }));
      if (r.status === kinds[n].expect) seen[n].ok++;
      else if (r.status === 429) seen[n].busy++;
      else seen[n].other.push(`${r.status} ${r.text.slice(0, 120)}`);
      seen[n].ms.push(r.ms);
    }
  }));
  clearInterval(poller);
  return seen;
}

/** The hostile requests, each built once. */
function hostileRequests(viewer: string): Hostile[] {
  const png = encodePng({ data: new Uint8Array(32 * 32), shape: [32, 32] });
  const deep = "[".repeat(200_000) + "]".repeat(200_000);
  const lowhigh = JSON.stringify({ lowhigh: Array.from({ length: 1e6 }, () => [0, 1]) });
  const big = encodePng({ data: new Uint8Array(6000 * 6000), shape: [6000, 6000] });
  const form =
    (parts: [string, string | Uint8Array, string?][], path = "/v1/segment") =>
    async (url: string) => {
      const t = performance.now();
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": MULTIPART },
        body: multipartBody(parts),
      });
      return { status: res.status, text: await res.text(), ms: performance.now() - t };
    };
  // the bridge's routes read every body (no queue refuses them first, as /v1/segment's does)
  const image = `/v1/bridge/${viewer}/image`;
  return [
    {
      what: "request head at 1 byte / 5 s",
      expect: 408,
      run: (url) =>
        raw(url, `GET /v1/health HTTP/1.1\r\n${HOST}\r\n`, [], { slowHead: true, gapMs: 5000 }),
    },
    {
      what: "body at 1 byte / 5 s (bridge image)",
      expect: 408,
      run: (url) =>
        raw(
          url,
          `POST ${image} HTTP/1.1\r\n${HOST}Content-Type: ${MULTIPART}\r\n` +
            "Content-Length: 100\r\n\r\n",
          Array.from({ length: 100 }, () => new Uint8Array([45])),
          { gapMs: 5000 },
        ),
    },
    {
      what: "300 MB chunked multipart image (bridge, limit 64 MiB)",
      expect: 413,
      run: (url) =>
        raw(
          url,
          `POST ${image} HTTP/1.1\r\n${HOST}Content-Type: ${MULTIPART}\r\n` +
            "Transfer-Encoding: chunked\r\n\r\n",
          chunked(300 * MiB, new TextEncoder().encode(partHead("image", "x.tif"))),
        ),
    },
    {
      what: "multipart of 100 000 fields (bridge)",
      expect: 413,
      run: form(Array.from({ length: 100_000 }, (_, i) => [`f${i}`, "1"]), image),
    },
    {
      what: "JSON nested 200 000 deep (/v1/train)",
      expect: 400,
      run: async (url) => {
        const t = performance.now();
        const res = await fetch(`${url}/v1/train`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: deep,
        });
        return { status: res.status, text: await res.text(), ms: performance.now() - t };
      },
    },
    {
      what: "JSON nested 200 000 deep (/v1/segment params)",
      expect: 400,
      run: form([["image", png, "a.png"], ["params", deep]]),
    },
    {
      what: "normalize.lowhigh of 1e6 pairs",
      expect: 413,
      run: form([["image", png, "a.png"], ["normalize", lowhigh]]),
    },
    {
      what: "6000 x 6000 PNG decoded, then over syncMaxPixels",
      expect: 413,
      run: async (url) => {
        const t = performance.now();
        const res = await fetch(`${url}/v1/segment?sync=1`, {
          method: "POST",
          headers: { "content-type": "image/png" },
          body: big as Uint8Array<ArrayBuffer>,
        });
        return { status: res.status, text: await res.text(), ms: performance.now() - t };
      },
    },
  ];
}

function durationSeconds(): number {
  const flag = Deno.args.find((a) => a.startsWith("--duration="));
  const v = Number(flag?.split("=")[1] ?? Deno.env.get("SERVER_LOAD_SECONDS") ?? 60);
  if (!Number.isFinite(v) || v <= 0 || v > 600) {
    throw new Error(`duration must be 1..600 seconds, got ${flag ?? v}`);
  }
  return v;
}

/** A smooth 128 x 128 uint8 image with a few bright blobs (one tile). */
function smallImage(seed: number): Uint8Array<ArrayBuffer> {
  const n = 128, data = new Uint8Array(n * n);
  const blobs = Array.from({ length: 6 }, (_, i) => [
    ((seed * 31 + i * 47) % 100) + 14,
    ((seed * 17 + i * 71) % 100) + 14,
  ]);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let v = 10;
      for (const [by, bx] of blobs) v += 200 * Math.exp(-((y - by) ** 2 + (x - bx) ** 2) / 60);
      data[y * n + x] = Math.min(255, v);
    }
  }
  return writeNpy({ data, shape: [n, n] }) as Uint8Array<ArrayBuffer>;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Follows a job's events to its final status. */
async function finalStatus(url: string, id: string, signal: AbortSignal): Promise<string> {
  const text = await (await fetch(`${url}/v1/jobs/${id}/events`, { signal })).text();
  const last = text.trim().split("\n").filter((l) => l.startsWith("data: ")).at(-1) ?? "";
  return JSON.parse(last.slice(6) || "{}").status ?? "stream ended without a status";
}

export default async function serverLoad() {
  const seconds = durationSeconds();
  const cache = await Deno.makeTempDir({ prefix: "server_load_models_" });
  const hostile = Deno.args.includes("--hostile") || Deno.env.get("SERVER_LOAD_HOSTILE") === "1";
  const server = await spawnServer(
    { maxUploadBytes: 64 * MiB },
    { CELLPOSE_LOCAL_MODELS_PATH: cache },
  );
  const url = server.url;
  let hostileRun: Promise<HostileSeen[]> | undefined;
  const counts = { submitted: 0, accepted: 0, r429: 0, r503: 0, other: 0, done: 0, failed: 0 };
  const lost: string[] = [];
  const latencies: number[] = [];
  const health: number[] = [];
  const rss: number[] = [];
  const images = Array.from({ length: 8 }, (_, i) => smallImage(i));
  let stopAt = Infinity;
  // a bound on the whole run: requests still open 2 minutes after the end are abandoned (lost)
  const hardStop = AbortSignal.timeout((seconds + 120) * 1000);
  let sampling = true;
  try {
    // warm up: the first job waits for the model to load
    const warm = await fetch(`${url}/v1/segment?sync=1`, { method: "POST", body: images[0] });
    if (warm.status !== 200) throw new Error(`warm-up failed: ${await warm.text()}`);
    stopAt = performance.now() + seconds * 1000;
    const rssSampler = (async () => {
      while (sampling) {
        rss.push(server.rssBytes());
        await sleep(500);
      }
    })();
    // health is asked from a process of its own, so that the 50 clients' event loop here is not
    // part of what it measures
    const healthRun = child(["--health-of=" + url, `--duration=${seconds}`]);
    // the hostile clients run in a process of their own: a client writing 300 MB as fast as it
    // can starves its own event loop, and the health samples here would measure that
    if (hostile) {
      hostileRun = child<HostileSeen[]>([`--hostile-clients=${url}`, `--duration=${seconds}`]);
    }
    const job = async (id: string, t: number) => {
      const status = await finalStatus(url, id, hardStop);
      if (status === "done") {
        const r = await fetch(`${url}/v1/jobs/${id}/result?format=json`, { signal: hardStop });
        if (r.status === 200 && typeof (await r.json()).nMasks === "number") counts.done++;
        else lost.push(`${id}: result HTTP ${r.status}`);
        latencies.push(performance.now() - t);
      } else if (status === "failed") counts.failed++;
      else lost.push(`${id}: ${status}`);
    };
    const client = async (k: number) => {
      for (let i = 0; performance.now() < stopAt && !hardStop.aborted; i++) {
        counts.submitted++;
        const t = performance.now();
        const res = await fetch(`${url}/v1/segment`, {
          method: "POST",
          body: images[(k + i) % 8],
          signal: hardStop,
        });
        if (res.status === 202) {
          counts.accepted++;
          const { id } = await res.json();
          await job(id, t).catch((e) => lost.push(`${id}: ${e}`));
        } else {
          if (res.status === 429) counts.r429++;
          else if (res.status === 503) counts.r503++;
          else counts.other++;
          const retry = Number(res.headers.get("retry-after") ?? 1);
          await res.body?.cancel();
          await sleep(Math.min(retry, 2) * 1000 * (0.5 + Math.random()));
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
    const hostileSeen = await hostileRun;
    health.push(...await healthRun as number[]);
    const elapsed = (performance.now() - (stopAt - seconds * 1000)) / 1000;
    sampling = false;
    await rssSampler;

    const mb = (b: number) => (b / 2 ** 20).toFixed(0);
    const pct = (n: number) => `${((100 * n) / Math.max(1, counts.submitted)).toFixed(1)} %`;
    console.log(
      `\n${CLIENTS} clients, ${seconds} s of submissions (${elapsed.toFixed(1)} s ` +
        "until the last job ended), 128 x 128 images, tiny cpsam, concurrency 1, queue 16" +
        (hostile ? `, with ${HOSTILE_CLIENTS} hostile clients` : "") + "\n",
    );
    console.log("| submissions | count | share |");
    console.log("| --- | ---: | ---: |");
    console.log(`| submitted | ${counts.submitted} | 100 % |`);
    console.log(`| accepted (202) | ${counts.accepted} | ${pct(counts.accepted)} |`);
    console.log(`| refused 429 | ${counts.r429} | ${pct(counts.r429)} |`);
    console.log(`| refused 503 | ${counts.r503} | ${pct(counts.r503)} |`);
    console.log(`| other status | ${counts.other} | ${pct(counts.other)} |`);
    console.log(`| done, result fetched | ${counts.done} | ${pct(counts.done)} |`);
    console.log(`| failed | ${counts.failed} | ${pct(counts.failed)} |`);
    console.log(`| lost | ${lost.length} | ${pct(lost.length)} |`);
    console.log("\n| figure | p50 | p95 | max |");
    console.log("| --- | ---: | ---: | ---: |");
    const row = (name: string, xs: number[], f: (x: number) => string) =>
      console.log(
        `| ${name} | ${f(quantile(xs, 0.5))} | ${f(quantile(xs, 0.95))} | ${f(Math.max(...xs))} |`,
      );
    row("job latency, submit to result (ms)", latencies, (x) => x.toFixed(0));
    row("GET /v1/health under load (ms)", health, (x) => x.toFixed(1));
    row("server RSS (MiB)", rss, mb);
    console.log(
      `\nthroughput: ${(counts.done / elapsed).toFixed(2)} jobs/s; RSS first ` +
        `${mb(rss[0])} MiB, last ${mb(rss.at(-1)!)} MiB`,
    );
    if (hostileSeen) {
      console.log(
        "\n| hostile request | sent | its 4xx | 429 (queue full, refused before reading) | " +
          "other | p50 time (s) |",
      );
      console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
      for (const h of hostileSeen) {
        console.log(
          `| ${h.what} | ${h.ok + h.busy + h.other.length} | ${h.ok} x ${h.expect} | ${h.busy} | ` +
            `${h.other.length} | ${(quantile(h.ms, 0.5) / 1000).toFixed(2)} |`,
        );
        if (h.other.length) console.log(`  unexpected: ${h.other.slice(0, 3).join(" / ")}`);
      }
    }
    if (lost.length) console.log(`LOST JOBS:\n${lost.join("\n")}`);
  } finally {
    sampling = false;
    await server.stop();
    await Deno.remove(cache, { recursive: true });
  }
}

if (import.meta.main) {
  const arg = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const hostileAt = arg("hostile-clients"), healthAt = arg("health-of");
  if (hostileAt) console.log(JSON.stringify(await hostileClients(hostileAt, durationSeconds())));
  if (healthAt) console.log(JSON.stringify(await healthLatencies(healthAt, durationSeconds())));
}
