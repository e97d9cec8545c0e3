/**
 * A network whose output is its input (dY := channel 0, dX := channel 1, cellprob := channel 2).
 * The real network's outputs cannot tell which orientation or block produced which value; this
 * one makes the pipeline's bookkeeping (3-D slices, large-image blocks) checkable value by value.
 * @module
 */
import type { NetRunner } from "../core/types.ts";

/** The identity network. */
export const identity: NetRunner = {
  name: "identity",
  device: "cpu",
  bsize: 256,
  run: (tiles) => Promise.resolve({ data: tiles.data.slice(), shape: [...tiles.shape] }),
  dispose: () => Promise.resolve(),
};
