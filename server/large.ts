/**
 * `POST /v1/segment_large`: images too large to decode in memory, segmented block by block by the
 * engine's worker (`segmentLarge`: lazy reads, labels written strip by strip) and answered with
 * the label TIFF streamed from disk (`image/tiff`; headers `x-cellpose-masks`,
 * `x-cellpose-blocks`). The image is either
 *
 * - the request body (a TIFF), streamed to a spool file as it arrives (never held in memory; at
 *   most `maxSpoolBytes`, else 413 TOO_LARGE), or
 * - `?path=` a TIFF or OME-Zarr the server can read, only under a folder it was started with
 *   (`--data_dir`, resolved through symlinks; anything else is 403 FORBIDDEN).
 *
 * Segmentation parameters are query parameters as for `/v1/segment` (`diameter=30` ...), plus
 * `block_size` and `halo`. Spool and label files are removed once the answer is sent or failed;
 * a client that disconnects cancels the run.
 *
 * @example
 * ```ts ignore
 * // deno task serve --data_dir /data
 * const res = await fetch("http://127.0.0.1:8000/v1/segment_large?path=/data/slide.tif&diameter=30", { method: "POST" });
 * await Deno.writeFile("slide_cp_masks.tif", res.body!);
 * ```
 * @module
 */
import { Hono } from "hono";
import { join, sep } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { Engine, RemoteModel } from "./engine.ts";
import { ServerError } from "./errors.ts";
import type { ModelSlot } from "./model_slot.ts";
import { parseSegmentParams } from "./params.ts";
import { bodyChunks, type UploadPace } from "./upload.ts";

/** Options of {@link largeRoutes}. */
export interface LargeRouteOptions {
  engine: Engine;
  model: ModelSlot<RemoteModel>;
  /** folders whose images `?path=` may name (none: paths are refused) */
  dataDirs?: string[];
  /** where uploads are spooled and labels written [the system's temporary folder] */
  spoolDir?: string;
  /** [64 GiB] largest upload spooled */
  maxSpoolBytes?: number;
  /** [DEFAULT_PACE] how slowly the body may arrive */
  pace?: UploadPace;
}

const LAYOUT = ["block_size", "halo"] as const;

/** `path` resolved through symlinks when it lies under one of `dirs`; else FORBIDDEN naming it. */
export async function dataPath(path: string, dirs: string[]): Promise<string> {
  if (!dirs.length) {
    throw new ServerError(
      "FORBIDDEN",
      "this server reads no paths: start it with --data_dir FOLDER to allow images under FOLDER",
      { field: "path", got: path },
    );
  }
  const real = await Deno.realPath(path).catch(() => {
    throw new ServerError("NOT_FOUND", `no file or folder ${path} on the server`, {
      field: "path",
      got: path,
    });
  });
  for (const d of dirs) {
    const root = await Deno.realPath(d).catch(() => undefined);
    if (root && (real === root || real.startsWith(root.endsWith(sep) ? root : root + sep))) {
      return real;
    }
  }
  throw new ServerError(
    "FORBIDDEN",
    `${path} is not under the server's data folders (--data_dir: ${dirs.join(", ")})`,
    { field: "path", got: path },
  );
}

/**
 * Streams the body of `req` to the file `to`, at most `limit` bytes (TOO_LARGE past it), at the
 * pace `pace` asks (REQUEST_TIMEOUT when slower).
 */
export async function spoolBody(
  req: Request,
  to: string,
  limit: number,
  pace?: UploadPace,
): Promise<number> {
  if (!req.body) {
    throw new CellposeError("BAD_PARAMETER", "request has no body: send a TIFF or ?path=", {
      field: "body",
    });
  }
  using file = await Deno.open(to, { write: true, createNew: true });
  let total = 0;
  for await (
    const chunk of bodyChunks(req, { limit, option: "server option maxSpoolBytes", pace })
  ) {
    total += chunk.length;
    for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
  }
  if (total === 0) {
    throw new CellposeError("BAD_PARAMETER", "request body is empty: send a TIFF or ?path=", {
      field: "body",
    });
  }
  return total;
}

/** The routes (mounted at `/v1/segment_large`). */
export function largeRoutes(options: LargeRouteOptions): Hono {
  const app = new Hono();
  const limit = options.maxSpoolBytes ?? 64 * 1024 ** 3;
  app.post("/", async (c) => {
    const query = c.req.query();
    const { path, token: _t, ...rest } = query;
    const layout: { blockSize?: number; halo?: number } = {};
    for (const k of LAYOUT) {
      if (rest[k] === undefined) continue;
      const v = Number(rest[k]);
      if (!Number.isInteger(v) || v < (k === "halo" ? 0 : 2)) {
        throw new CellposeError("BAD_PARAMETER", `${k} must be an integer, got ${rest[k]}`, {
          field: k,
          got: rest[k],
        });
      }
      layout[k === "halo" ? "halo" : "blockSize"] = v;
      delete rest[k];
    }
    const params = parseSegmentParams(rest);
    const dir = await Deno.makeTempDir({ dir: options.spoolDir, prefix: "cellpose_large_" });
    try {
      let input: string;
      if (path !== undefined) input = await dataPath(path, options.dataDirs ?? []);
      else {
        input = join(dir, "upload.tif");
        await spoolBody(c.req.raw, input, limit, options.pace);
      }
      const output = join(dir, "labels.tif");
      const r = await options.model.use((m) =>
        options.engine.segmentLarge(m, input, output, { ...params, ...layout }, {
          signal: c.req.raw.signal,
        })
      );
      const file = await Deno.open(output);
      await Deno.remove(dir, { recursive: true }); // the open file stays readable
      return new Response(file.readable, {
        headers: {
          "content-type": "image/tiff",
          "content-disposition": `attachment; filename="cp_masks.tif"`,
          "x-cellpose-masks": String(r.nMasks),
          "x-cellpose-blocks": String(r.blocks),
        },
      });
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  });
  return app;
}
