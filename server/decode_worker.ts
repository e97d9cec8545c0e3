/**
 * The decode worker: reads uploaded images (`decodeImage`) off the server's main thread, so a
 * slow or hostile file (a decompression bomb, a huge TIFF) never holds up health checks, cancels
 * or other clients. `decoder.ts` starts it and owns the protocol: one call at a time per worker,
 * bytes in and pixels out as transferred buffers.
 *
 * @example
 * ```ts
 * const worker = new Worker(new URL("./decode_worker.ts", import.meta.url), { type: "module" });
 * worker.postMessage({ id: 1, bytes: new Uint8Array(8), name: "x.png", maxPixels: 1 << 20, field: "image" });
 * ```
 * @module
 */
import { decodeImage } from "./image_input.ts";
import type { DecodeCall } from "./decoder.ts";
import { serializeError } from "./worker_protocol.ts";

const scope = self as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<DecodeCall>) => void) | null;
};

scope.onmessage = async (e) => {
  const { id, bytes, name, maxPixels, field } = e.data;
  try {
    const r = await decodeImage(bytes, name, maxPixels, field);
    scope.postMessage({ id, result: r }, [r.image.data.buffer as ArrayBuffer]);
  } catch (err) {
    scope.postMessage({ id, error: serializeError(err) });
  }
};
