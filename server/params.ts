/**
 * Segmentation parameters of the HTTP API, validated against the one parameter table
 * (`core/params.ts`); the OpenAPI description reads the same table. Values arrive as strings
 * (query string, multipart fields) or JSON values (a `params` field), by cellpose name or option
 * key.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseSegmentParams } from "./params.ts";
 * const opts = parseSegmentParams({ flow_threshold: "0.5", channelAxis: 2 });
 * assertEquals(opts, { flowThreshold: 0.5, channelAxis: 2 });
 * ```
 * @module
 */
import { parseParams, SEGMENT_PARAMS } from "../core/params.ts";
import type { SegmentOptions } from "../core/types.ts";
import { checkJsonDepth } from "./json_body.ts";

export { SEGMENT_PARAMS };

/** The segmentation options a request may set (no callbacks). */
export type SegmentParams = Omit<SegmentOptions, "onProgress" | "signal" | "device">;

/**
 * Validates raw request parameters (cellpose or camelCase names) into {@link SegmentParams}.
 * Throws a `BAD_PARAMETER` {@link CellposeError} naming the field for an unknown name, a name given
 * twice, a value of the wrong type or out of range (the table's ranges).
 */
export function parseSegmentParams(raw: Record<string, unknown>): SegmentParams {
  for (const name of ["normalize"]) {
    // a value nested 200 000 deep is a 400, not a stack overflow
    if (typeof raw[name] === "string") checkJsonDepth(raw[name] as string, name);
  }
  return parseParams(SEGMENT_PARAMS, raw) as SegmentParams;
}
