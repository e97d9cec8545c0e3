/**
 * Downloads one model file over HTTP(S): progress events (bytes, rate), resume through `Range`
 * into `<dest>.part`, size and SHA-256 checks, atomic rename to `<dest>` and a `<dest>.sha256`
 * sidecar. Interrupted transfers are resumed automatically (`retries`) and the partial file is
 * kept for the next run; a checksum mismatch deletes it.
 *
 * @example
 * ```ts ignore
 * import { downloadFile } from "./download.ts";
 * const got = await downloadFile("https://huggingface.co/mouseland/cellpose-sam/resolve/main/cpsam",
 *   "/home/me/.cellpose/models/cpsam", {
 *     onProgress: (p) => console.log(p.bytesDone, p.bytesTotal, p.bytesPerSecond),
 *   });
 * console.log(got.size, got.sha256);
 * ```
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { basename, dirname } from "node:path";
import { CellposeError } from "../core/errors.ts";
import { writeAll } from "../core/fs.ts";
import { hashFileInto, writeChecksumFile } from "./checksum.ts";

/** A progress event of model preparation: download, checksum, conversion or session load. */
export interface ModelProgress {
  /** the step running now */
  stage: "download" | "verify" | "convert" | "load";
  /** bytes transferred (download) or hashed (verify) so far, the resumed part included */
  bytesDone?: number;
  /** total bytes, when known */
  bytesTotal?: number;
  /** download rate of this transfer in bytes per second */
  bytesPerSecond?: number;
  /** the file being worked on */
  path?: string;
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions {
  /** expected size in bytes; the server's `Content-Length` is always checked as well */
  size?: number;
  /** expected hex SHA-256; a mismatch deletes the download */
  sha256?: string;
  /** [3] automatic resumes after a transfer breaks off mid-body */
  retries?: number;
  /** progress events (stage "download") */
  onProgress?: (p: ModelProgress) => void;
  /** cancels; the partial file is kept for a later resume */
  signal?: AbortSignal;
}

/** What {@link downloadFile} returns. */
export interface DownloadResult {
  /** the file written */
  path: string;
  /** its size in bytes */
  size: number;
  /** its hex SHA-256 */
  sha256: string;
}

/**
 * Downloads `url` to `dest` (see the module doc). Throws {@link CellposeError} `DOWNLOAD_FAILED`
 * on HTTP errors, unreachable hosts and size or checksum mismatches, `CANCELLED` on abort.
 *
 * @example
 * ```ts ignore
 * import { downloadFile } from "./download.ts";
 * await downloadFile("http://127.0.0.1:8000/cpsam", "/tmp/models/cpsam", { retries: 5 });
 * ```
 */
export async function downloadFile(
  url: string,
  dest: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const { size, sha256, retries = 3, onProgress, signal } = options;
  const part = `${dest}.part`;
  await Deno.mkdir(dirname(dest), { recursive: true });
  for (let attempt = 0;; attempt++) {
    const got = await transfer(url, dest, part, size, onProgress, signal);
    if (got.complete) return await finish(url, dest, part, got.total, got.hash, sha256);
    if (attempt >= retries) {
      throw new CellposeError(
        "DOWNLOAD_FAILED",
        `download of ${url} broke off after ${got.bytesDone} of ${got.total} bytes ` +
          `(${retries} resumes tried; last error: ${got.reason}). The partial file ${part} is ` +
          `kept: run the download again to resume. ${manualHint(url, dest)}`,
        url,
      );
    }
  }
}

/** The hint printed whenever a download cannot be done here. */
function manualHint(url: string, dest: string): string {
  return `\nTo get the file by hand:\n` +
    `  1. on a machine with internet access, download ${url}\n` +
    `  2. copy it to ${dest}\n` +
    `     or run with --pretrained_model /path/to/${basename(dest)}\n` +
    `Or segment nuclei now with the model shipped with cellpose-deno: --pretrained_model nuclei`;
}

interface Attempt {
  complete: boolean;
  bytesDone: number;
  total: number;
  hash: Hash;
  reason?: string;
}

async function partSize(part: string): Promise<number> {
  try {
    return (await Deno.stat(part)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

function cancelled(url: string, part: string, cause: unknown): CellposeError {
  return new CellposeError(
    "CANCELLED",
    `download of ${url} cancelled; the partial file ${part} is kept for a resume`,
    url,
    { cause },
  );
}

/** One HTTP request: appends to `part` from its current size (or restarts it on a 200). */
async function transfer(
  url: string,
  dest: string,
  part: string,
  size: number | undefined,
  onProgress: DownloadOptions["onProgress"],
  signal: AbortSignal | undefined,
): Promise<Attempt> {
  let offset = await partSize(part);
  if (size !== undefined && offset >= size) {
    await Deno.remove(part); // stale or oversized partial file: start again
    offset = 0;
  }
  let res: Response;
  try {
    res = await fetch(url, { headers: offset > 0 ? { Range: `bytes=${offset}-` } : {}, signal });
  } catch (e) {
    if (signal?.aborted) throw cancelled(url, part, e);
    const why = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
    throw new CellposeError(
      "DOWNLOAD_FAILED",
      `cannot download the model: this machine cannot reach ${new URL(url).host} (${why}).` +
        manualHint(url, dest),
      url,
      { cause: e },
    );
  }
  if (res.status === 416 && offset > 0) {
    await res.body?.cancel();
    await Deno.remove(part); // the server has no bytes past our partial file: start again
    const reason = `the server has no bytes past ${offset} (HTTP 416)`;
    return { complete: false, bytesDone: 0, total: size ?? 0, hash: createHash("sha256"), reason };
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new CellposeError(
      "DOWNLOAD_FAILED",
      `HTTP ${res.status} ${res.statusText} for ${url}` +
        (res.status === 404 ? " (no such model on the server). " : ". ") + manualHint(url, dest),
      res.status,
    );
  }
  const total = totalSize(res, offset);
  if (res.status !== 206) offset = 0;
  if (size !== undefined && total !== undefined && total !== size) {
    await res.body?.cancel();
    throw new CellposeError(
      "DOWNLOAD_FAILED",
      `the server sends ${total} bytes for ${url}, expected ${size}. ${manualHint(url, dest)}`,
      total,
    );
  }
  const expected = total ?? size;
  const hash = createHash("sha256");
  if (offset > 0) {
    onProgress?.({ stage: "verify", bytesDone: 0, bytesTotal: offset, path: part });
    await hashFileInto(hash, part);
  }
  let bytesDone = offset;
  const started = performance.now();
  using file = await Deno.open(part, {
    write: true,
    create: true,
    append: offset > 0,
    truncate: offset === 0,
  });
  try {
    for await (const chunk of res.body ?? []) {
      await writeAll(file, chunk);
      hash.update(chunk);
      bytesDone += chunk.length;
      const seconds = (performance.now() - started) / 1000;
      onProgress?.({
        stage: "download",
        bytesDone,
        bytesTotal: expected,
        bytesPerSecond: seconds > 0 ? (bytesDone - offset) / seconds : 0,
        path: dest,
      });
    }
  } catch (e) {
    if (signal?.aborted) throw cancelled(url, part, e);
    return { complete: false, bytesDone, total: expected ?? bytesDone, hash, reason: String(e) };
  }
  if (expected !== undefined && bytesDone !== expected) {
    const reason = `connection closed at ${bytesDone} of ${expected} bytes`;
    return { complete: false, bytesDone, total: expected, hash, reason };
  }
  return { complete: true, bytesDone, total: bytesDone, hash };
}

/** Full size from `Content-Range: bytes a-b/total` (206) or `Content-Length` (200). */
function totalSize(res: Response, offset: number): number | undefined {
  if (res.status === 206) {
    const m = /^bytes (\d+)-\d+\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
    if (!m || Number(m[1]) !== offset) {
      throw new CellposeError(
        "DOWNLOAD_FAILED",
        `asked for bytes from ${offset}, the server answered Content-Range ` +
          `"${res.headers.get("content-range")}" for ${res.url}`,
        res.headers.get("content-range"),
      );
    }
    return Number(m[2]);
  }
  const length = res.headers.get("content-length");
  return length === null ? undefined : Number(length);
}

/** Checks the checksum, renames the part file into place and writes the `.sha256` sidecar. */
async function finish(
  url: string,
  dest: string,
  part: string,
  size: number,
  hash: Hash,
  sha256: string | undefined,
): Promise<DownloadResult> {
  const got = hash.digest("hex");
  if (sha256 !== undefined && got !== sha256.toLowerCase()) {
    await Deno.remove(part);
    throw new CellposeError(
      "DOWNLOAD_FAILED",
      `checksum mismatch for ${url}: SHA-256 ${got}, expected ${sha256.toLowerCase()}; the ` +
        `downloaded file was deleted. ${manualHint(url, dest)}`,
      got,
    );
  }
  await Deno.rename(part, dest);
  await writeChecksumFile(dest, got);
  return { path: dest, size, sha256: got };
}
