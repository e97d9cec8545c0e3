/**
 * Block decomposition of a large 2-D image: the image is cut into a grid of `blockSize` cores
 * (the last row and column take what is left), and every block is its core grown by `halo`
 * pixels on each side, clipped to the image. Cores tile the image exactly; blocks overlap their
 * neighbours by `2 * halo` across each shared core edge. A block is a self-contained unit of work
 * (see `segmentBlock`): the plan is pure data and can be sent to workers as JSON.
 *
 * @example
 * ```ts
 * import { planBlocks } from "./blocks.ts";
 * const plan = planBlocks(1500, 1300, { blockSize: 512, halo: 64 });
 * console.log(plan.rows, plan.cols, plan.blocks[4]);
 * // 3 3 { id: 4, row: 1, col: 1, y0: 448, x0: 448, y1: 1088, x1: 1088,
 * //       core: { y0: 512, x0: 512, y1: 1024, x1: 1024 } }
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { checkInt } from "../core/check.ts";

/** A half-open pixel rectangle `[y0, y1) x [x0, x1)` in image coordinates. */
export interface Rect {
  /** first row */
  y0: number;
  /** first column */
  x0: number;
  /** row after the last */
  y1: number;
  /** column after the last */
  x1: number;
}

/** One block: the region read and segmented (`y0..y1, x0..x1`, core plus halo) and its core. */
export interface Block extends Rect {
  /** index in {@link BlockPlan.blocks} (row-major) */
  id: number;
  /** its row in the plan */
  row: number;
  /** its column in the plan */
  col: number;
  /** the part of the image this block is responsible for */
  core: Rect;
}

/** The blocks of an image. */
export interface BlockPlan {
  /** image height in pixels */
  height: number;
  /** image width in pixels */
  width: number;
  /** side of a block's core in pixels */
  blockSize: number;
  /** pixels of context read around each core */
  halo: number;
  /** block rows */
  rows: number;
  /** block columns */
  cols: number;
  /** row-major: block `id` is at row `floor(id / cols)`, column `id % cols` */
  blocks: Block[];
}

/** Options of {@link planBlocks}. */
export interface BlockOptions {
  /** [2048] side of a block's core in pixels */
  blockSize?: number;
  /** [128, or `blockSize / 2` when smaller] margin added around each core; at most `blockSize / 2` */
  halo?: number;
}

/**
 * Lists the blocks of a `height` x `width` image (see the module doc). Throws BAD_PARAMETER for
 * a non-integer or non-positive size, a block size below 2 or a halo outside `[0, blockSize/2]`
 * (a larger halo would make blocks two cores apart overlap).
 *
 * @example
 * ```ts
 * import { planBlocks } from "./blocks.ts";
 * const { blocks } = planBlocks(100, 300, { blockSize: 128, halo: 16 });
 * console.log(blocks.map((b) => [b.core.x0, b.core.x1, b.x0, b.x1]));
 * // [[0, 128, 0, 144], [128, 256, 112, 272], [256, 300, 240, 300]]
 * ```
 */
export function planBlocks(height: number, width: number, options: BlockOptions = {}): BlockPlan {
  checkInt("height", height, 1);
  checkInt("width", width, 1);
  const blockSize = checkInt("blockSize", options.blockSize ?? 2048, 2);
  const halo = checkInt("halo", options.halo ?? Math.min(128, blockSize >> 1), 0);
  if (2 * halo > blockSize) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `halo must be at most blockSize / 2 = ${blockSize / 2}, got ${halo}`,
      halo,
    );
  }
  const rows = Math.ceil(height / blockSize), cols = Math.ceil(width / blockSize);
  const blocks: Block[] = [];
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      const core = {
        y0: row * blockSize,
        x0: col * blockSize,
        y1: Math.min(height, (row + 1) * blockSize),
        x1: Math.min(width, (col + 1) * blockSize),
      };
      blocks.push({
        id: blocks.length,
        row,
        col,
        y0: Math.max(0, core.y0 - halo),
        x0: Math.max(0, core.x0 - halo),
        y1: Math.min(height, core.y1 + halo),
        x1: Math.min(width, core.x1 + halo),
        core,
      });
    }
  }
  return { height, width, blockSize, halo, rows, cols, blocks };
}

/** The intersection of two rectangles, or undefined when they do not overlap. */
export function intersect(a: Rect, b: Rect): Rect | undefined {
  const r = {
    y0: Math.max(a.y0, b.y0),
    x0: Math.max(a.x0, b.x0),
    y1: Math.min(a.y1, b.y1),
    x1: Math.min(a.x1, b.x1),
  };
  return r.y0 < r.y1 && r.x0 < r.x1 ? r : undefined;
}

/**
 * The blocks whose regions overlap block `id`'s region (at most its 8 grid neighbours), in id
 * order.
 *
 * @example
 * ```ts
 * import { neighbours, planBlocks } from "./blocks.ts";
 * const plan = planBlocks(1000, 1000, { blockSize: 400, halo: 20 });
 * console.log(neighbours(plan, 0).map((b) => b.id)); // [1, 3, 4]
 * ```
 */
export function neighbours(plan: BlockPlan, id: number): Block[] {
  const b = plan.blocks[id];
  const out: Block[] = [];
  for (let r = Math.max(0, b.row - 1); r <= Math.min(plan.rows - 1, b.row + 1); r++) {
    for (let c = Math.max(0, b.col - 1); c <= Math.min(plan.cols - 1, b.col + 1); c++) {
      const n = plan.blocks[r * plan.cols + c];
      if (n.id !== id && intersect(b, n)) out.push(n);
    }
  }
  return out;
}
