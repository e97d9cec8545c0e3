/**
 * The local HTTP server of cellpose-deno (Hono): `startServer` listens, `createApp` builds the
 * app without listening (to mount it elsewhere). The library (`mod.ts`) does not load it.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { startServer } from "./mod.ts";
 * const server = await startServer({ port: 0, log: () => {} });
 * const health = await fetch(`${server.url}/v1/health`);
 * assertEquals(health.status, 200);
 * await health.body?.cancel();
 * await server.close();
 * ```
 * @module
 */
export { type AppOptions, type CellposeApp, createApp } from "./app.ts";
export type { JobInput } from "./job_routes.ts";
export { DEFAULT_PORT, type RunningServer, type ServerOptions, startServer } from "./main.ts";
export { ServerError, type ServerErrorCode } from "./errors.ts";
