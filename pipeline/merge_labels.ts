/**
 * Merging the label images of overlapping blocks (see blocks.ts) into one label image without
 * cut or duplicated masks, from small per-block summaries only.
 *
 * Each block is segmented on its whole region (core plus halo) and reduced to a
 * {@link BlockSummary}: per local mask its area, centroid and whether it touches a cut edge (a
 * region edge inside the image), plus the labels of the block's frame (its region minus the core
 * shrunk by the halo, deflated). Every overlap between two blocks' regions lies in both frames,
 * so the summaries are all the merge needs; the core tiles themselves are only relabelled.
 *
 * Rules ({@link mergeBlocks}):
 * 1. A mask is owned by a block when its centroid lies in the block's core. When blocks agree
 *    (same flows give the same masks), each cell is owned by exactly one block, whole, as long as
 *    the cell is smaller than the halo.
 * 2. A mask owned by no block (its copies disagree about the centroid) is adopted by its block
 *    when it is not cut and no owned mask of a neighbour matches it (IoU >= `iou`).
 * 3. Kept masks of two blocks that match (IoU >= `iou` over their full areas, overlap counted in
 *    the blocks' common region) are one mask: they share a global label (union-find).
 * 4. Pixels: a core pixel shows its own block's kept mask; where its own mask is not kept, a
 *    neighbour's kept mask reaching into the core (through the neighbour's halo) is painted.
 *
 * @example
 * ```ts
 * import { planBlocks } from "./blocks.ts";
 * import { mergeBlocks, summarizeBlock } from "./merge_labels.ts";
 * const plan = planBlocks(4, 8, { blockSize: 4, halo: 2 });
 * // one 2 x 4 mask across the border of the two cores (x 2..5), seen whole by both blocks
 * const image = new Uint32Array(32);
 * for (let y = 1; y < 3; y++) for (let x = 2; x < 6; x++) image[y * 8 + x] = 1;
 * const summaries = plan.blocks.map((b) => {
 *   const w = b.x1 - b.x0, h = b.y1 - b.y0, tile = new Uint32Array(w * h);
 *   for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) tile[y * w + x] = image[y * 8 + b.x0 + x];
 *   return summarizeBlock({ data: tile, shape: [h, w] }, b, plan);
 * });
 * const m = mergeBlocks(plan, summaries);
 * // its centroid (x 3.5) is in block 0's core: block 0 keeps it, block 1 drops its copy
 * console.log(m.nMasks, m.tables); // 1 [Uint32Array [0, 1], Uint32Array [0, 0]]
 * ```
 * @module
 */
import { deflateSync, inflateSync } from "fflate";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { type Block, type BlockPlan, intersect, neighbours, type Rect } from "./blocks.ts";

/** What the merge needs to know about one segmented block. */
export interface BlockSummary {
  /** the block's id in its plan */
  id: number;
  /** largest local label */
  nLabels: number;
  /** pixels per local label (index 0: background) */
  area: Float64Array;
  /** centroid row and column of each local label, image coordinates */
  cy: Float64Array;
  cx: Float64Array;
  /** 1 when the label touches an edge of the block's region that is not an image edge */
  cut: Uint8Array;
  /** local labels of the frame (see the module doc), uint32 little endian, deflated */
  frame: Uint8Array;
}

/** What {@link mergeBlocks} decides. */
export interface MergeResult {
  /** per block: local label -> global label (0: not kept) */
  tables: Uint32Array[];
  /** per block: core pixels (row-major index in the core) painted with a neighbour's label */
  paints: { at: Uint32Array; label: Uint32Array }[];
  /** number of global labels, 1..nMasks */
  nMasks: number;
}

/** Options of {@link mergeBlocks}. */
export interface MergeOptions {
  /** [0.5] IoU at which masks of two blocks are the same cell */
  iou?: number;
}

/** The core shrunk by the halo: the part of a block no other block's region reaches. */
function inner(b: Block, halo: number): Rect {
  return {
    y0: b.core.y0 + halo,
    x0: b.core.x0 + halo,
    y1: Math.max(b.core.y0 + halo, b.core.y1 - halo),
    x1: Math.max(b.core.x0 + halo, b.core.x1 - halo),
  };
}

/** Random access to a block's frame labels (region minus inner rectangle). */
class Frame {
  readonly labels: Uint32Array;
  readonly #r: Rect;
  readonly #i: Rect;
  readonly #rowStart: Float64Array;

  constructor(labels: Uint32Array, block: Block, halo: number) {
    this.labels = labels;
    this.#r = block;
    this.#i = inner(block, halo);
    const h = block.y1 - block.y0, w = block.x1 - block.x0;
    this.#rowStart = new Float64Array(h + 1);
    for (let y = 0; y < h; y++) {
      this.#rowStart[y + 1] = this.#rowStart[y] + w - this.#cut(y + block.y0);
    }
  }

  /** Pixels of image row y left out (inside the inner rectangle). */
  #cut(y: number): number {
    const i = this.#i;
    return y >= i.y0 && y < i.y1 && i.x1 > i.x0 ? i.x1 - i.x0 : 0;
  }

  /** Index into `labels` of image pixel (y, x), which must lie in the frame. */
  index(y: number, x: number): number {
    const r = this.#r, i = this.#i;
    const base = this.#rowStart[y - r.y0];
    if (this.#cut(y) === 0 || x < i.x0) return base + x - r.x0;
    return base + (i.x0 - r.x0) + (x - i.x1);
  }

  /** Frame size in pixels. */
  get size(): number {
    return this.#rowStart[this.#rowStart.length - 1];
  }
}

/**
 * Summarises a block's labels (its whole region, local numbering 0..n) for {@link mergeBlocks}.
 * Throws BAD_SHAPE when the labels do not have the block's region shape.
 *
 * @example
 * ```ts
 * import { planBlocks } from "./blocks.ts";
 * import { summarizeBlock } from "./merge_labels.ts";
 * const plan = planBlocks(2, 2, { blockSize: 16, halo: 0 });
 * const s = summarizeBlock({ data: new Uint16Array([0, 1, 1, 1]), shape: [2, 2] }, plan.blocks[0], plan);
 * console.log(s.nLabels, s.area[1], s.cy[1], s.cx[1]); // 1 3 0.666... 0.666...
 * ```
 */
export function summarizeBlock(
  labels: NdArray<Uint8Array | Uint16Array | Uint32Array>,
  block: Block,
  plan: BlockPlan,
): BlockSummary {
  const h = block.y1 - block.y0, w = block.x1 - block.x0;
  if (labels.shape.length !== 2 || labels.shape[0] !== h || labels.shape[1] !== w) {
    throw new CellposeError(
      "BAD_SHAPE",
      `block ${block.id} labels must be [${h}, ${w}] (its region), got [${labels.shape}]`,
      labels.shape,
    );
  }
  const d = labels.data;
  let n = 0;
  for (let i = 0; i < d.length; i++) if (d[i] > n) n = d[i];
  const area = new Float64Array(n + 1), cy = new Float64Array(n + 1), cx = new Float64Array(n + 1);
  const cut = new Uint8Array(n + 1);
  const top = block.y0 > 0, bottom = block.y1 < plan.height;
  const left = block.x0 > 0, right = block.x1 < plan.width;
  for (let y = 0; y < h; y++) {
    const edgeRow = (y === 0 && top) || (y === h - 1 && bottom);
    for (let x = 0; x < w; x++) {
      const l = d[y * w + x];
      if (l === 0) continue;
      area[l]++;
      cy[l] += y + block.y0;
      cx[l] += x + block.x0;
      if (edgeRow || (x === 0 && left) || (x === w - 1 && right)) cut[l] = 1;
    }
  }
  for (let l = 1; l <= n; l++) {
    if (area[l] > 0) {
      cy[l] /= area[l];
      cx[l] /= area[l];
    }
  }
  const view = new Frame(new Uint32Array(0), block, plan.halo);
  const frame = new Uint32Array(view.size);
  const i = inner(block, plan.halo);
  let k = 0;
  for (let y = block.y0; y < block.y1; y++) {
    const row = (y - block.y0) * w;
    for (let x = block.x0; x < block.x1; x++) {
      if (y >= i.y0 && y < i.y1 && x >= i.x0 && x < i.x1) continue;
      frame[k++] = d[row + x - block.x0];
    }
  }
  return {
    id: block.id,
    nLabels: n,
    area,
    cy,
    cx,
    cut,
    frame: deflateSync(new Uint8Array(frame.buffer), { level: 1 }),
  };
}

/** Union-find over integer keys. */
class UnionFind {
  readonly parent: Uint32Array;
  constructor(n: number) {
    this.parent = Uint32Array.from({ length: n }, (_, i) => i);
  }
  find(a: number): number {
    while (this.parent[a] !== a) a = this.parent[a] = this.parent[this.parent[a]];
    return a;
  }
  union(a: number, b: number): void {
    const ra = this.find(a), rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
}

/** One overlap between a mask of block `a` and a mask of block `b`. */
interface Pair {
  a: number;
  la: number;
  b: number;
  lb: number;
  n: number;
}

/**
 * Decides the global labels from the blocks' summaries (rules in the module doc). `summaries`
 * holds one summary per block of `plan`, in any order. Throws BAD_PARAMETER when a block's
 * summary is missing or the IoU is outside (0, 1].
 *
 * @example
 * ```ts
 * import { planBlocks } from "./blocks.ts";
 * import { mergeBlocks, summarizeBlock } from "./merge_labels.ts";
 * const plan = planBlocks(8, 8, { blockSize: 8 });
 * const s = summarizeBlock({ data: new Uint32Array(64).fill(3, 0, 10), shape: [8, 8] }, plan.blocks[0], plan);
 * console.log(mergeBlocks(plan, [s]).tables[0]); // Uint32Array [0, 0, 0, 1]
 * ```
 */
export function mergeBlocks(
  plan: BlockPlan,
  summaries: BlockSummary[],
  options: MergeOptions = {},
): MergeResult {
  const thr = options.iou ?? 0.5;
  if (!(thr > 0 && thr <= 1)) {
    throw new CellposeError("BAD_PARAMETER", `iou must be in (0, 1], got ${thr}`, thr);
  }
  const byId: BlockSummary[] = [];
  for (const s of summaries) byId[s.id] = s;
  plan.blocks.forEach((b) => {
    if (!byId[b.id]) {
      throw new CellposeError("BAD_PARAMETER", `no summary for block ${b.id}`, b.id);
    }
  });
  const offset = new Float64Array(plan.blocks.length + 1);
  plan.blocks.forEach((b) => (offset[b.id + 1] = offset[b.id] + byId[b.id].nLabels + 1));
  const key = (block: number, label: number) => offset[block] + label;

  const frames = new FrameCache(plan, byId);
  const iouOf = (p: Pair) => {
    const aa = byId[p.a].area[p.la], ab = byId[p.b].area[p.lb];
    return p.n / (aa + ab - p.n);
  };

  // 1. owned masks; 2. overlaps between neighbouring blocks
  const owned = new Uint8Array(offset[plan.blocks.length]);
  for (const b of plan.blocks) {
    const s = byId[b.id];
    for (let l = 1; l <= s.nLabels; l++) {
      const y = Math.floor(s.cy[l]), x = Math.floor(s.cx[l]);
      if (s.area[l] > 0 && y >= b.core.y0 && y < b.core.y1 && x >= b.core.x0 && x < b.core.x1) {
        owned[key(b.id, l)] = 1;
      }
    }
  }
  const pairs: Pair[] = [];
  for (const a of plan.blocks) {
    frames.keepFrom(a.row - 1);
    for (const b of neighbours(plan, a.id)) {
      if (b.id < a.id) continue;
      const r = intersect(a, b)!;
      const fa = frames.get(a), fb = frames.get(b);
      const counts = new Map<number, number>();
      const nb = byId[b.id].nLabels + 1;
      for (let y = r.y0; y < r.y1; y++) {
        let ia = fa.index(y, r.x0), ib = fb.index(y, r.x0);
        for (let x = r.x0; x < r.x1; x++, ia++, ib++) {
          const la = fa.labels[ia], lb = fb.labels[ib];
          if (la && lb) counts.set(la * nb + lb, (counts.get(la * nb + lb) ?? 0) + 1);
        }
      }
      for (const [k, n] of counts) {
        pairs.push({ a: a.id, la: Math.floor(k / nb), b: b.id, lb: k % nb, n });
      }
    }
  }

  // kept: owned, or adopted (not owned anywhere, not cut, no owned match)
  const kept = owned.slice();
  const matched = new Uint8Array(owned.length);
  for (const p of pairs) {
    if (iouOf(p) < thr) continue;
    if (owned[key(p.b, p.lb)]) matched[key(p.a, p.la)] = 1;
    if (owned[key(p.a, p.la)]) matched[key(p.b, p.lb)] = 1;
  }
  for (const b of plan.blocks) {
    const s = byId[b.id];
    for (let l = 1; l <= s.nLabels; l++) {
      const k = key(b.id, l);
      if (!owned[k] && !matched[k] && !s.cut[l] && s.area[l] > 0) kept[k] = 1;
    }
  }

  // 3. matching kept masks are one mask
  const uf = new UnionFind(owned.length);
  for (const p of pairs) {
    const ka = key(p.a, p.la), kb = key(p.b, p.lb);
    if (kept[ka] && kept[kb] && iouOf(p) >= thr) uf.union(ka, kb);
  }
  const global = new Uint32Array(owned.length);
  let nMasks = 0;
  const tables = plan.blocks.map((b) => {
    const t = new Uint32Array(byId[b.id].nLabels + 1);
    for (let l = 1; l < t.length; l++) {
      const k = key(b.id, l);
      if (!kept[k]) continue;
      const root = uf.find(k);
      global[root] ||= ++nMasks;
      t[l] = global[root];
    }
    return t;
  });

  // 4. neighbours' kept masks painted where a core pixel's own mask is not kept
  const paints = plan.blocks.map((b) => {
    frames.keepFrom(b.row - 1);
    const fb = frames.get(b), tb = tables[b.id];
    const cw = b.core.x1 - b.core.x0;
    const painted = new Map<number, number>();
    for (const a of neighbours(plan, b.id)) {
      const r = intersect(a, b.core);
      if (!r) continue;
      const fa = frames.get(a), ta = tables[a.id];
      for (let y = r.y0; y < r.y1; y++) {
        let ia = fa.index(y, r.x0), ib = fb.index(y, r.x0);
        for (let x = r.x0; x < r.x1; x++, ia++, ib++) {
          const g = ta[fa.labels[ia]];
          if (g === 0 || tb[fb.labels[ib]] !== 0) continue;
          const at = (y - b.core.y0) * cw + (x - b.core.x0);
          if (!painted.has(at)) painted.set(at, g);
        }
      }
    }
    const at = Uint32Array.from(painted.keys()).sort();
    return { at, label: Uint32Array.from(at, (i) => painted.get(i)!) };
  });
  return { tables, paints, nMasks };
}

/** Decoded frames of the blocks in use, dropping rows the sweep has passed. */
class FrameCache {
  #plan: BlockPlan;
  #summaries: BlockSummary[];
  #frames = new Map<number, Frame>();

  constructor(plan: BlockPlan, summaries: BlockSummary[]) {
    this.#plan = plan;
    this.#summaries = summaries;
  }

  /** Forgets the frames of blocks above block row `row`. */
  keepFrom(row: number): void {
    for (const id of this.#frames.keys()) {
      if (this.#plan.blocks[id].row < row) this.#frames.delete(id);
    }
  }

  get(b: Block): Frame {
    let f = this.#frames.get(b.id);
    if (!f) {
      const bytes = inflateSync(this.#summaries[b.id].frame);
      const labels = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      f = new Frame(labels, b, this.#plan.halo);
      if (labels.length !== f.size) {
        throw new CellposeError(
          "BAD_VALUE",
          `block ${b.id} summary has ${labels.length} frame labels, its frame has ${f.size}`,
          labels.length,
        );
      }
      this.#frames.set(b.id, f);
    }
    return f;
  }
}

/**
 * Final labels of some rows of a block's core: `tile` holds local labels of core rows
 * `row0 .. row0 + rows` (row-major, core width); they are mapped through the block's table and
 * the neighbours' paints applied, into `out` (same layout).
 *
 * @example
 * ```ts
 * import { applyMerge } from "./merge_labels.ts";
 * const out = new Uint32Array(4);
 * applyMerge(new Uint32Array([0, 1, 2, 0]), 0, 2, new Uint32Array([0, 7, 0]), {
 *   at: new Uint32Array([2]),
 *   label: new Uint32Array([9]),
 * }, out);
 * console.log(out); // Uint32Array [0, 7, 9, 0]
 * ```
 */
export function applyMerge(
  tile: Uint32Array | Uint16Array,
  row0: number,
  coreWidth: number,
  table: Uint32Array,
  paint: { at: Uint32Array; label: Uint32Array },
  out: Uint32Array | Uint16Array,
): void {
  for (let i = 0; i < tile.length; i++) out[i] = table[tile[i]];
  const start = row0 * coreWidth, end = start + tile.length;
  let k = lowerBound(paint.at, start);
  for (; k < paint.at.length && paint.at[k] < end; k++) out[paint.at[k] - start] = paint.label[k];
}

/** First index of sorted `a` whose value is >= v. */
function lowerBound(a: Uint32Array, v: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** What one block job hands on: its core tile (local labels) and its summary. */
export interface BlockOutput {
  /** local labels of the block's core, [core height, core width] */
  core: NdArray<Uint32Array>;
  summary: BlockSummary;
}

/**
 * Cuts a block's labels (its whole region) into the {@link BlockOutput} the merge works from.
 *
 * @example
 * ```ts
 * import { planBlocks } from "./blocks.ts";
 * import { blockOutput } from "./merge_labels.ts";
 * const plan = planBlocks(4, 8, { blockSize: 4, halo: 2 });
 * const b = plan.blocks[1]; // region x 2..8, core x 4..8
 * const out = blockOutput({ data: new Uint16Array(4 * 6).fill(1), shape: [4, 6] }, b, plan);
 * console.log(out.core.shape, out.summary.area[1]); // [4, 4] 24
 * ```
 */
export function blockOutput(
  labels: NdArray<Uint8Array | Uint16Array | Uint32Array>,
  block: Block,
  plan: BlockPlan,
): BlockOutput {
  const summary = summarizeBlock(labels, block, plan);
  const { core } = block;
  const w = block.x1 - block.x0, cw = core.x1 - core.x0, ch = core.y1 - core.y0;
  const data = new Uint32Array(ch * cw);
  for (let y = 0; y < ch; y++) {
    const from = (y + core.y0 - block.y0) * w + core.x0 - block.x0;
    data.set(labels.data.subarray(from, from + cw), y * cw);
  }
  return { core: { data, shape: [ch, cw] }, summary };
}

const SUMMARY_MAGIC = 0x43505331; // "CPS1"

/**
 * Serialises a {@link BlockSummary} to bytes (little endian: magic, id, nLabels, area, cy, cx as
 * float64, cut as bytes, the deflated frame), for sending from a worker to the reducer.
 *
 * @example
 * ```ts
 * import { planBlocks } from "./blocks.ts";
 * import { decodeSummary, encodeSummary, summarizeBlock } from "./merge_labels.ts";
 * const plan = planBlocks(2, 2, { blockSize: 16 });
 * const s = summarizeBlock({ data: new Uint8Array([0, 1, 1, 1]), shape: [2, 2] }, plan.blocks[0], plan);
 * console.log(decodeSummary(encodeSummary(s)).area); // Float64Array [1, 3]
 * ```
 */
export function encodeSummary(s: BlockSummary): Uint8Array {
  const n = s.nLabels + 1;
  const out = new Uint8Array(16 + 24 * n + n + s.frame.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, SUMMARY_MAGIC, true);
  v.setUint32(4, s.id, true);
  v.setUint32(8, s.nLabels, true);
  v.setUint32(12, s.frame.length, true);
  let at = 16;
  for (const a of [s.area, s.cy, s.cx]) {
    for (let i = 0; i < n; i++, at += 8) v.setFloat64(at, a[i], true);
  }
  out.set(s.cut, at);
  out.set(s.frame, at + n);
  return out;
}

/** Reads {@link encodeSummary}'s bytes back. Throws BAD_VALUE for bytes that are not a summary. */
export function decodeSummary(bytes: Uint8Array): BlockSummary {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ok = bytes.length >= 16 && v.getUint32(0, true) === SUMMARY_MAGIC;
  const n = ok ? v.getUint32(8, true) + 1 : 0;
  const frameLength = ok ? v.getUint32(12, true) : 0;
  if (!ok || bytes.length !== 16 + 25 * n + frameLength) {
    throw new CellposeError(
      "BAD_VALUE",
      `not an encoded block summary (${bytes.length} bytes${ok ? ", sizes do not add up" : ""})`,
      bytes.length,
    );
  }
  let at = 16;
  const [area, cy, cx] = [0, 1, 2].map(() => {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++, at += 8) a[i] = v.getFloat64(at, true);
    return a;
  });
  return {
    id: v.getUint32(4, true),
    nLabels: n - 1,
    area,
    cy,
    cx,
    cut: bytes.slice(at, at + n),
    frame: bytes.slice(at + n),
  };
}
