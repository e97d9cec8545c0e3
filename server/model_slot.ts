/**
 * The one model the server's jobs share. Jobs borrow it with {@link ModelSlot.use}; loading another
 * model swaps it in for new jobs and disposes the old one when the last job using it returns.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createModelSlot } from "./model_slot.ts";
 * import { createEngine } from "./engine.ts";
 * const engine = createEngine({ device: "cpu" });
 * const slot = createModelSlot((name) => engine.load(name));
 * slot.load("nuclei"); // the model shipped with the package
 * const n = await slot.use((model) => Promise.resolve(model.bsize));
 * assertEquals([n, slot.status().name, slot.status().state], [256, "nuclei", "loaded"]);
 * await slot.close();
 * await engine.close();
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import type { NetRunner } from "../core/types.ts";

/** What the slot holds now. */
export interface ModelStatus {
  /** the model asked for last */
  name?: string;
  state: "none" | "loading" | "loaded" | "failed";
  /** backend of the loaded network */
  device?: NetRunner["device"];
  error?: { code: string; message: string };
}

/** What a slot can hold: a loaded network or a handle to one. */
export type SlotModel = Pick<NetRunner, "device" | "dispose">;

/** See {@link createModelSlot}. */
export interface ModelSlot<M extends SlotModel> {
  /** starts loading `name` (replacing the current model once loaded); resolves when loaded */
  load(name: string): Promise<M>;
  /** runs `fn` with the current model, waiting for a load in progress */
  use<T>(fn: (net: M) => Promise<T>): Promise<T>;
  status(): ModelStatus;
  /** disposes the model once no job uses it */
  close(): Promise<void>;
}

interface Held<M extends SlotModel> {
  net: M;
  users: number;
  retired: boolean;
}

/** A slot that loads models with `loader`. */
export function createModelSlot<M extends SlotModel>(
  loader: (name: string) => Promise<M>,
): ModelSlot<M> {
  let current: Held<M> | undefined;
  let currentName: string | undefined;
  let pending: Promise<Held<M>> | undefined;
  let generation = 0;
  let status: ModelStatus = { state: "none" };

  const release = async (h: Held<M>) => {
    if (h.retired && h.users === 0) await h.net.dispose();
  };

  function load(name: string): Promise<M> {
    const gen = ++generation;
    status = { name, state: "loading" };
    const attempt: Promise<Held<M>> = loader(name).then(
      async (net) => {
        if (gen !== generation) {
          await net.dispose();
          throw new CellposeError("CANCELLED", `loading ${name} was superseded by a later load`);
        }
        const old = current;
        current = { net, users: 0, retired: false };
        currentName = name;
        pending = undefined;
        status = { name, state: "loaded", device: net.device };
        if (old) {
          old.retired = true;
          await release(old);
        }
        return current;
      },
      (e) => {
        if (gen === generation) {
          pending = undefined;
          const error = e instanceof CellposeError
            ? { code: e.code, message: e.message }
            : { code: "INTERNAL", message: String((e as Error)?.message ?? e) };
          // the previous model, if any, stays in service
          status = current
            ? { name: currentName, state: "loaded", device: current.net.device, error }
            : { name, state: "failed", error };
        }
        throw e;
      },
    );
    pending = attempt;
    return attempt.then((h) => h.net);
  }

  async function use<T>(fn: (net: M) => Promise<T>): Promise<T> {
    const held = pending ? await pending.catch(() => current) : current;
    if (!held) {
      throw new CellposeError(
        "MODEL_NOT_FOUND",
        status.state === "failed"
          ? `model ${status.name} failed to load: ${status.error?.message}`
          : "no model is loaded: POST /v1/models/<name>/load first",
        status.name,
      );
    }
    held.users++;
    try {
      return await fn(held.net);
    } finally {
      held.users--;
      await release(held);
    }
  }

  return {
    load,
    use,
    status: () => ({ ...status }),
    async close() {
      generation++;
      await pending?.catch(() => {});
      if (current) {
        current.retired = true;
        await release(current);
      }
      current = undefined;
    },
  };
}
