/**
 * Load on the local server (loopback only, bounded, stops by itself): 50 concurrent clients
 * submit small images for 60 s (`--duration=SECONDS` or `$SERVER_LOAD_SECONDS` for shorter
 * runs), follow each accepted job's events to its end and fetch its result; refused submissions
 * (429/503) wait for Retry-After. The server runs in its own process with the tiny cpsam model,
 * so its resident memory is sampled alone; `/v1/health` latency is sampled too (the main thread
 * must stay responsive while jobs compute in the worker). Every accepted job must end, none lost.
 *
 * Run: `deno task bench server_load --duration=20`
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeNpy } from "../io/npy.ts";

const CLIENTS = 50;
const REPO = fileURLToPath(new URL("..", import.meta.url));
const TINY = join(REPO, "..", "shared", "fixtures", "tiny-cpsam.pt");

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

/** Starts the server in a child process; resolves with its URL and pid. */
async function spawnServer(cache: string) {
  const code = `
    import { startServer } from ${
    JSON.stringify(new URL("../server/main.ts", import.meta.url).href)
  };
    const s = await startServer({ port: 0, model: ${JSON.stringify(TINY)}, device: "cpu",
      log: (l) => console.error(l) });
    console.log(s.url);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", join(REPO, "deno.json"), code],
    env: { CELLPOSE_LOCAL_MODELS_PATH: cache },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the server process ended before listening");
    out += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return { child, url: out.trim() };
}

function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
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
  const { child, url } = await spawnServer(cache);
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
    const sampler = (async () => {
      while (sampling) {
        rss.push(rssBytes(child.pid));
        const t = performance.now();
        await (await fetch(`${url}/v1/health`)).body?.cancel();
        health.push(performance.now() - t);
        await sleep(500);
      }
    })();
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
    const elapsed = (performance.now() - (stopAt - seconds * 1000)) / 1000;
    sampling = false;
    await sampler;

    const mb = (b: number) => (b / 2 ** 20).toFixed(0);
    const pct = (n: number) => `${((100 * n) / Math.max(1, counts.submitted)).toFixed(1)} %`;
    console.log(
      `\n${CLIENTS} clients, ${seconds} s of submissions (${elapsed.toFixed(1)} s ` +
        "until the last job ended), 128 x 128 images, tiny cpsam, concurrency 1, queue 16\n",
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
    if (lost.length) console.log(`LOST JOBS:\n${lost.join("\n")}`);
  } finally {
    sampling = false;
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(cache, { recursive: true });
  }
}
