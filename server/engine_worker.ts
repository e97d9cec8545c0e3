/**
 * The segmentation worker: runs `loadModel` and `segment` off the server's main thread, so the
 * HTTP side (uploads, progress events, health, cancel) stays responsive while a job computes.
 * Messages are described in `engine.ts`, which starts this module as a Web Worker.
 *
 * @example
 * ```ts
 * const worker = new Worker(new URL("./engine_worker.ts", import.meta.url), { type: "module" });
 * worker.postMessage({ type: "load", id: 1, model: { handle: 1, name: "cpsam" } });
 * ```
 * @module
 */
import type { NetRunner } from "../core/types.ts";
import { loadModel } from "../models/load.ts";
import { segment } from "../pipeline/segment.ts";
import type { ModelSpec, ToWorker } from "./engine.ts";
import { serializeError, sharedSignal } from "./worker_protocol.ts";
import { segmentLarge } from "../pipeline/segment_large.ts";

const scope = self as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};

const models = new Map<number, Promise<NetRunner>>();

function modelOf(spec: ModelSpec): Promise<NetRunner> {
  let net = models.get(spec.handle);
  if (!net) {
    net = loadModel(spec.name, {
      device: spec.device,
      precision: spec.precision,
      cacheDir: spec.cacheDir,
    });
    models.set(spec.handle, net);
    net.catch(() => models.delete(spec.handle));
  }
  return net;
}

async function handle(m: ToWorker): Promise<void> {
  const reply = (msg: Record<string, unknown>, transfer: Transferable[] = []) =>
    scope.postMessage({ ...msg, id: m.id }, transfer);
  try {
    if (m.type === "load") {
      const net = await modelOf(m.model);
      reply({ type: "result", result: { device: net.device, bsize: net.bsize } });
    } else if (m.type === "dispose") {
      const net = models.get(m.model.handle);
      models.delete(m.model.handle);
      await (await net?.catch(() => undefined))?.dispose();
      reply({ type: "result", result: null });
    } else if (m.type === "segmentLarge") {
      const net = await modelOf(m.model);
      const r = await segmentLarge(m.input, m.output, {
        ...m.params,
        model: net,
        signal: sharedSignal(m.cancel),
        onProgress: (p) => reply({ type: "progress", progress: p }),
      });
      reply({ type: "result", result: r });
    } else {
      const net = await modelOf(m.model);
      const r = await segment(m.image, {
        ...m.params,
        model: net,
        signal: sharedSignal(m.cancel),
        onProgress: (p) => reply({ type: "progress", progress: p }),
      });
      const buffers = new Set([r.masks, r.flows, r.cellprob].map((a) => a.data.buffer));
      reply({ type: "result", result: r }, [...buffers] as ArrayBuffer[]);
    }
  } catch (e) {
    reply({ type: "error", error: serializeError(e) });
  }
}

scope.onmessage = (e) => void handle(e.data);
