/**
 * Who may talk to the server. Three checks run before every route:
 *
 * - Origin: a request carrying an `Origin` header must come from the server's own origin (the
 *   panel) or a configured one, else 403; allowed cross origins get CORS headers and preflights.
 * - Host: with no token (loopback only), the `Host` header must name a loopback address, so a web
 *   page cannot reach the server through DNS rebinding.
 * - Token: when a token is set, `/v1/*` and `/openapi.json` need `Authorization: Bearer <token>`
 *   (or `?token=` for `EventSource`, which cannot send headers). The panel's static files
 *   are public.
 *
 * {@link requireTokenForBind} enforces the rule that binding beyond loopback needs a token.
 *
 * @example
 * ```ts
 * import { isLoopback, requireTokenForBind } from "./auth.ts";
 * console.log(isLoopback("127.0.0.1"), isLoopback("0.0.0.0")); // true false
 * requireTokenForBind("127.0.0.1", undefined); // fine: loopback needs no token
 * ```
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { CellposeError } from "../core/errors.ts";
import { jsonError } from "./errors.ts";

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Throws `BAD_PARAMETER` (field `token`) when `hostname` is not loopback and no usable token is given. */
export function requireTokenForBind(hostname: string, token: string | undefined): void {
  if (isLoopback(hostname)) return;
  if (!token || token.length < 8) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `listening on ${hostname} (not loopback) needs a token of at least 8 characters ` +
        "(--token or $CELLPOSE_TOKEN); clients then send Authorization: Bearer <token>",
      { field: "token" },
    );
  }
}

/** The origins a browser uses for a server on `hostname:port` (the panel's own origin). */
export function ownOrigins(hostname: string, port: number): string[] {
  const names = isLoopback(hostname) || hostname === "0.0.0.0" || hostname === "::"
    ? ["127.0.0.1", "localhost", "[::1]"]
    : [];
  if (!isLoopback(hostname)) names.push(hostname.includes(":") ? `[${hostname}]` : hostname);
  return names.map((n) => `http://${n}:${port}`);
}

/** Settings of {@link guard}. */
export interface GuardOptions {
  /** bearer token; undefined: none required */
  token?: string;
  /** origins allowed besides {@link ownOrigins}; "*" allows any */
  corsOrigins: readonly string[];
  /** the server's own origins, filled in once the port is known */
  ownOrigins: () => readonly string[];
}

const PREFLIGHT_HEADERS = "Authorization, Content-Type, Last-Event-ID";

/** The Hono middleware applying origin, host and token checks (see the module doc). */
export function guard(opts: GuardOptions): MiddlewareHandler {
  return async (c, next) => {
    const origin = c.req.header("origin");
    const own = opts.ownOrigins();
    const cross = origin !== undefined && !own.includes(origin);
    if (cross && !opts.corsOrigins.includes("*") && !opts.corsOrigins.includes(origin)) {
      return jsonError(
        403,
        "FORBIDDEN",
        `origin ${origin} is not allowed; add it to the server's CORS origins ` +
          `(option corsOrigins, or CELLPOSE_CORS_ORIGINS=${origin})`,
        "origin",
      );
    }
    if (!opts.token) {
      const host = (c.req.header("host") ?? "").replace(/:\d+$/, "");
      if (!isLoopback(host)) {
        return jsonError(
          403,
          "FORBIDDEN",
          `host ${JSON.stringify(host)} is not a loopback name; without a token the server ` +
            "only answers requests to 127.0.0.1, localhost or [::1]",
          "host",
        );
      }
    }
    if (cross && c.req.method === "OPTIONS") {
      return new Response(null, {
        status: 204,
        headers: {
          "access-control-allow-origin": origin,
          "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
          "access-control-allow-headers": PREFLIGHT_HEADERS,
          "access-control-max-age": "600",
          "vary": "Origin",
        },
      });
    }
    const path = c.req.path;
    if (opts.token && (path.startsWith("/v1/") || path === "/openapi.json")) {
      const header = c.req.header("authorization") ?? "";
      const given = header.startsWith("Bearer ") ? header.slice(7).trim() : c.req.query("token");
      if (given === undefined || !sameSecret(given, opts.token)) {
        const res = jsonError(
          401,
          "UNAUTHORIZED",
          given === undefined
            ? "this server needs Authorization: Bearer <token>"
            : "the bearer token is wrong",
          "authorization",
          { "www-authenticate": 'Bearer realm="cellpose"' },
        );
        return cross ? withCors(res, origin) : res;
      }
    }
    await next();
    if (cross) {
      c.res.headers.set("access-control-allow-origin", origin);
      c.res.headers.set("access-control-expose-headers", "Location, Retry-After");
      c.res.headers.append("vary", "Origin");
    }
  };
}

function withCors(res: Response, origin: string): Response {
  res.headers.set("access-control-allow-origin", origin);
  res.headers.append("vary", "Origin");
  return res;
}

/** Compares two secrets in time independent of where they differ. */
function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < y.length; i++) diff |= (x[i] ?? 0) ^ y[i];
  return diff === 0;
}
