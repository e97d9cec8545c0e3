/**
 * Models over HTTP (`/v1/models`): the models the server can load and the one loaded, and
 * switching to another (`POST /v1/models/:name/load`, by name only: paths are accepted only as
 * the server's `--model` option).
 *
 * Routes (under /v1/models):
 * - `GET /` -> {current, models}; `POST /:name/load` -> {current} once loaded
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Hono } from "hono";
 * import { createModelSlot } from "./model_slot.ts";
 * import { modelRoutes } from "./model_routes.ts";
 * const model = createModelSlot(() =>
 *   Promise.resolve({ device: "cpu" as const, dispose: () => Promise.resolve() })
 * );
 * const app = new Hono().route(
 *   "/v1/models",
 *   modelRoutes({ model, modelsDir: await Deno.makeTempDir(), serverModel: "cpsam" }),
 * );
 * const res = await app.request("/v1/models/nuclei/load", { method: "POST" });
 * assertEquals((await res.json()).current.name, "nuclei");
 * await model.close();
 * ```
 * @module
 */
import { Hono } from "hono";
import { CellposeError } from "../core/errors.ts";
import { listModels } from "../models/store.ts";
import type { ModelSlot, SlotModel } from "./model_slot.ts";

/** Options of {@link modelRoutes}. */
export interface ModelRoutesOptions {
  /** the server's one model */
  model: Pick<ModelSlot<SlotModel>, "load" | "status">;
  /** the model cache folder listed [`$CELLPOSE_LOCAL_MODELS_PATH`, else ~/.cellpose/models] */
  modelsDir?: string;
  /** the model the server was started with (may be a path) */
  serverModel: string;
}

const MODEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Builds the `/v1/models` routes (see the module doc). */
export function modelRoutes(opts: ModelRoutesOptions): Hono {
  const { model } = opts;
  const app = new Hono();
  app.get(
    "/",
    async (c) =>
      c.json({
        current: model.status(),
        models: await listModels({ cacheDir: opts.modelsDir }),
      }),
  );
  app.post("/:name/load", async (c) => {
    const name = c.req.param("name");
    if (name !== opts.serverModel && !MODEL_NAME.test(name)) {
      throw new CellposeError(
        "BAD_PARAMETER",
        `model name ${JSON.stringify(name)} must be a name from GET /v1/models (letters, digits, ` +
          "'_', '.', '-'); paths are only accepted as the server's --model option",
        { field: "name", got: name },
      );
    }
    await model.load(name);
    return c.json({ current: model.status() });
  });
  return app;
}
