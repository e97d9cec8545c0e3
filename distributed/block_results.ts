/**
 * One file per finished block in a run's work folder, `block-<id>.cpb`: a JSON header (the plan id
 * and image it was made for, the block id, who made it and how long it took), the block's merge
 * summary ({@link encodeSummary}) and its core tile's local labels as deflated bands of 256 rows,
 * so the merge reads any rows without inflating the whole tile. Files are written under a
 * temporary name and renamed, so a result is either complete or absent: a worker killed while
 * writing leaves nothing that counts, and two workers that computed the same block leave one.
 *
 * Layout (little endian): "CPB1", u32 header length, header JSON, u32 summary length, summary,
 * u32 band count, (u32 offset, u32 length) per band from the start of the file, the bands.
 *
 * @example
 * ```ts
 * import { readBlockHeader, writeBlockResult } from "./block_results.ts";
 * import { blockOutput } from "../pipeline/merge_labels.ts";
 * import { planBlocks } from "../pipeline/blocks.ts";
 * const plan = planBlocks(4, 4, { blockSize: 4, halo: 0 });
 * const out = blockOutput({ data: new Uint8Array(16).fill(1), shape: [4, 4] }, plan.blocks[0], plan);
 * await writeBlockResult("/tmp/work", { planId: "abc", image: "/data/a.tif", block: 0 }, out);
 * console.log((await readBlockHeader("/tmp/work", 0))?.planId); // "abc"
 * ```
 * @module
 */
import { deflateSync, inflateSync } from "fflate";
import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import { writeAll } from "../core/fs.ts";
import type { Block } from "../pipeline/blocks.ts";
import {
  type BlockOutput,
  type BlockSummary,
  decodeSummary,
  encodeSummary,
} from "../pipeline/merge_labels.ts";
import type { CoreReader } from "../pipeline/assemble.ts";

const MAGIC = 0x31425043; // "CPB1"
const BAND_ROWS = 256;

/** What a result file says about itself. */
export interface BlockHeader {
  planId: string;
  /** the image path of that plan, for messages */
  image: string;
  block: number;
  /** who computed it, e.g. "host-1234" */
  worker?: string;
  /** milliseconds the block took */
  ms?: number;
  nLabels?: number;
}

/** The result file of block `id` in `workDir`. */
export function blockResultPath(workDir: string, id: number): string {
  return join(workDir, `block-${String(id).padStart(6, "0")}.cpb`);
}

/** Writes block `header.block`'s result (see the module doc) atomically into `workDir`. */
export async function writeBlockResult(
  workDir: string,
  header: BlockHeader,
  out: BlockOutput,
): Promise<string> {
  await Deno.mkdir(workDir, { recursive: true });
  const [ch, cw] = out.core.shape;
  const bands: Uint8Array[] = [];
  for (let r = 0; r < ch; r += BAND_ROWS) {
    const part = out.core.data.subarray(r * cw, Math.min(ch, r + BAND_ROWS) * cw);
    bands.push(
      deflateSync(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), { level: 1 }),
    );
  }
  const head = new TextEncoder().encode(
    JSON.stringify({ ...header, nLabels: out.summary.nLabels }),
  );
  const summary = encodeSummary(out.summary);
  const indexAt = 8 + head.length + 4 + summary.length;
  const pre = new Uint8Array(indexAt + 4 + 8 * bands.length);
  const v = new DataView(pre.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, head.length, true);
  pre.set(head, 8);
  v.setUint32(8 + head.length, summary.length, true);
  pre.set(summary, 12 + head.length);
  v.setUint32(indexAt, bands.length, true);
  let at = pre.length;
  bands.forEach((b, i) => {
    v.setUint32(indexAt + 4 + 8 * i, at, true);
    v.setUint32(indexAt + 8 + 8 * i, b.length, true);
    at += b.length;
  });
  const path = blockResultPath(workDir, header.block);
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    using f = await Deno.open(tmp, { write: true, create: true, truncate: true });
    await writeAll(f, pre);
    for (const b of bands) await writeAll(f, b);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await Deno.rename(tmp, path);
  return path;
}

async function readExactly(f: Deno.FsFile, offset: number, n: number, path: string) {
  const out = new Uint8Array(n);
  await f.seek(offset, Deno.SeekMode.Start);
  for (let at = 0; at < n;) {
    const got = await f.read(out.subarray(at));
    if (got === null) throw new CellposeError("BAD_FILE", `${path}: truncated block result`, path);
    at += got;
  }
  return out;
}

/** The parsed front of a result file: header, summary bytes and band index. */
async function readFront(path: string): Promise<
  { header: BlockHeader; summary: Uint8Array; bands: { at: number; length: number }[] } | undefined
> {
  let f;
  try {
    f = await Deno.open(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    const first = await readExactly(f, 0, 8, path);
    const v = new DataView(first.buffer);
    if (v.getUint32(0, true) !== MAGIC) {
      throw new CellposeError("BAD_FILE", `${path}: not a cellpose block result`, path);
    }
    const headLength = v.getUint32(4, true);
    const head = await readExactly(f, 8, headLength + 4, path);
    const header = JSON.parse(new TextDecoder().decode(head.subarray(0, headLength)));
    const summaryLength = new DataView(head.buffer).getUint32(headLength, true);
    const summary = await readExactly(f, 12 + headLength, summaryLength + 4, path);
    const nBands = new DataView(summary.buffer).getUint32(summaryLength, true);
    const index = new DataView(
      (await readExactly(f, 16 + headLength + summaryLength, 8 * nBands, path)).buffer,
    );
    const bands = Array.from({ length: nBands }, (_, i) => ({
      at: index.getUint32(8 * i, true),
      length: index.getUint32(8 * i + 4, true),
    }));
    return { header, summary: summary.subarray(0, summaryLength), bands };
  } finally {
    f.close();
  }
}

/** The header of block `id`'s result in `workDir`, or undefined when there is none. */
export async function readBlockHeader(
  workDir: string,
  id: number,
): Promise<BlockHeader | undefined> {
  return (await readFront(blockResultPath(workDir, id)))?.header;
}

/** The merge summary of block `id`'s result. Throws BAD_FILE when the result is missing. */
export async function readBlockSummary(workDir: string, id: number): Promise<BlockSummary> {
  const path = blockResultPath(workDir, id);
  const front = await readFront(path);
  if (!front) throw new CellposeError("BAD_FILE", `${path}: no result for block ${id}`, path);
  return decodeSummary(front.summary);
}

/**
 * A {@link CoreReader} over the results in `workDir`: rows of a block's core, inflated band by
 * band. The merge reads rows in order, one row of blocks at a time, so the last band of each block
 * in the current row of blocks is kept (a few MB) and dropped when the next row begins.
 */
export function resultCoreReader(workDir: string): CoreReader {
  const index = new Map<number, { at: number; length: number }[]>();
  const last = new Map<number, { band: number; rows: Uint32Array }>();
  let blockRow = -1;
  return async (block: Block, row0: number, rows: number) => {
    if (block.row !== blockRow) {
      last.clear();
      index.clear();
      blockRow = block.row;
    }
    const path = blockResultPath(workDir, block.id);
    let bands = index.get(block.id);
    if (!bands) {
      const front = await readFront(path);
      if (!front) {
        throw new CellposeError("BAD_FILE", `${path}: no result for block ${block.id}`, path);
      }
      bands = front.bands;
      index.set(block.id, bands);
    }
    const cw = block.core.x1 - block.core.x0;
    const out = new Uint32Array(rows * cw);
    using f = await Deno.open(path);
    for (let r = row0; r < row0 + rows;) {
      const band = Math.floor(r / BAND_ROWS);
      let cached = last.get(block.id);
      if (cached?.band !== band) {
        const b = bands[band];
        if (!b) throw new CellposeError("BAD_FILE", `${path}: no rows from ${r} on`, path);
        const bytes = inflateSync(await readExactly(f, b.at, b.length, path));
        cached = {
          band,
          rows: new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4),
        };
        last.set(block.id, cached);
      }
      const from = r - band * BAND_ROWS;
      const n = Math.min(row0 + rows - r, BAND_ROWS - from, cached.rows.length / cw - from);
      if (n <= 0) throw new CellposeError("BAD_FILE", `${path}: no rows from ${r} on`, path);
      out.set(cached.rows.subarray(from * cw, (from + n) * cw), (r - row0) * cw);
      r += n;
    }
    return out;
  };
}
