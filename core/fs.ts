/**
 * File helpers every layer shares: whether a path is an existing file, and writing a whole
 * buffer (`write` may take fewer bytes).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { statFile, writeAll } from "./fs.ts";
 * const path = await Deno.makeTempFile();
 * {
 *   using f = await Deno.open(path, { write: true, truncate: true });
 *   await writeAll(f, new Uint8Array(1 << 20));
 * }
 * assertEquals((await statFile(path))?.size, 1 << 20);
 * assertEquals(await statFile(`${path}.missing`), undefined);
 * await Deno.remove(path);
 * ```
 * @module
 */

/**
 * The file's info when `path` is an existing file; `undefined` when nothing (or a folder) is
 * there. Other errors (permissions, I/O) are thrown.
 */
export async function statFile(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    const info = await Deno.stat(path);
    return info.isFile ? info : undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return;
    throw e;
  }
}

/** Writes `bytes` fully at the file's current position. */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}
