/**
 * Turns of the event loop for loops that move bytes (the connection relay of `conn_guard.ts`,
 * the body readers of `upload.ts`). Reads and writes whose data is ready resolve as microtasks,
 * so such a loop never lets anything else run unless it waits for a timer turn now and then.
 *
 * Waiting only for its own turn is not enough: when every loop runs {@link YIELD_MS} before it
 * waits, a turn of the event loop lasts `YIELD_MS` times the number of busy loops (six 300 MB
 * uploads, each relayed and read: 12 loops, ~50 ms a turn; a health check needs a few turns).
 * So the loops that move a large body ({@link BULK_BYTES} or more) share one slice of
 * `YIELD_MS` per turn, taken in order: each turn one of them resumes first, and the rest wait
 * for later turns. A small request (a health check, a 16 KiB image) never waits behind them.
 *
 * @example
 * ```ts
 * import { LoopTurns } from "./loop_share.ts";
 * const turns = new LoopTurns();
 * let moved = 0;
 * for (let i = 0; i < 1000; i++) {
 *   moved += 64 * 1024; // a chunk relayed
 *   const wait = turns.due(moved);
 *   if (wait) await wait;
 * }
 * console.log(moved); // 65536000
 * ```
 * @module
 */

/** How long a loop, or all loops moving large bodies together, run before a timer turn. */
export const YIELD_MS = 4;
/** A body this large or larger is moved in the shared slice. */
export const BULK_BYTES = 1 << 20;

// the slice shared by the large bodies: opened by the first of them to run in a turn, closed by
// a timer (the next turn), which opens the next slice for the loop waiting longest
let sliceStart = -1;
const waiting: (() => void)[] = [];

function openSlice() {
  sliceStart = performance.now();
  setTimeout(closeSlice, 0);
}

function closeSlice() {
  sliceStart = -1;
  const next = waiting.shift();
  if (next) {
    openSlice();
    next();
  }
}

function sharedTurn(): Promise<void> | undefined {
  if (sliceStart < 0) {
    openSlice();
    return undefined;
  }
  if (performance.now() - sliceStart < YIELD_MS) return undefined;
  return new Promise((resolve) => waiting.push(resolve));
}

/** One byte-moving loop's share of the event loop. */
export class LoopTurns {
  #since = performance.now();

  /**
   * To be called after each chunk, with the bytes the loop has moved of its current body:
   * `undefined` to go on, or a promise to await first (the loop's next turn).
   */
  due(bodyBytes: number): Promise<void> | undefined {
    if (bodyBytes >= BULK_BYTES) return sharedTurn();
    if (performance.now() - this.#since < YIELD_MS) return undefined;
    return new Promise<void>((resolve) => setTimeout(resolve, 0)).then(() => {
      this.#since = performance.now();
    });
  }
}
