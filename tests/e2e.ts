/**
 * Shared set-up of the end-to-end tests (browser panel, Fiji bridge): the real server with the
 * tiny reference checkpoint on a free loopback port, Debian's Chromium through playwright-core,
 * and the folder where screenshots are kept as test artefacts.
 * @module
 */
import { join } from "node:path";
import { FIXTURES, REPO } from "./fixtures.ts";
import { type RunningServer, type ServerOptions, startServer } from "../server/main.ts";

/** Screenshots and other artefacts of the e2e tests. */
export const ARTIFACTS = join(REPO, "test-artifacts");

/** Debian's Chromium (never a downloaded browser). */
export const CHROMIUM = "/usr/bin/chromium";

/** True when `path` exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether an e2e test must be ignored because a system component is missing. On CI (CI=true,
 * where .ci/run installs everything) a missing component is an error, not a skip.
 */
export function missing(...paths: string[]): boolean {
  const absent = paths.filter((p) => !exists(p));
  if (absent.length && Deno.env.get("CI")) {
    throw new Error(`CI is missing ${absent.join(", ")}: see .ci/run`);
  }
  return absent.length > 0;
}

/** The server with the tiny cpsam model loaded (on CPU) and its own model cache. */
export async function startTinyServer(
  panelDir?: string,
  options: ServerOptions = {},
): Promise<RunningServer & { cleanup(): Promise<void> }> {
  const cache = await Deno.makeTempDir({ prefix: "e2e_models_" });
  Deno.env.set("CELLPOSE_LOCAL_MODELS_PATH", cache);
  const server = await startServer({
    port: 0,
    log: () => {},
    model: join(FIXTURES, "tiny-cpsam.pt"),
    device: "cpu",
    preload: true,
    panelDir,
    ...options,
  });
  return Object.assign(server, {
    async cleanup() {
      await server.close();
      await Deno.remove(cache, { recursive: true });
    },
  });
}

/** Chromium launch options for this sandbox (root, no GPU, no network). */
export const CHROMIUM_OPTIONS = {
  executablePath: CHROMIUM,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};
