/**
 * The panel's client for the cellpose-deno server's /v1 API: submit, progress events, results,
 * cancel, corrected masks, training, models (list, switch), and the viewer bridge (Fiji/ImageJ).
 *
 * @example
 * ```ts
 * import { ServerApi } from "./api.ts";
 * const api = new ServerApi("http://127.0.0.1:8000");
 * const { id } = await api.submit(new Blob([]), "cells.tif", { flow_threshold: 0.4 });
 * ```
 * @module
 */

/** A job as the server reports it. */
export interface JobStatus {
  id: string;
  status: "queued" | "running" | "done" | "failed" | "cancelled";
  stage?: string;
  tilesDone?: number;
  tilesTotal?: number;
  fraction?: number;
  nMasks?: number;
  message?: string;
  error?: { code: string; message: string };
}

/** A training job as the server reports it (`/v1/train/:id` and its events). */
export interface TrainStatus extends JobStatus {
  /** `step` (loss of one batch) or `epoch` (mean loss of the epoch) */
  event?: "step" | "epoch";
  /** 1-based */
  epoch?: number;
  nEpochs?: number;
  loss?: number;
  eta?: number;
  modelName?: string;
  trainLosses?: number[];
  secondsPerEpoch?: number;
}

/** A viewer connected through the bridge. */
export interface Viewer {
  id: string;
  name: string;
}

/** Error answered by the server, with its message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly code?: string) {
    super(message);
    this.name = "ApiError";
  }
}

/** Thin typed wrapper over fetch for one server. */
export class ServerApi {
  readonly base: string;
  constructor(base: string, private token?: string) {
    this.base = base.replace(/\/+$/, "");
  }

  private async req(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set("Authorization", `Bearer ${this.token}`);
    const res = await fetch(this.base + path, { ...init, headers });
    if (!res.ok) {
      let message = `${res.status} ${res.statusText}`;
      let code: string | undefined;
      try {
        const body = await res.json();
        message = body?.error?.message ?? message;
        code = body?.error?.code;
      } catch { /* not JSON */ }
      throw new ApiError(res.status, message, code);
    }
    return res;
  }

  /** Server health: device, model, memory. */
  async health(): Promise<Record<string, unknown>> {
    return await (await this.req("/v1/health")).json();
  }

  /** Submits an image file with cellpose parameters; returns the new job. */
  async submit(
    file: Blob,
    name: string,
    params: Record<string, string | number | boolean>,
  ): Promise<JobStatus> {
    const form = new FormData();
    for (const [k, v] of Object.entries(params)) form.set(k, String(v));
    form.set("image", file, name);
    return await (await this.req("/v1/segment", { method: "POST", body: form })).json();
  }

  /** Names of the models the server can load (its cache, shipped and downloadable models). */
  async models(): Promise<string[]> {
    const body = await (await this.req("/v1/models")).json();
    return (body.models ?? []).map((m: { name: string }) => m.name);
  }

  /** Makes the server load model `name` for the next jobs; resolves once it is loaded. */
  async useModel(name: string): Promise<void> {
    await this.req(`/v1/models/${encodeURIComponent(name)}/load`, { method: "POST" });
  }

  /** Current status of a job. */
  async job(id: string): Promise<JobStatus> {
    return await (await this.req(`/v1/jobs/${id}`)).json();
  }

  /**
   * Follows a job's Server-Sent Events until it ends; calls `onEvent` for each. `route` is
   * `jobs` for segmentations, `train` for trainings.
   */
  follow<S extends JobStatus = JobStatus>(
    id: string,
    onEvent: (s: S) => void,
    route: "jobs" | "train" = "jobs",
  ): Promise<S> {
    return new Promise((resolve, reject) => {
      const url = `${this.base}/v1/${route}/${id}/events${
        this.token ? `?token=${encodeURIComponent(this.token)}` : ""
      }`;
      const es = new EventSource(url);
      const handle = (ev: MessageEvent) => {
        const s = { id, ...JSON.parse(ev.data) } as S;
        onEvent(s);
        if (s.status === "done" || s.status === "failed" || s.status === "cancelled") {
          es.close();
          resolve(s);
        }
      };
      es.onmessage = handle;
      for (const t of ["progress", "status", "done", "failed", "cancelled", "error"]) {
        es.addEventListener(t, (ev) => {
          if (ev instanceof MessageEvent && ev.data) handle(ev);
        });
      }
      es.onerror = () => {
        // the stream closed: ask once for the final state
        es.close();
        this.req(`/v1/${route}/${id}`).then((r) => r.json()).then((s: S) => {
          onEvent(s);
          resolve(s);
        }, reject);
      };
    });
  }

  /** Cancels a job. */
  async cancel(id: string): Promise<void> {
    await this.req(`/v1/jobs/${id}`, { method: "DELETE" });
  }

  /** Replaces a finished job's masks by corrected ones (a label TIFF); returns the job. */
  async putMasks(id: string, labelsTiff: Uint8Array): Promise<JobStatus> {
    const body = labelsTiff as Uint8Array<ArrayBuffer>;
    return await (await this.req(`/v1/jobs/${id}/masks`, {
      method: "PUT",
      headers: { "content-type": "image/tiff" },
      body,
    })).json();
  }

  /** Starts a training on the (corrected) masks of finished jobs; returns the training job. */
  async train(jobs: string[], params: Record<string, string | number>): Promise<TrainStatus> {
    return await (await this.req("/v1/train", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jobs, ...params }),
    })).json();
  }

  /** Cancels a training. */
  async cancelTraining(id: string): Promise<void> {
    await this.req(`/v1/train/${id}`, { method: "DELETE" });
  }

  /** A job's result in one of the server's formats. */
  async result(
    id: string,
    format: "tiff" | "png" | "npy" | "roi" | "json" | string,
  ): Promise<ArrayBuffer> {
    return await (await this.req(`/v1/jobs/${id}/result?format=${format}`)).arrayBuffer();
  }

  /** Viewers connected through the bridge. */
  async viewers(): Promise<Viewer[]> {
    return (await (await this.req("/v1/bridge")).json()).viewers ?? [];
  }

  /** Asks a connected viewer for its active image and waits for it. */
  async imageFromViewer(viewer: string): Promise<{ blob: Blob; name: string }> {
    const res = await this.req(`/v1/bridge/${viewer}/image?wait=30`);
    const name = res.headers.get("x-image-name") ?? "viewer-image.tif";
    return { blob: await res.blob(), name };
  }

  /** Sends a job's result (optionally with edited labels as a TIFF) to a connected viewer. */
  async sendToViewer(
    viewer: string,
    job: string,
    title: string,
    labelsTiff?: Uint8Array,
  ): Promise<void> {
    const form = new FormData();
    form.set("job", job);
    form.set("title", title);
    if (labelsTiff) {
      form.set("labels", new Blob([labelsTiff as BlobPart], { type: "image/tiff" }), "labels.tif");
    }
    await this.req(`/v1/bridge/${viewer}/show`, { method: "POST", body: form });
  }
}
