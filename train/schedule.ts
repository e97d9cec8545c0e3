/**
 * cellpose v4's learning-rate schedule (`train_seg`): a linear warm-up over 10 epochs from 0,
 * then constant; past 99 epochs the last 50 are replaced by 10 halvings of 5 epochs each, past
 * 300 the last 100 by 10 halvings of 10.
 *
 * @example
 * ```ts
 * import { learningRates } from "./schedule.ts";
 * const lr = learningRates(1e-5, 100);
 * if (lr.length !== 100 || lr[0] !== 0 || lr[10] !== 1e-5 || lr[99] !== 1e-5 / 1024) {
 *   throw new Error("not cellpose's schedule");
 * }
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";

/** One learning rate per epoch, as `train_seg` computes them (`np.linspace` for the warm-up). */
export function learningRates(learningRate: number, nEpochs: number): number[] {
  if (!Number.isInteger(nEpochs) || nEpochs < 1) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `n_epochs must be a positive integer, got ${nEpochs}`,
      nEpochs,
    );
  }
  if (!(learningRate >= 0) || !Number.isFinite(learningRate)) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `learning_rate must be a finite number >= 0, got ${learningRate}`,
      learningRate,
    );
  }
  // np.linspace(0, lr, 10): step = lr / 9, value i = i * step, the last one exactly lr
  const step = learningRate / 9;
  let lr = Array.from({ length: 10 }, (_, i) => (i === 9 ? learningRate : i * step));
  lr.push(...new Array(Math.max(0, nEpochs - 10)).fill(learningRate));
  const halve = (drop: number, each: number) => {
    lr = lr.slice(0, lr.length - drop);
    for (let i = 0; i < 10; i++) {
      const v = lr[lr.length - 1] / 2;
      lr.push(...new Array(each).fill(v));
    }
  };
  if (nEpochs > 300) halve(100, 10);
  else if (nEpochs > 99) halve(50, 5);
  return lr;
}
