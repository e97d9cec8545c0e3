/**
 * SHA-256 of model files, streamed (checkpoints are ~1.2 GB), and the `<file>.sha256` sidecar
 * written after a verified download (`sha256sum` format: `<hex>  <name>`).
 *
 * @example
 * ```ts ignore
 * import { readChecksumFile, sha256File, writeChecksumFile } from "./checksum.ts";
 * const hex = await sha256File("/tmp/cpsam");
 * await writeChecksumFile("/tmp/cpsam", hex);
 * console.log((await readChecksumFile("/tmp/cpsam")) === hex); // true
 * ```
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { basename } from "node:path";
import { CellposeError } from "../core/errors.ts";

/** Feeds the file at `path` into `hash` chunk by chunk; calls `onBytes` with the running count. */
export async function hashFileInto(
  hash: Hash,
  path: string,
  onBytes?: (bytesDone: number) => void,
): Promise<number> {
  using file = await Deno.open(path, { read: true });
  let done = 0;
  for await (const chunk of file.readable) {
    hash.update(chunk);
    done += chunk.length;
    onBytes?.(done);
  }
  return done;
}

/**
 * Hex SHA-256 of a file, read as a stream.
 *
 * @example
 * ```ts ignore
 * import { sha256File } from "./checksum.ts";
 * console.log(await sha256File("/tmp/cpsam")); // "9f86d0..."
 * ```
 */
export async function sha256File(
  path: string,
  onBytes?: (bytesDone: number) => void,
): Promise<string> {
  const hash = createHash("sha256");
  await hashFileInto(hash, path, onBytes);
  return hash.digest("hex");
}

/** Path of the checksum sidecar of `path`: `<path>.sha256`. */
function checksumPath(path: string): string {
  return `${path}.sha256`;
}

/**
 * Writes `<path>.sha256` in `sha256sum` format.
 *
 * @example
 * ```ts
 * import { writeChecksumFile } from "./checksum.ts";
 * await writeChecksumFile("/tmp/cpsam", "9f86d0...");
 * ```
 */
export async function writeChecksumFile(path: string, sha256: string): Promise<void> {
  await Deno.writeTextFile(checksumPath(path), `${sha256}  ${basename(path)}\n`);
}

/**
 * Reads the hex digest from `<path>.sha256`, or `undefined` when there is no sidecar.
 *
 * @example
 * ```ts ignore
 * import { readChecksumFile } from "./checksum.ts";
 * const known = await readChecksumFile("/tmp/cpsam"); // "9f86d0..." or undefined
 * ```
 */
export async function readChecksumFile(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(checksumPath(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const hex = text.trim().split(/\s+/)[0].toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new CellposeError(
      "BAD_FILE",
      `${checksumPath(path)} must start with a 64-digit hex SHA-256, got "${text.slice(0, 80)}"`,
      checksumPath(path),
    );
  }
  return hex;
}
