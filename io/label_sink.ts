/**
 * Where a merged label image goes row band by row band: a {@link LabelSink} takes whole rows in
 * order and finishes the file on {@link LabelSink.close}; a {@link LabelTarget} opens one once the
 * pixel type is known (uint16, or uint32 past 65535 masks). The strip-wise TIFF writer is one
 * sink ({@link tiffLabels}); an OME-Zarr `labels` group is another (io/zarr_labels.ts); several
 * targets can be written in one pass ({@link allLabels}).
 *
 * @example
 * ```ts
 * import { allLabels, tiffLabels } from "./label_sink.ts";
 * const target = allLabels([tiffLabels("/tmp/a.tif"), tiffLabels("/tmp/b.tif")]);
 * const sink = await target(Uint16Array, 4, 2);
 * await sink.write(new Uint16Array([0, 1, 1, 0, 0, 2, 2, 0]));
 * await sink.close(); // both files hold the 2 x 4 labels
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";
import { TiffStripWriter } from "./tiff_strips.ts";

/** The pixel type of a label image. */
export type LabelType = Uint16ArrayConstructor | Uint32ArrayConstructor;

/** Receives a label image's rows in order. */
export interface LabelSink {
  /** appends whole rows (a multiple of the width, in the sink's type) */
  write(rows: Uint16Array | Uint32Array): Promise<void>;
  /** finishes the output; rows must add up to the height */
  close(): Promise<void>;
  /** gives up: removes what was written */
  abort(): Promise<void>;
  /** the files or folders written, for messages */
  readonly paths: string[];
  /** where they are being written until {@link close} renames them into place, if elsewhere */
  readonly partials?: string[];
}

/** Opens a sink for a `width` x `height` label image of `type` pixels. */
export type LabelTarget = (type: LabelType, width: number, height: number) => Promise<LabelSink>;

/**
 * A label TIFF at `path`, written strip by strip ({@link TiffStripWriter}) under a hidden
 * temporary name beside it (`.<name>.partial-<id>`) and renamed to `path` once complete, so that
 * `path` never holds a partial file (an error, a cancelled run, a killed process); on abort the
 * temporary file is removed.
 *
 * @example
 * ```ts
 * import { tiffLabels } from "./label_sink.ts";
 * const sink = await tiffLabels("/tmp/l.tif", { compression: "deflate" })(Uint32Array, 3, 1);
 * await sink.write(new Uint32Array([1, 70000, 0]));
 * await sink.close();
 * ```
 */
export function tiffLabels(
  path: string,
  options: { compression?: "none" | "deflate" } = {},
): LabelTarget {
  return async (type, width, height) => {
    const partial = partialPath(path);
    const writer = await TiffStripWriter.create(partial, width, height, type, options);
    return {
      paths: [path],
      partials: [partial],
      write: (rows) => writer.write(rows),
      async close() {
        try {
          await writer.close();
          await Deno.rename(partial, path);
        } catch (e) {
          await Deno.remove(partial).catch(() => {});
          throw e;
        }
      },
      async abort() {
        writer.abort();
        await Deno.remove(partial).catch(() => {});
      },
    };
  };
}

/** The hidden temporary name beside `path` that a file is written under before it is renamed. */
export function partialPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.partial-${crypto.randomUUID().slice(0, 8)}`);
}

/**
 * Several targets fed by one pass over the rows (e.g. a label TIFF and an OME-Zarr labels group).
 * If one fails, all are aborted.
 */
export function allLabels(targets: LabelTarget[]): LabelTarget {
  return async (type, width, height) => {
    const sinks: LabelSink[] = [];
    try {
      for (const t of targets) sinks.push(await t(type, width, height));
    } catch (e) {
      await Promise.all(sinks.map((s) => s.abort()));
      throw e;
    }
    return {
      paths: sinks.flatMap((s) => s.paths),
      partials: sinks.flatMap((s) => s.partials ?? []),
      async write(rows) {
        for (const s of sinks) await s.write(rows);
      },
      async close() {
        for (const s of sinks) await s.close();
      },
      async abort() {
        await Promise.all(sinks.map((s) => s.abort()));
      },
    };
  };
}
