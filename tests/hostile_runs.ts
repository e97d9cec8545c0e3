/**
 * Runs one hostile case ({@link HostileCase}, from `hostile_cases.ts`) the way a user or a client
 * would, measuring its time and peak memory: `cellpose segment` as a subprocess (its peak RSS
 * polled from `/proc`, killed past a time or memory cap), or `POST /v1/segment` (images) and
 * `POST /v1/models/:name/load` (checkpoints) to a server in a process of its own
 * (`server_process.ts`), with `/v1/health` polled meanwhile. Shared by the
 * hostile-input tests and `deno task bench fuzz`.
 * @module
 */
import { join } from "node:path";
import { spawnCli } from "./cli.ts";
import type { HostileCase } from "./hostile_cases.ts";
import type { ServerProcess } from "./server_process.ts";

/** Peak resident memory (VmHWM) of a process, in bytes; 0 where /proc is missing. */
export function peakRss(pid: number | "self" = "self"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** What one run gave. */
export interface CaseRun {
  /** exit code (CLI) or HTTP status (server); 137 when killed at a cap */
  status: number;
  /** stderr (CLI) or the response body (server) */
  text: string;
  ms: number;
  /** peak RSS of the process (CLI), or its growth during the case (server), bytes */
  peakBytes: number;
  /** set when the run was stopped at a cap */
  killed?: string;
}

/** Caps that stop a run that hangs or balloons (so a regression cannot take the machine down). */
export interface Caps {
  /** [60000] */
  ms?: number;
  /** [3 GiB] */
  rssBytes?: number;
}

/**
 * `cellpose segment <image> --pretrained_model <model> --savedir <dir>/out --save_tif` with
 * `dir` as the model cache; its peak RSS followed until it exits.
 */
export async function segmentCli(
  image: string,
  dir: string,
  model: string,
  caps: Caps = {},
): Promise<CaseRun> {
  const p = spawnCli(
    ["segment", image, "--pretrained_model", model, "--savedir", join(dir, "out"), "--save_tif"],
    { env: { CELLPOSE_LOCAL_MODELS_PATH: dir } },
  );
  const maxMs = caps.ms ?? 60_000, maxRss = caps.rssBytes ?? 3 * 2 ** 30;
  let peak = 0, killed: string | undefined;
  const kill = (why: string) => {
    killed ??= why;
    p.kill("SIGKILL");
  };
  const poll = setInterval(() => {
    peak = Math.max(peak, peakRss(p.pid));
    if (peak > maxRss) kill(`RSS over ${maxRss / 2 ** 20} MiB`);
  }, 20);
  const timer = setTimeout(() => kill(`running after ${maxMs / 1000} s`), maxMs);
  const t0 = performance.now();
  const out = await p.result(Infinity); // ended by the caps above
  const ms = performance.now() - t0;
  clearInterval(poll), clearTimeout(timer);
  return { status: killed ? 137 : out.code, text: out.stderr, ms, peakBytes: peak, killed };
}

/** Health latencies (ms) sampled every 50 ms until `stop` resolves. */
export async function healthDuring(url: string, stop: Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  let done = false;
  stop.finally(() => (done = true));
  while (!done) {
    const t = performance.now();
    const ok = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(30_000) })
      .then((r) => r.body?.cancel().then(() => r.ok))
      .catch(() => false);
    samples.push(ok ? performance.now() - t : Infinity);
    await new Promise((r) => setTimeout(r, 50));
  }
  return samples;
}

/** A POST to `server` with a time cap; the answer and the growth of the server's peak RSS. */
async function timedPost(
  server: ServerProcess,
  path: string,
  body: BodyInit | undefined,
  caps: Caps,
): Promise<CaseRun> {
  server.resetPeak();
  const before = server.rssBytes();
  const t0 = performance.now();
  const maxMs = caps.ms ?? 60_000;
  let status = 0, text = "", killed: string | undefined;
  try {
    const res = await fetch(`${server.url}${path}`, {
      method: "POST",
      body,
      signal: AbortSignal.timeout(maxMs),
    });
    status = res.status;
    text = await res.text();
  } catch (e) {
    killed = `no answer in ${maxMs / 1000} s (${(e as Error).message})`;
    status = 137;
  }
  const ms = performance.now() - t0;
  return { status, text, ms, peakBytes: server.peakBytes() - before, killed };
}

/**
 * `POST /v1/segment` of the case's bytes as a multipart image named after its file; the answer
 * and the growth of the server's peak RSS.
 */
export function postSegment(
  server: ServerProcess,
  c: HostileCase,
  caps: Caps = {},
): Promise<CaseRun> {
  const form = new FormData();
  form.set("image", new Blob([c.bytes as Uint8Array<ArrayBuffer>]), c.file);
  return timedPost(server, "/v1/segment", form, caps);
}

/**
 * `POST /v1/models/<name>/load` of the case's checkpoint, written into `cacheDir` (the server's
 * model cache) under its file name; the answer and the growth of the server's peak RSS.
 */
export async function postModelLoad(
  server: ServerProcess,
  cacheDir: string,
  c: HostileCase,
  caps: Caps = {},
): Promise<CaseRun> {
  await Deno.writeFile(join(cacheDir, c.file), c.bytes);
  const name = c.file.replace(/\.pt$/, "");
  return timedPost(server, `/v1/models/${name}/load`, undefined, caps);
}

/** The p-th quantile (0..1) of `xs`. */
export function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}
