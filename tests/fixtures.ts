/**
 * Paths to the shared reference data (`../shared` next to the repository) and loaders for it.
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readNpyFile } from "../io/npy.ts";
import type { NdArray } from "../core/ndarray.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** Root of the shared folder: `$CELLPOSE_SHARED` or `../shared` beside the repository. */
export const SHARED = Deno.env.get("CELLPOSE_SHARED") ?? join(repoRoot, "..", "shared");
/** `shared/fixtures`: outputs of the reference cellpose v4. */
export const FIXTURES = join(SHARED, "fixtures");
/** `shared/data`: real labelled images. */
export const DATA = join(SHARED, "data");
/** The repository root. */
export const REPO = repoRoot;

/** Loads `shared/fixtures/<name>.npy`. */
export function fixture(name: string): Promise<NdArray> {
  return readNpyFile(join(FIXTURES, `${name}.npy`));
}

/** Parsed `shared/fixtures/MANIFEST.json`. */
export async function manifest(): Promise<
  {
    files: Record<
      string,
      { shape?: number[]; params?: Record<string, number>; eval_kwargs?: Record<string, number> }
    >;
    metrics: { thresholds: number[]; ap: number[]; tp: number[]; fp: number[]; fn: number[] };
    cpu_baseline_fullsize_tile_seconds: number[];
  }
> {
  return JSON.parse(await Deno.readTextFile(join(FIXTURES, "MANIFEST.json")));
}
