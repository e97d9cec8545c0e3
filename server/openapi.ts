/**
 * The OpenAPI 3.1 description served at `/openapi.json`. The segmentation parameters and result
 * formats come from the same tables the server validates with, so the description cannot drift
 * from the behaviour.
 *
 * @example
 * ```ts
 * import { openApiDocument } from "./openapi.ts";
 * const doc = openApiDocument();
 * console.log(Object.keys(doc.paths).includes("/v1/segment")); // true
 * ```
 * @module
 */
import type { ParamSpec } from "../core/params.ts";
import { SEGMENT_PARAMS } from "./params.ts";
import { RESULT_FORMATS } from "./results.ts";
import { IMAGE_CONTENT_TYPES } from "./request.ts";
import { TRAIN_PARAMS } from "./train_routes.ts";

type Schema = Record<string, unknown>;

/** The JSON schema of one parameter of the table (range, default, help). */
export function paramSchema(p: ParamSpec): Schema {
  const dflt = p.default !== undefined ? { default: p.default } : {};
  const also = p.key !== p.name ? ` (also accepted as ${p.key})` : "";
  switch (p.type) {
    case "boolean":
    case "string":
      return { type: p.type, ...dflt, description: p.help + also };
    case "normalize":
      return {
        oneOf: [{ type: "boolean" }, { type: "object" }],
        ...dflt,
        description: p.help + also,
      };
  }
  const range: Schema = { type: p.type };
  if (p.min !== undefined) range[p.openMin ? "exclusiveMinimum" : "minimum"] = p.min;
  if (p.max !== undefined) range[p.openMax ? "exclusiveMaximum" : "maximum"] = p.max;
  const schema = p.unset !== undefined ? { oneOf: [{ const: p.unset }, range] } : range;
  const unset = p.unset !== undefined ? ` (${p.unset}: automatic)` : "";
  return { ...schema, ...dflt, description: p.help + unset + also };
}

const error = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

const jobId = { name: "id", in: "path", required: true, schema: { type: "string" } };

/** The OpenAPI document of the server. */
export function openApiDocument(): {
  openapi: string;
  info: Schema;
  paths: Record<string, Schema>;
  security: Schema[];
  components: Schema;
} {
  const params = Object.fromEntries(SEGMENT_PARAMS.map((p) => [p.name, paramSchema(p)]));
  const queryParams = SEGMENT_PARAMS.map((p) => ({
    name: p.name,
    in: "query",
    required: false,
    schema: paramSchema(p),
  }));
  const trainParams = Object.fromEntries(
    TRAIN_PARAMS.map((p) => [p.name, paramSchema(p)]),
  );
  const raw = Object.fromEntries(
    IMAGE_CONTENT_TYPES.map((t) => [t, { schema: { type: "string", format: "binary" } }]),
  );
  const format = {
    name: "format",
    in: "query",
    schema: { type: "string", enum: RESULT_FORMATS, default: "json" },
  };
  const refused = {
    "400": error("bad parameter (the field is named)"),
    "401": error("missing or wrong bearer token"),
    "403": error("origin or host not allowed"),
    "408": error(
      "request head not complete within 10 s, or the body slower than 16 KiB/s after 10 s",
    ),
    "413": error("upload, image, multipart field or part count too large"),
    "415": error("unsupported content type or image format"),
    "422": error("the image could not be read or has the wrong shape"),
    "429": error("queue full: retry after the Retry-After header's seconds"),
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "cellpose-deno local server",
      version: "1",
      description: "Cellpose-SAM segmentation over HTTP. Errors are " +
        "{error: {code, message, field?}}. Parameters take cellpose's names or camelCase.",
    },
    paths: {
      "/v1/segment": {
        post: {
          summary: "Submit an image for segmentation",
          parameters: [
            {
              name: "sync",
              in: "query",
              description: "1: wait and return the result (small images only)",
              schema: { type: "integer", enum: [0, 1] },
            },
            { ...format, description: "result format for sync=1" },
            ...queryParams,
          ],
          requestBody: {
            required: true,
            content: {
              ...raw,
              "multipart/form-data": {
                schema: {
                  type: "object",
                  required: ["image"],
                  properties: {
                    image: { type: "string", format: "binary", description: "TIFF, PNG or NPY" },
                    params: { type: "string", description: "JSON object of parameters" },
                    ...params,
                  },
                },
              },
            },
          },
          responses: {
            "202": {
              description: "job accepted",
              headers: { Location: { schema: { type: "string" } } },
              content: { "application/json": { schema: { $ref: "#/components/schemas/Job" } } },
            },
            "200": { description: "sync=1: the result in the requested format" },
            ...refused,
          },
        },
      },
      "/v1/segment_large": {
        post: {
          summary: "Segment a huge 2-D image block by block; answers the label TIFF",
          description: "The body is a TIFF, spooled to disk as it arrives (never held in " +
            "memory), or `path` names a TIFF / OME-Zarr under a folder the server was started " +
            "with (--data_dir). Segmentation parameters as query parameters, plus block_size " +
            "and halo. The answer streams the uint16/uint32 label TIFF; headers " +
            "x-cellpose-masks, x-cellpose-blocks.",
          parameters: [
            { name: "path", in: "query", schema: { type: "string" } },
            { name: "block_size", in: "query", schema: { type: "integer", default: 2048 } },
            { name: "halo", in: "query", schema: { type: "integer" } },
          ],
          requestBody: {
            content: { "image/tiff": { schema: { type: "string", format: "binary" } } },
          },
          responses: {
            "200": {
              description: "the label image",
              content: { "image/tiff": { schema: { type: "string", format: "binary" } } },
            },
            "403": error("a path outside the data folders, or none configured"),
            "413": error("upload over maxSpoolBytes"),
          },
        },
      },
      "/v1/jobs": {
        get: { summary: "List stored jobs", responses: { "200": { description: "the jobs" } } },
      },
      "/v1/jobs/{id}": {
        get: {
          summary: "Job status",
          parameters: [jobId],
          responses: {
            "200": {
              description: "the job",
              content: { "application/json": { schema: { $ref: "#/components/schemas/Job" } } },
            },
            "404": error("no such job (or expired)"),
          },
        },
        delete: {
          summary: "Cancel a job and delete it with its result",
          parameters: [jobId],
          responses: { "200": { description: "deleted" }, "404": error("no such job") },
        },
      },
      "/v1/jobs/{id}/events": {
        get: {
          summary: "Progress as Server-Sent Events",
          description: "Events `status` ({status, error?, nMasks?}) and `progress` ({status, " +
            "stage, tilesDone, tilesTotal, fraction}); stages normalize, network, dynamics, " +
            "done. Replays past events (after Last-Event-ID) and closes after the final status.",
          parameters: [jobId],
          responses: {
            "200": { description: "event stream", content: { "text/event-stream": {} } },
            "404": error("no such job"),
          },
        },
      },
      "/v1/jobs/{id}/result": {
        get: {
          summary: "The label image of a finished job",
          parameters: [jobId, format],
          responses: {
            "200": { description: "masks in the requested format" },
            "404": error("no such job"),
            "409": error("job not finished, failed or cancelled"),
          },
        },
      },
      "/v1/jobs/{id}/masks": {
        put: {
          summary: "Replace a finished job's masks by corrected ones (for training)",
          parameters: [jobId],
          requestBody: {
            required: true,
            content: { "image/tiff": { schema: { type: "string", format: "binary" } } },
          },
          responses: {
            "200": { description: "the job with its new mask count" },
            "404": error("no such job"),
            "409": error("job not finished"),
            "422": error("labels of another shape, or not whole numbers"),
          },
        },
      },
      "/v1/train": {
        post: {
          summary: "Train a model on images and their corrected masks",
          description: "cellpose v4's train_seg recipe (fine-tuning from pretrained_model). " +
            "Images come as multipart `image` + `masks` file pairs and/or `job` ids of finished " +
            "segmentations (their masks as corrected with PUT /v1/jobs/{id}/masks); JSON " +
            "{jobs: [...], ...parameters} also works. One training runs at a time; the model is " +
            "saved into the server's model folder as model_name (GET /v1/models lists it; load " +
            "it with POST /v1/models/{name}/load).",
          requestBody: {
            required: true,
            content: {
              "multipart/form-data": {
                schema: {
                  type: "object",
                  properties: {
                    image: { type: "array", items: { type: "string", format: "binary" } },
                    masks: { type: "array", items: { type: "string", format: "binary" } },
                    job: { type: "array", items: { type: "string" } },
                    params: { type: "string", description: "JSON object of parameters" },
                    ...trainParams,
                  },
                },
              },
              "application/json": {
                schema: {
                  type: "object",
                  properties: {
                    jobs: { type: "array", items: { type: "string" } },
                    ...trainParams,
                  },
                },
              },
            },
          },
          responses: {
            "202": {
              description: "training job accepted",
              headers: { Location: { schema: { type: "string" } } },
              content: { "application/json": { schema: { $ref: "#/components/schemas/Job" } } },
            },
            ...refused,
            "404": error("unknown job id or pretrained_model"),
            "409": error("model_name is taken"),
          },
        },
        get: { summary: "List training jobs", responses: { "200": { description: "the jobs" } } },
      },
      "/v1/train/{id}": {
        get: {
          summary: "Training job status: epoch, loss, lr, eta; when done the model and losses",
          parameters: [jobId],
          responses: { "200": { description: "the job" }, "404": error("no such job") },
        },
        delete: {
          summary: "Cancel a training (no model is saved)",
          parameters: [jobId],
          responses: { "200": { description: "cancelled" }, "404": error("no such job") },
        },
      },
      "/v1/train/{id}/events": {
        get: {
          summary: "Training progress as Server-Sent Events",
          description: "`progress` events with stage `train`, event `step` (loss of the batch) " +
            "or `epoch` (mean loss of the epoch, testLoss), epoch, nEpochs, lr, fraction, eta; " +
            "`status` events; the `done` status carries modelName, path, trainLosses, " +
            "secondsPerEpoch.",
          parameters: [jobId],
          responses: {
            "200": { description: "event stream", content: { "text/event-stream": {} } },
            "404": error("no such job"),
          },
        },
      },
      "/v1/models": {
        get: {
          summary: "Models in the cache and the one loaded",
          responses: { "200": { description: "the models" } },
        },
      },
      "/v1/models/{name}/load": {
        post: {
          summary: "Load a model for all later jobs",
          parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
          responses: { "200": { description: "loaded" }, "404": error("unknown model") },
        },
      },
      "/v1/health": {
        get: {
          summary: "Device (WebGPU adapter or wasm/cpu), model, queue and memory",
          responses: { "200": { description: "health" } },
        },
      },
    },
    security: [{}, { bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        Error: {
          type: "object",
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: {
                code: { type: "string" },
                message: { type: "string" },
                field: { type: "string" },
              },
            },
          },
        },
        Job: {
          type: "object",
          properties: {
            id: { type: "string" },
            status: { type: "string", enum: ["queued", "running", "done", "failed", "cancelled"] },
            stage: {
              type: "string",
              enum: ["load", "normalize", "network", "dynamics", "done", "train"],
            },
            tilesDone: { type: "integer" },
            tilesTotal: { type: "integer" },
            fraction: { type: "number" },
            nMasks: { type: "integer" },
            error: { type: "object" },
            result: { type: "object" },
            links: { type: "object" },
          },
        },
      },
    },
  };
}
