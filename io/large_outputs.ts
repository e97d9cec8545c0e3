/**
 * The per-cell outputs of a label image too large for memory, made from its merged labels as
 * they stream: the statistics CSV (`_stats_cp_masks.csv`, as {@link maskStats}, with the image's
 * mean intensity) is accumulated from the row bands while the labels are written (the image
 * under each band read one block column at a time, see `ImageSource.blockWidth`); the outlines
 * (`_cp_outlines.txt`) and the ImageJ ROI set (`_rois.zip`) are then traced window by window
 * over the written labels: each cell once, in the window of the 2048 x 2048 tile where its
 * bounding box starts (grown to cover the boxes that start there), so a window never holds more
 * than a tile plus the largest cell. Lines and ROIs come tile by tile (raster order of the tiles),
 * labels ascending within a tile. Each file is written under a hidden temporary name and renamed
 * when complete.
 *
 * @example
 * ```ts ignore
 * import { largeOutputs } from "./large_outputs.ts";
 * import { openTiff } from "./tiff_lazy.ts";
 * import { segmentLarge } from "../pipeline/segment_large.ts";
 * import { allLabels, tiffLabels } from "./label_sink.ts";
 * import { loadModel } from "../models/load.ts";
 * const model = await loadModel("cpsam");
 * const source = await openTiff("/data/slide.tif");
 * const extra = largeOutputs(source, { imagePath: "/data/slide.tif", csv: true, rois: true });
 * await segmentLarge(source, allLabels([tiffLabels("/data/slide_cp_masks.tif"), ...extra.targets]), { model });
 * console.log(await extra.finish("/data/slide_cp_masks.tif")); // [".../slide_stats_cp_masks.csv", ".../slide_rois.zip"]
 * ```
 * @module
 */
import { Zip, ZipDeflate } from "fflate";
import { CellposeError } from "../core/errors.ts";
import type { NumericArray } from "../core/ndarray.ts";
import type { ImageSource, Progress } from "../core/types.ts";
import { openImageSource } from "./image_source.ts";
import type { LabelTarget } from "./label_sink.ts";
import { outputNames } from "./names.ts";
import { masksToOutlines } from "./outlines.ts";
import { encodeRoi } from "./roi.ts";
import { type MaskStat, MaskStatsAccumulator, statsCsv } from "./stats.ts";
import { partialPath } from "./label_sink.ts";

/** Which outputs {@link largeOutputs} makes, and where. */
export interface LargeOutputOptions {
  /** the image's path: outputs are named after it (cellpose's names) */
  imagePath: string;
  /** folder for the outputs (default: beside the image) */
  savedir?: string;
  /** `_stats_cp_masks.csv` */
  csv?: boolean;
  /** `_cp_outlines.txt` */
  txt?: boolean;
  /** `_rois.zip` */
  rois?: boolean;
  /** side of the tiles that own cells for tracing [2048] */
  tile?: number;
}

/** What {@link largeOutputs} returns. */
export interface LargeOutputs {
  /** label targets to write along with the labels (none when no output is asked for) */
  targets: LabelTarget[];
  /** after the labels are written (at `labelsPath`, a TIFF or OME-Zarr labels image): writes the outputs, resolves to their paths */
  finish(
    labelsPath: string,
    options?: { signal?: AbortSignal; onProgress?: (p: Progress) => void },
  ): Promise<string[]>;
  /** removes unfinished files (safe to call after finish) */
  abort(): Promise<void>;
}

const enc = new TextEncoder();

/** A text or binary file written in pieces under a temporary name, renamed on {@link done}. */
class PartialFile {
  readonly path: string;
  readonly partial: string;
  #file: Deno.FsFile;
  constructor(path: string) {
    this.path = path;
    this.partial = partialPath(path);
    this.#file = Deno.openSync(this.partial, { write: true, create: true, truncate: true });
  }
  write(bytes: Uint8Array | string): void {
    const b = typeof bytes === "string" ? enc.encode(bytes) : bytes;
    for (let at = 0; at < b.length;) at += this.#file.writeSync(b.subarray(at));
  }
  async done(): Promise<void> {
    this.#file.close();
    await Deno.rename(this.partial, this.path);
  }
  async abort(): Promise<void> {
    try {
      this.#file.close();
    } catch {
      // closed
    }
    await Deno.remove(this.partial).catch(() => {});
  }
}

/**
 * Rows `[y0, y0 + n)` of the image, whole width, channel-last. A source with blocks narrower than
 * the image is read in pieces one block column wide, so each read decodes the blocks it needs
 * and stays within the source's decode budget however wide the image.
 */
async function readRows(source: ImageSource, y0: number, n: number): Promise<NumericArray> {
  const { width, channels: c, blockWidth: step = width } = source;
  if (step >= width) return (await source.read({ y0, y1: y0 + n, x0: 0, x1: width })).data;
  let out: NumericArray | undefined;
  for (let x0 = 0; x0 < width; x0 += step) {
    const x1 = Math.min(width, x0 + step);
    const part = (await source.read({ y0, y1: y0 + n, x0, x1 })).data;
    out ??= new (part.constructor as { new (n: number): NumericArray })(n * width * c);
    const row = (x1 - x0) * c;
    for (let y = 0; y < n; y++) {
      out.set(part.subarray(y * row, (y + 1) * row), (y * width + x0) * c);
    }
  }
  return out!;
}

/**
 * Sets up the outputs asked for in `options` for the labels of `source` (see the module doc).
 * Pass {@link LargeOutputs.targets} with the label targets, then call {@link LargeOutputs.finish}.
 */
export function largeOutputs(source: ImageSource, options: LargeOutputOptions): LargeOutputs {
  const names = outputNames(options.imagePath, { savedir: options.savedir });
  const wanted = options.csv || options.txt || options.rois;
  const acc = new MaskStatsAccumulator(2, source.channels);
  let rowsSeen = 0, closed = false;
  const files: PartialFile[] = [];
  const statsTarget: LabelTarget = (_type, width) =>
    Promise.resolve({
      paths: [],
      async write(rows) {
        const n = rows.length / width;
        const image = options.csv ? await readRows(source, rowsSeen, n) : undefined;
        acc.add(rows, [n, width], [rowsSeen, 0], image, source.channels, 1);
        rowsSeen += n;
      },
      close() {
        closed = true;
        return Promise.resolve();
      },
      abort: () => Promise.resolve(),
    });
  return {
    targets: wanted ? [statsTarget] : [],
    async finish(labelsPath, run = {}) {
      if (!wanted) return [];
      if (!closed) {
        throw new CellposeError("BAD_PARAMETER", "the labels were not written yet", labelsPath);
      }
      const stats = acc.stats();
      const written: string[] = [];
      if (options.csv) {
        const f = new PartialFile(names.statsCsv);
        files.push(f);
        f.write(statsCsv(stats));
        await f.done();
        written.push(f.path);
      }
      if (options.txt || options.rois) {
        const txt = options.txt ? new PartialFile(names.outlinesTxt) : undefined;
        const zip = options.rois ? new PartialFile(names.rois) : undefined;
        for (const f of [txt, zip]) if (f) files.push(f);
        await traceOutlines(labelsPath, stats, options.tile ?? 2048, txt, zip, run);
        for (const f of [txt, zip]) {
          if (!f) continue;
          await f.done();
          written.push(f.path);
        }
      }
      return written;
    },
    async abort() {
      await Promise.all(files.map((f) => f.abort()));
    },
  };
}

/** Traces every cell's outline tile by tile (module doc) into the text and ROI zip files. */
async function traceOutlines(
  labelsPath: string,
  stats: MaskStat[],
  tile: number,
  txt: PartialFile | undefined,
  zip: PartialFile | undefined,
  run: { signal?: AbortSignal; onProgress?: (p: Progress) => void },
): Promise<void> {
  const labels = await openImageSource(labelsPath);
  const zipper = new Zip((err, chunk) => {
    if (err) throw err;
    zip?.write(chunk);
  });
  try {
    const cols = Math.ceil(labels.width / tile), rows = Math.ceil(labels.height / tile);
    const owned: MaskStat[][] = Array.from({ length: cols * rows }, () => []);
    for (const s of stats) {
      owned[Math.floor(s.bboxStart[0] / tile) * cols + Math.floor(s.bboxStart[1] / tile)].push(s);
    }
    for (let t = 0; t < owned.length; t++) {
      if (run.signal?.aborted) {
        throw new CellposeError("CANCELLED", "writing the outlines was cancelled", labelsPath);
      }
      run.onProgress?.({ stage: "done", fraction: t / owned.length });
      const cells = owned[t];
      if (!cells.length) continue;
      const y0 = Math.min(...cells.map((s) => s.bboxStart[0]));
      const x0 = Math.min(...cells.map((s) => s.bboxStart[1]));
      const y1 = Math.max(...cells.map((s) => s.bboxEnd[0]));
      const x1 = Math.max(...cells.map((s) => s.bboxEnd[1]));
      const window = await labels.read({ y0, x0, y1, x1 });
      const mine = new Set(cells.map((s) => s.label));
      for (const o of masksToOutlines(window)) {
        if (!mine.has(o.label)) continue;
        for (let i = 0; i < o.xy.length; i += 2) {
          o.xy[i] += x0;
          o.xy[i + 1] += y0;
        }
        txt?.write(o.xy.join(",") + "\n");
        if (zip && o.xy.length) {
          const name = String(o.label).padStart(4, "0");
          const entry = new ZipDeflate(`${name}.roi`, { level: 6 });
          zipper.add(entry);
          entry.push(encodeRoi(o.xy, { name }), true);
        }
      }
    }
    zipper.end();
  } finally {
    await labels.close();
  }
}
