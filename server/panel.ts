/**
 * The web panel's static files at `/`: the built bundle in `plugin-ui/dist/` when it exists, else a
 * small page saying the panel is not built and how to build it (the API works either way).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { panelRoutes } from "./panel.ts";
 * const app = new Hono();
 * app.route("/", panelRoutes("/no/such/dir"));
 * console.log((await app.request("/")).status); // 200 (the "not built" page)
 * ```
 * @module
 */
import { Hono } from "hono";
import { serveStatic } from "hono/deno";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** `plugin-ui/dist` of this repository. */
export const DEFAULT_PANEL_DIR = fileURLToPath(new URL("../plugin-ui/dist", import.meta.url));

function hasIndex(dir: string): boolean {
  try {
    return Deno.statSync(join(dir, "index.html")).isFile;
  } catch {
    return false;
  }
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cellpose-deno server</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}
code{background:#eee;padding:0 .25em}</style></head>
<body><h1>cellpose-deno server</h1>
<p>The server is running, but the web panel is not built.</p>
<p>Build it from the repository root with <code>deno task build:panel</code> (it writes
<code>plugin-ui/dist/</code>), then reload this page.</p>
<p>The HTTP API works without the panel: see <a href="/openapi.json">/openapi.json</a> and
<a href="/v1/health">/v1/health</a>.</p></body></html>
`;

/**
 * Routes serving the panel from `dir` (checked on each request, so a panel built while the server
 * runs appears on reload).
 */
export function panelRoutes(dir: string = DEFAULT_PANEL_DIR): Hono {
  const app = new Hono();
  const files = serveStatic({ root: dir });
  app.use("/*", async (c, next) => {
    if (c.req.method !== "GET" && c.req.method !== "HEAD") return await next();
    if (hasIndex(dir)) return await files(c, next);
    if (c.req.path === "/" || c.req.path === "/index.html") return c.html(NOT_BUILT);
    await next();
  });
  return app;
}
