/**
 * Who may talk to the server. Three checks run before every route:
 *
 * - Origin: a request carrying an `Origin` header must come from the server's own origin (the
 *   panel) or a configured one, else 403; allowed origins get CORS headers and preflights
 *   (Hono's `cors`).
 * - Host: with no token (loopback only), the `Host` header must name a loopback address, so a web
 *   page cannot reach the server through DNS rebinding.
 * - Token: when a token is set, `/v1/*` and `/openapi.json` need `Authorization: Bearer <token>`
 *   (Hono's `bearerAuth`), or `?token=` for `EventSource`, which cannot send headers. The panel's
 *   static files are public.
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
import { bearerAuth } from "hono/bearer-auth";
import { cors } from "hono/cors";
import { timingSafeEqual } from "hono/utils/buffer";
import { excerpt } from "../core/check.ts";
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

/** Whether `origin` (a request's `Origin`) may call the API: the panel's own, or configured. */
function allowedOrigin(opts: GuardOptions, origin: string): boolean {
  return opts.ownOrigins().includes(origin) || opts.corsOrigins.includes("*") ||
    opts.corsOrigins.includes(origin);
}

/** The paths that need the token when one is set (the panel's static files are public). */
export const TOKEN_PATHS: readonly string[] = ["/v1/*", "/openapi.json"];

/**
 * The Hono middleware of the origin and Host checks and CORS (Hono's `cors`), in this order;
 * the token check is {@link tokenAuth}, on {@link TOKEN_PATHS}. See the module doc.
 */
export function guard(opts: GuardOptions): MiddlewareHandler[] {
  const checks: MiddlewareHandler = async (c, next) => {
    const origin = c.req.header("origin");
    if (origin !== undefined && !allowedOrigin(opts, origin)) {
      return jsonError(
        403,
        "FORBIDDEN",
        `origin ${excerpt(origin)} is not allowed; add it to the server's CORS origins ` +
          `(option corsOrigins, or CELLPOSE_CORS_ORIGINS=${excerpt(origin)})`,
        "origin",
      );
    }
    if (!opts.token) {
      const host = (c.req.header("host") ?? "").replace(/:\d+$/, "");
      if (!isLoopback(host)) {
        return jsonError(
          403,
          "FORBIDDEN",
          `host ${excerpt(host)} is not a loopback name; without a token the server ` +
            "only answers requests to 127.0.0.1, localhost or [::1]",
          "host",
        );
      }
    }
    await next();
  };
  const corsHeaders = cors({
    origin: (origin) => allowedOrigin(opts, origin) ? origin : null,
    allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
    allowHeaders: ["Authorization", "Content-Type", "Last-Event-ID"],
    exposeHeaders: ["Location", "Retry-After"],
    maxAge: 600,
  });
  return [checks, corsHeaders];
}

/**
 * The token check (Hono's `bearerAuth`, realm "cellpose"; errors as the API's JSON errors), also
 * taking `?token=` for `EventSource`, which cannot send headers.
 */
export function tokenAuth(token: string): MiddlewareHandler {
  const unauthorized = (message: string) => () =>
    jsonError(401, "UNAUTHORIZED", message, "authorization", {
      "www-authenticate": 'Bearer realm="cellpose"',
    });
  const bearer = bearerAuth({
    token,
    realm: "cellpose",
    noAuthenticationHeader: {
      message: unauthorized("this server needs Authorization: Bearer <token>"),
    },
    invalidAuthenticationHeader: {
      message: unauthorized("the Authorization header must be Bearer <token>"),
    },
    invalidToken: { message: unauthorized("the bearer token is wrong") },
  });
  return async (c, next) => {
    const query = c.req.query("token");
    if (c.req.header("authorization") === undefined && query !== undefined) {
      if (!(await timingSafeEqual(token, query))) {
        return unauthorized("the bearer token is wrong")();
      }
      return await next();
    }
    return await bearer(c, next);
  };
}
