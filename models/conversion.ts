/**
 * Conversion records: what a converted ONNX network was made from (the checkpoint's path, size,
 * modification time, SHA-256, the precision and the graph builder's version), stored beside it as
 * `<onnx>.json`, so that a load reuses an up-to-date conversion and rebuilds a stale one.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GRAPH_VERSION, readConversionRecord, recordMatches, writeConversionRecord } from "./conversion.ts";
 * const dir = await Deno.makeTempDir();
 * const checkpoint = `${dir}/model.pt`;
 * await Deno.writeFile(checkpoint, new Uint8Array(8));
 * const info = await Deno.stat(checkpoint);
 * const record = {
 *   checkpoint,
 *   size: info.size,
 *   mtimeMs: info.mtime?.getTime() ?? 0,
 *   sha256: "af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc",
 *   precision: "fp32" as const,
 *   graph: GRAPH_VERSION,
 * };
 * await writeConversionRecord(`${dir}/model.onnx`, record);
 * assertEquals(await readConversionRecord(`${dir}/model.onnx`), record);
 * assertEquals(recordMatches(record, info), true);
 * assertEquals(recordMatches({ ...record, graph: 1 }, info), false); // an older builder's graph
 * assertEquals(await readConversionRecord(`${dir}/other.onnx`), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Precision } from "./precision.ts";

/**
 * Version of the graphs the network builder (models/cpsam_graph.ts) makes. Conversion records
 * store it, so a network converted by an older builder (before the int8 graph's fused attention,
 * say) is rebuilt on its next load instead of reused. Raise it whenever a change to the builder
 * alters the ONNX a checkpoint converts to.
 */
export const GRAPH_VERSION = 2;

/** What a converted network was made from: stored in `<onnx>.json`. */
export interface ConversionRecord {
  /** absolute path of the checkpoint */
  checkpoint: string;
  /** its size in bytes and modification time when converted */
  size: number;
  mtimeMs: number;
  /** its SHA-256 when converted */
  sha256: string;
  precision: Precision;
  /** the {@link GRAPH_VERSION} of the builder that made it (absent: before versions were kept) */
  graph?: number;
}

/** Path of the conversion record of an ONNX file. */
function recordPath(onnxPath: string): string {
  return `${onnxPath}.json`;
}

/** Reads `<onnx>.json`, or `undefined` when missing or unreadable (then the network is rebuilt). */
export async function readConversionRecord(
  onnxPath: string,
): Promise<ConversionRecord | undefined> {
  try {
    const rec = JSON.parse(await Deno.readTextFile(recordPath(onnxPath)));
    return typeof rec?.sha256 === "string" && typeof rec?.size === "number" ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** Writes `<onnx>.json`. */
export async function writeConversionRecord(
  onnxPath: string,
  record: ConversionRecord,
): Promise<void> {
  await Deno.writeTextFile(recordPath(onnxPath), JSON.stringify(record, null, 2) + "\n");
}

/**
 * True when `record` describes the checkpoint as it is now (same size and mtime) and the network
 * was built by the current graph builder.
 */
export function recordMatches(record: ConversionRecord | undefined, info: Deno.FileInfo): boolean {
  return record !== undefined && record.graph === GRAPH_VERSION && record.size === info.size &&
    record.mtimeMs === (info.mtime?.getTime() ?? 0);
}
