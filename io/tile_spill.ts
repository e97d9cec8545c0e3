/**
 * Block core tiles spilled to a temporary folder between the block pass and the write pass of a
 * large image, read back by row bands: memory stays bounded by a block, not by the image.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { tileSpill } from "./tile_spill.ts";
 * await using tiles = await tileSpill();
 * await tiles.put(3, new Uint32Array([1, 2, 3, 4, 5, 6])); // a 3 x 2 tile
 * assertEquals(await tiles.rows(3, 1, 2, 2), new Uint32Array([3, 4, 5, 6]));
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { writeAll } from "../core/fs.ts";

/** Tiles by block id in a temporary folder; {@link TileSpill.close} removes the folder. */
export interface TileSpill extends AsyncDisposable {
  /** stores block `id`'s tile (row-major labels) */
  put(id: number, tile: Uint32Array): Promise<void>;
  /** `rows` rows of block `id`'s tile from row `row0` on, the tile being `width` wide */
  rows(id: number, row0: number, rows: number, width: number): Promise<Uint32Array>;
  /** removes the folder and its tiles */
  close(): Promise<void>;
}

/** Reads exactly `out.length` bytes at `offset`. */
async function readAt(file: Deno.FsFile, offset: number, out: Uint8Array): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  for (let at = 0; at < out.length;) {
    const n = await file.read(out.subarray(at));
    if (n === null) throw new CellposeError("BAD_FILE", `temporary tile ended early`, offset);
    at += n;
  }
}

/** A new spill folder under `tempDir` (default: the system's temporary folder). */
export async function tileSpill(tempDir?: string): Promise<TileSpill> {
  const dir = await Deno.makeTempDir({ dir: tempDir, prefix: "cellpose_blocks_" });
  const tile = (id: number) => `${dir}/core-${id}.u32`;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Deno.remove(dir, { recursive: true });
  };
  return {
    async put(id, data) {
      using f = await Deno.open(tile(id), { write: true, create: true, truncate: true });
      await writeAll(f, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    },
    async rows(id, row0, rows, width) {
      const local = new Uint32Array(rows * width);
      using f = await Deno.open(tile(id));
      await readAt(f, row0 * width * 4, new Uint8Array(local.buffer));
      return local;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
