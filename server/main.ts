/**
 * Starts the local server: checks the bind address against the token rule, builds the app and
 * serves it with `Deno.serve` behind a guard that cuts off slow clients (`conn_guard.ts`). Used by the CLI's `serve` command and by the tests (port 0 picks a
 * free port).
 *
 * @example
 * ```ts
 * import { startServer } from "./main.ts";
 * const server = await startServer({ port: 0, model: "../shared/fixtures/tiny-cpsam.pt" });
 * const health = await (await fetch(`${server.url}/v1/health`)).json();
 * console.log(health.status); // "ok"
 * await server.close();
 * ```
 * @module
 */
import { type AppOptions, type CellposeApp, createApp } from "./app.ts";
import { isLoopback, ownOrigins, requireTokenForBind } from "./auth.ts";
import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import { guardConnections } from "./conn_guard.ts";
import { DEFAULT_PACE } from "./upload.ts";

/** Options of {@link startServer}: the app's plus where to listen. */
export interface ServerOptions extends AppOptions {
  /** address to bind ["127.0.0.1"]; anything else needs `token` */
  host?: string;
  /** port; 0 picks a free one [8000] */
  port?: number;
  /** [10000] ms a request head may take from its first byte; slower clients get 408 */
  headerTimeoutMs?: number;
}

/** A running server. */
export interface RunningServer extends CellposeApp {
  /** e.g. `http://127.0.0.1:8765` */
  url: string;
  host: string;
  port: number;
  /** stops listening, cancels every job and frees the model */
  close(): Promise<void>;
  /** resolves when the server has stopped */
  finished: Promise<void>;
  /** connections cut off so far for a slow request head or body */
  cutOffConnections(): number;
}

/** The default port of `cellpose serve`. */
export const DEFAULT_PORT = 8000;

/**
 * Listens on `host:port` (defaults 127.0.0.1:8000). Throws `UNAUTHORIZED` before binding when
 * `host` is not loopback and no token (of 8+ characters; default `$CELLPOSE_TOKEN`) is given.
 * `corsOrigins` defaults to the comma-separated `$CELLPOSE_CORS_ORIGINS`.
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const hostname = options.host ?? "127.0.0.1";
  const log = options.log ?? console.error;
  const token = options.token ?? (Deno.env.get("CELLPOSE_TOKEN") || undefined);
  const corsOrigins = options.corsOrigins ??
    (Deno.env.get("CELLPOSE_CORS_ORIGINS") ?? "").split(",").map((o) => o.trim()).filter(Boolean);
  requireTokenForBind(hostname, token);
  let port = options.port ?? DEFAULT_PORT;
  const core = createApp({
    ...options,
    token,
    corsOrigins,
    log,
    ownOrigins: () => ownOrigins(hostname, port),
  });
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname, port });
  } catch (e) {
    await core.close();
    throw new CellposeError(
      "BAD_PARAMETER",
      `cannot listen on ${hostname}:${port} (${(e as Error).message}); choose another port`,
      { field: "port", got: port },
      { cause: e },
    );
  }
  port = listener.addr.port;
  // Deno.serve listens on a private Unix socket; the public port is the guard in front of it,
  // which cuts off clients too slow with their request heads or bodies (see conn_guard.ts)
  const socketDir = await Deno.makeTempDir({ prefix: "cellpose-serve-" });
  const socketPath = join(socketDir, "http.sock");
  const listening = Promise.withResolvers<void>();
  const server = Deno.serve({
    path: socketPath,
    onListen: () => listening.resolve(),
    onError: (e) => {
      log(`request failed: ${(e as Error)?.stack ?? e}`);
      return new Response(
        JSON.stringify({ error: { code: "INTERNAL", message: "internal server error" } }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    },
  }, core.app.fetch);
  await listening.promise;
  const guard = guardConnections(listener, {
    socketPath,
    headerTimeoutMs: options.headerTimeoutMs,
    pace: { ...DEFAULT_PACE, ...options.uploadPace },
    log,
  });
  const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = `http://${shown}:${port}`;
  log(`cellpose server listening on ${url}`);
  if (!isLoopback(hostname)) {
    log(
      `  bound to ${hostname}, reachable from other machines: every API request needs ` +
        "Authorization: Bearer <token>",
    );
  }
  let closing: Promise<void> | undefined;
  return {
    ...core,
    url,
    host: hostname,
    port,
    finished: server.finished,
    cutOffConnections: guard.cutOff,
    close() {
      closing ??= (async () => {
        await guard.close();
        await core.close();
        await server.shutdown();
        await Deno.remove(socketDir, { recursive: true }).catch(() => {});
      })();
      return closing;
    },
  };
}
