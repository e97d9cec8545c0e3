/**
 * The real server in a child process of its own (the tiny reference checkpoint, CPU), so that its
 * resident memory can be measured alone: current RSS, and the peak since the last
 * {@link ServerProcess.resetPeak} (Linux `/proc/<pid>/clear_refs`). Its log lines (stderr) are
 * kept. Used by the hostile-client tests and the load benchmark.
 * @module
 */
import { join } from "node:path";
import { FIXTURES, REPO } from "./fixtures.ts";
import type { ServerOptions } from "../server/main.ts";

/** A server started by {@link spawnServer}. */
export interface ServerProcess {
  url: string;
  pid: number;
  /** resident memory now, bytes */
  rssBytes(): number;
  /** the peak resident memory since the last reset (or the start), bytes */
  peakBytes(): number;
  /** makes the peak the current RSS */
  resetPeak(): void;
  /** what the server logged so far */
  log(): string;
  /** SIGTERM, then waits for the exit */
  stop(): Promise<void>;
}

function status(pid: number, key: "VmRSS" | "VmHWM"): number {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch (e) {
    // without --allow-all Deno refuses /proc; `ps` gives the current RSS (not the peak)
    if (key !== "VmRSS" || !(e instanceof Deno.errors.NotCapable)) throw e;
    const out = new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).outputSync();
    return Number(new TextDecoder().decode(out.stdout).trim()) * 1024;
  }
  return Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(text)![1]) * 1024;
}

/**
 * Starts `startServer({port: 0, model: tiny-cpsam, device: "cpu", ...options})` in a child
 * process (options must be JSON values) and resolves once it listens.
 */
export async function spawnServer(
  options: Omit<ServerOptions, "log"> = {},
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const settings = { port: 0, model: join(FIXTURES, "tiny-cpsam.pt"), device: "cpu", ...options };
  const code = `
    import { startServer } from ${
    JSON.stringify(new URL("../server/main.ts", import.meta.url).href)
  };
    const s = await startServer({ ...${JSON.stringify(settings)}, log: (l) => console.error(l) });
    console.log(s.url);
    Deno.addSignalListener("SIGTERM", async () => { await s.close(); Deno.exit(0); });`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", join(REPO, "deno.json"), code],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let logged = "";
  (async () => {
    for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) logged += t;
  })().catch(() => {});
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) {
      await child.status;
      throw new Error(`the server process ended before listening:\n${logged}`);
    }
    out += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const pid = child.pid;
  return {
    url: out.trim(),
    pid,
    rssBytes: () => status(pid, "VmRSS"),
    peakBytes: () => status(pid, "VmHWM"),
    resetPeak: () => Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5"),
    log: () => logged,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already ended */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* ended */ }
      }, 10_000);
      await child.status;
      clearTimeout(timer);
    },
  };
}
