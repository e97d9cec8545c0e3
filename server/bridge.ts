/**
 * The viewer bridge: a desktop viewer (the Fiji/ImageJ plugin) registers and long-polls for
 * commands; the web panel lists connected viewers, asks one for its active image and sends
 * results back to it. State is in memory; a viewer that stops polling for `staleMs` is dropped.
 *
 * Routes (under /v1/bridge):
 * - `POST /register` {name} -> {id}            (viewer)
 * - `GET /:id/next?wait=s` -> a command        (viewer: {type:"send-image"} | {type:"show-result", job, title} | {type:"none"})
 * - `POST /:id/image` multipart `image`        (viewer answers "send-image")
 * - `POST /:id/error` {message}                (viewer cannot answer)
 * - `GET /` -> {viewers:[{id,name}]}           (panel)
 * - `GET /:id/image?wait=s` -> image bytes     (panel: asks the viewer and waits for its answer)
 * - `POST /:id/show` form {job, title, labels?} (panel: show a job's result in the viewer; edited
 *   labels, a label TIFF, replace the job's masks first through `replaceMasks`)
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { bridgeRoutes } from "./bridge.ts";
 * const app = new Hono();
 * app.route("/v1/bridge", bridgeRoutes({ maxUploadBytes: 1 << 30 }));
 * ```
 * @module
 */
import { Hono } from "hono";
import { CellposeError } from "../core/errors.ts";
import { errorResponse, ServerError } from "./errors.ts";
import { readJsonObject } from "./json_body.ts";
import { type MultipartPart, readMultipart } from "./multipart.ts";
import type { UploadPace } from "./upload.ts";

/** A command queued for a viewer. */
export type BridgeCommand =
  | { type: "send-image" }
  | { type: "show-result"; job: string; title: string }
  | { type: "none" };

interface ImageAnswer {
  bytes: Uint8Array;
  name: string;
}

interface Viewer {
  id: string;
  name: string;
  lastSeen: number;
  commands: BridgeCommand[];
  /** a poll waiting for the next command */
  poller?: (c: BridgeCommand) => void;
  /** panel requests waiting for the viewer's image */
  imageWaiters: { resolve: (a: ImageAnswer) => void; reject: (e: Error) => void }[];
}

/** Options of {@link bridgeRoutes}. */
export interface BridgeOptions {
  /** upload limit for images sent by viewers, bytes */
  maxUploadBytes: number;
  /** drop viewers silent for this long (default 60 s) */
  staleMs?: number;
  /** longest long-poll (default 25 s) */
  maxWaitMs?: number;
  /** replaces a job's masks by an edited label image (TIFF bytes); from the job store */
  replaceMasks?: (job: string, tiff: Uint8Array) => Promise<void>;
  /** [DEFAULT_PACE] how slowly a body may arrive */
  pace?: UploadPace;
}

/** Largest JSON body of `register` and `error` (a name, a message). */
const MAX_JSON_BYTES = 16 * 1024;
/** Longest viewer error message passed on to the panel. */
const MAX_MESSAGE_CHARS = 500;

function waitSeconds(v: string | undefined, maxMs: number): number {
  const s = v === undefined ? maxMs / 1000 : Number(v);
  if (!Number.isFinite(s) || s < 0) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `wait must be a number of seconds >= 0, got ${JSON.stringify(v)}`,
      {
        field: "wait",
        got: v,
      },
    );
  }
  return Math.min(s * 1000, maxMs);
}

/** Form parts by name: multipart read under the bridge's limits (a few parts, one file). */
async function formOf(
  req: Request,
  options: BridgeOptions,
  file: string,
): Promise<Map<string, MultipartPart>> {
  const { parts } = await readMultipart(req, {
    limit: options.maxUploadBytes,
    pace: options.pace,
    files: [file],
    maxParts: 8,
    maxFieldBytes: 4096,
  });
  return new Map(parts.map((p) => [p.name, p]));
}

/** The bridge's Hono routes, to mount at `/v1/bridge`. */
export function bridgeRoutes(options: BridgeOptions): Hono {
  const staleMs = options.staleMs ?? 60_000;
  const maxWaitMs = options.maxWaitMs ?? 25_000;
  const viewers = new Map<string, Viewer>();
  const app = new Hono();

  const prune = () => {
    const now = Date.now();
    for (const [id, v] of viewers) {
      if (!v.poller && now - v.lastSeen > staleMs) {
        for (const w of v.imageWaiters) {
          w.reject(new ServerError("NOT_FOUND", `viewer ${id} disconnected`, id));
        }
        viewers.delete(id);
      }
    }
  };
  const viewerOf = (id: string): Viewer => {
    prune();
    const v = viewers.get(id);
    if (!v) {
      throw new ServerError("NOT_FOUND", `no connected viewer with id ${id}`, {
        field: "id",
        got: id,
      });
    }
    return v;
  };
  const push = (v: Viewer, c: BridgeCommand) => {
    if (v.poller) {
      const p = v.poller;
      v.poller = undefined;
      p(c);
    } else v.commands.push(c);
  };

  app.onError((err) => errorResponse(err));

  app.post("/register", async (c) => {
    const body = await readJsonObject(c.req.raw, "body", {
      limit: MAX_JSON_BYTES,
      pace: options.pace,
      optional: true,
    });
    const name = typeof body?.name === "string" && body.name ? body.name.slice(0, 100) : "viewer";
    const id = crypto.randomUUID().slice(0, 8);
    viewers.set(id, { id, name, lastSeen: Date.now(), commands: [], imageWaiters: [] });
    return c.json({ id }, 201);
  });

  app.get("/", (c) => {
    prune();
    return c.json({ viewers: [...viewers.values()].map(({ id, name }) => ({ id, name })) });
  });

  app.get("/:id/next", async (c) => {
    const v = viewerOf(c.req.param("id"));
    const wait = waitSeconds(c.req.query("wait"), maxWaitMs);
    v.lastSeen = Date.now();
    const queued = v.commands.shift();
    if (queued) return c.json(queued);
    const cmd = await new Promise<BridgeCommand>((resolve) => {
      const timer = setTimeout(() => {
        if (v.poller === done) v.poller = undefined;
        resolve({ type: "none" });
      }, wait);
      const done = (x: BridgeCommand) => {
        clearTimeout(timer);
        resolve(x);
      };
      v.poller?.({ type: "none" });
      v.poller = done;
      c.req.raw.signal.addEventListener("abort", () => done({ type: "none" }));
    });
    v.lastSeen = Date.now();
    return c.json(cmd);
  });

  app.post("/:id/image", async (c) => {
    const v = viewerOf(c.req.param("id"));
    const form = await formOf(c.req.raw, options, "image");
    const file = form.get("image");
    if (!file?.bytes) {
      throw new CellposeError("BAD_PARAMETER", "multipart field 'image' (a file) is missing", {
        field: "image",
      });
    }
    const answer = { bytes: file.bytes, name: file.filename ?? "image" };
    for (const w of v.imageWaiters.splice(0)) w.resolve(answer);
    return c.json({ ok: true });
  });

  app.post("/:id/error", async (c) => {
    const v = viewerOf(c.req.param("id"));
    const body = await readJsonObject(c.req.raw, "body", {
      limit: MAX_JSON_BYTES,
      pace: options.pace,
      optional: true,
    });
    const message = typeof body.message === "string"
      ? body.message.slice(0, MAX_MESSAGE_CHARS)
      : "the viewer could not send an image";
    for (const w of v.imageWaiters.splice(0)) {
      w.reject(new CellposeError("BAD_VALUE", message, v.name));
    }
    return c.json({ ok: true });
  });

  app.get("/:id/image", async (c) => {
    const v = viewerOf(c.req.param("id"));
    const wait = waitSeconds(c.req.query("wait"), 120_000);
    const answer = await new Promise<ImageAnswer>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new ServerError(
              "NOT_READY",
              `viewer ${v.name} did not send an image within ${wait / 1000} s`,
              v.id,
            ),
          ),
        wait,
      );
      v.imageWaiters.push({
        resolve: (a) => (clearTimeout(timer), resolve(a)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      push(v, { type: "send-image" });
    });
    return c.body(answer.bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/octet-stream",
      "x-image-name": answer.name.replace(/[^\w.\- ]/g, "_"),
      "access-control-expose-headers": "x-image-name",
    });
  });

  app.post("/:id/show", async (c) => {
    const v = viewerOf(c.req.param("id"));
    const form = await formOf(c.req.raw, options, "labels");
    const job = form.get("job")?.text;
    if (!job) {
      throw new CellposeError("BAD_PARAMETER", "form field 'job' (a job id) is missing", {
        field: "job",
      });
    }
    const title = form.get("title")?.text?.slice(0, 200) ?? "image";
    const labels = form.get("labels")?.bytes;
    if (labels) {
      if (!options.replaceMasks) {
        throw new CellposeError("UNSUPPORTED", "this server cannot take edited labels", "labels");
      }
      await options.replaceMasks(job, labels);
    }
    push(v, { type: "show-result", job, title });
    return c.json({ ok: true });
  });

  return app;
}
