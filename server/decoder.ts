/**
 * Image decoding for the server, off its event loop: calls go to a small pool of decode workers
 * (`decode_worker.ts`), one call per worker at a time, the rest wait in order. A decode that has
 * not finished `timeoutMs` after it started has its worker terminated (the call fails with
 * `TOO_LARGE`, naming the field); a worker that crashes fails only its own call. Either way the
 * next call gets a fresh worker.
 *
 * @example
 * ```ts
 * import { createDecoder } from "./decoder.ts";
 * import { encodePng } from "../io/png.ts";
 * const decoder = createDecoder();
 * const png = encodePng({ data: new Uint8Array(4 * 6), shape: [4, 6] });
 * const { image } = await decoder.decode(png, "a.png", 1 << 20, "image");
 * console.log(image.shape); // [4, 6]
 * decoder.close();
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { WebWorker } from "../core/web_worker.ts";
import type { DecodedImage } from "./image_input.ts";
import { deserializeError, type SerializedError } from "./worker_protocol.ts";

/** A message to a decode worker. */
export interface DecodeCall {
  id: number;
  bytes: Uint8Array;
  name: string;
  maxPixels: number;
  field: string;
}

/** Options of {@link createDecoder}. */
export interface DecoderOptions {
  /** [2] workers decoding at once */
  workers?: number;
  /** [120000] ms one decode may take before its worker is stopped */
  timeoutMs?: number;
  /** where stopped and crashed workers are reported [console.error] */
  log?: (line: string) => void;
  /** [true] start the first worker at once (else on the first decode) */
  warm?: boolean;
}

/** See {@link createDecoder}. */
export interface Decoder {
  /**
   * Decodes `bytes` in a worker. With `own`, the caller gives up `bytes` (its buffer moves to the
   * worker, no copy); else they are copied. Errors are those of `decodeImage`, naming `field`.
   */
  decode(
    bytes: Uint8Array,
    name: string,
    maxPixels: number,
    field?: string,
    own?: boolean,
  ): Promise<DecodedImage>;
  /** workers stopped for taking too long or crashing */
  restarts(): number;
  /** decodes in progress and waiting */
  pending(): number;
  /** stops the workers; calls in progress and waiting fail */
  close(): void;
}

interface Slot {
  worker?: Worker;
  call?: Running;
}

interface Running {
  msg: DecodeCall;
  transfer: Transferable[];
  resolve(v: DecodedImage): void;
  reject(e: Error): void;
  timer?: ReturnType<typeof setTimeout>;
}

/** Starts the pool (workers start on first use). */
export function createDecoder(options: DecoderOptions = {}): Decoder {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const log = options.log ?? console.error;
  const slots: Slot[] = Array.from({ length: Math.max(1, options.workers ?? 2) }, () => ({}));
  const waiting: Running[] = [];
  let nextId = 1;
  let restarts = 0;
  let closed = false;

  function stop(slot: Slot, reason: string) {
    restarts++;
    log(`${reason}: starting a new decode worker`);
    slot.worker?.terminate();
    slot.worker = undefined;
  }

  function settle(slot: Slot, how: (c: Running) => void) {
    const c = slot.call;
    if (!c) return;
    slot.call = undefined;
    clearTimeout(c.timer);
    how(c);
    pump();
  }

  function spawn(slot: Slot): Worker {
    const w = new (WebWorker ?? Worker)(new URL("./decode_worker.ts", import.meta.url), {
      type: "module",
    });
    w.onmessage = (
      e: MessageEvent<{ id: number; result?: DecodedImage; error?: SerializedError }>,
    ) => {
      if (slot.call?.msg.id !== e.data.id) return;
      const { result, error } = e.data;
      settle(slot, (c) => (error ? c.reject(deserializeError(error)) : c.resolve(result!)));
    };
    w.onerror = (e) => {
      e.preventDefault();
      const c = slot.call;
      stop(slot, `a decode worker crashed (${e.message})`);
      if (c) {
        settle(slot, (x) =>
          x.reject(
            new CellposeError(
              "BAD_FILE",
              `${c.msg.name}: the image could not be read (the decoder crashed: ${e.message})`,
              { field: c.msg.field },
            ),
          ));
      }
    };
    return w;
  }

  function pump() {
    for (const slot of slots) {
      if (closed || slot.call || waiting.length === 0) continue;
      const c = waiting.shift()!;
      slot.call = c;
      slot.worker ??= spawn(slot);
      c.timer = setTimeout(() => {
        stop(slot, `decoding ${c.msg.name} took over ${timeoutMs} ms`);
        settle(slot, (x) =>
          x.reject(
            new CellposeError(
              "TOO_LARGE",
              `${x.msg.name}: decoding took over ${timeoutMs / 1000} s and was stopped ` +
                "(option decodeTimeoutMs)",
              { field: x.msg.field },
            ),
          ));
      }, timeoutMs);
      slot.worker.postMessage(c.msg, c.transfer);
    }
  }

  // the first worker starts now: loading the decoders takes seconds on a busy machine, and the
  // first upload should not wait for it
  if (options.warm ?? true) slots[0].worker = spawn(slots[0]);

  return {
    decode(bytes, name, maxPixels, field = "image", own = false) {
      if (closed) {
        return Promise.reject(new CellposeError("CANCELLED", "the server is shutting down"));
      }
      return new Promise((resolve, reject) => {
        waiting.push({
          msg: { id: nextId++, bytes, name, maxPixels, field },
          transfer: own ? [bytes.buffer as ArrayBuffer] : [],
          resolve,
          reject,
        });
        pump();
      });
    },
    restarts: () => restarts,
    pending: () => waiting.length + slots.filter((s) => s.call).length,
    close() {
      closed = true;
      const gone = new CellposeError("CANCELLED", "the server is shutting down");
      for (const c of waiting.splice(0)) c.reject(gone);
      for (const slot of slots) {
        settle(slot, (c) => c.reject(gone));
        slot.worker?.terminate();
        slot.worker = undefined;
      }
    },
  };
}
