/**
 * A TCP front for the HTTP server that cuts off slow clients, which `Deno.serve` alone keeps open
 * for ever: a client sending its request head at one byte every few seconds (slowloris), or a
 * body slower than the server's {@link UploadPace}. The public port is a plain TCP listener; each
 * connection is relayed to `Deno.serve` on a Unix socket in a private folder, while the client's
 * side is followed through HTTP/1.1 framing (request heads, `Content-Length` and chunked bodies):
 *
 * - a request head must be complete within `headerTimeoutMs` of its first byte (and at most
 *   {@link MAX_HEAD_BYTES}), else the client gets `408` (`431` for a head too large) and the
 *   connection is closed; the head reaches the server only once complete;
 * - a body must keep the pace (after `graceMs`, `minBytesPerSecond` on average), else the
 *   connection is closed (5 s later than the routes that read bodies, which answer such a
 *   client with 408 first).
 *
 * An idle keep-alive connection between requests costs only its socket and is not timed out
 * (a client waiting for a long answer sends nothing either).
 *
 * @example
 * ```ts
 * import { guardConnections } from "./conn_guard.ts";
 * const dir = await Deno.makeTempDir();
 * const inner = Deno.serve({ path: `${dir}/s.sock`, onListen() {} }, () => new Response("ok"));
 * const guard = guardConnections(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
 *   socketPath: `${dir}/s.sock`,
 * });
 * const res = await fetch(`http://127.0.0.1:${guard.port}/`);
 * console.log(await res.text()); // "ok"
 * await guard.close();
 * await inner.shutdown();
 * ```
 * @module
 */
import { LoopTurns } from "./loop_share.ts";
import { DEFAULT_PACE, type UploadPace } from "./upload.ts";

/** Largest request head (request line and headers) relayed. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** Options of {@link guardConnections}. */
export interface GuardOptions {
  /** the Unix socket `Deno.serve` listens on */
  socketPath: string;
  /** [10000] ms a request head may take from its first byte */
  headerTimeoutMs?: number;
  /** [DEFAULT_PACE] how slowly a request body may arrive */
  pace?: UploadPace;
  /** where relay failures are reported [nowhere] */
  log?: (line: string) => void;
}

/** The running front; see {@link guardConnections}. */
export interface ConnectionGuard {
  port: number;
  /** connections cut off for a slow head or body, since the start */
  cutOff(): number;
  /** connections open now */
  open(): number;
  /** stops accepting and closes every connection */
  close(): Promise<void>;
}

/** How much longer than the pace asks the guard waits before closing a slow body's connection. */
const GUARD_SLACK_MS = 5000;
/** How long a client's leftover bytes are drained after the server has answered and closed. */
const LINGER_MS = 2000;
/** At most this many leftover bytes are drained (a 300 MB upload refused early is not read on). */
const LINGER_BYTES = 64 << 20;

const enc = new TextEncoder();

function answer(status: string, message: string): Uint8Array {
  const body = JSON.stringify({ error: { code: "REQUEST_TIMEOUT", message } });
  return enc.encode(
    `HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${enc.encode(body).length}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Index of "\r\n\r\n" in `b` from `from`, or -1. */
function headEnd(b: Uint8Array, from: number): number {
  for (let i = Math.max(0, from - 3); i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

/** How the body after a head is framed: a byte count, chunked, or none. */
function framing(head: string): { length: number } | { chunked: true } | { raw: true } {
  if (/^PRI \* HTTP\/2/.test(head)) return { raw: true };
  const te = /\r\ntransfer-encoding:\s*([^\r\n]*)/i.exec(head);
  if (te && /chunked\s*$/i.test(te[1])) return { chunked: true };
  const cl = /\r\ncontent-length:\s*(\d+)\s*(\r\n|$)/i.exec(head);
  return { length: cl ? Number(cl[1]) : 0 };
}

/**
 * Relays connections accepted on `listener` to the server at `options.socketPath`, enforcing the
 * head deadline and body pace (see the module doc).
 */
export function guardConnections(
  listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
  options: GuardOptions,
): ConnectionGuard {
  const headerMs = options.headerTimeoutMs ?? 10_000;
  const pace = options.pace ?? DEFAULT_PACE;
  const log = options.log ?? (() => {});
  const conns = new Set<{ close(): void }>();
  let cut = 0;
  let closed = false;

  async function relay(client: Deno.TcpConn) {
    let server: Deno.UnixConn;
    try {
      server = await Deno.connect({ transport: "unix", path: options.socketPath });
    } catch (e) {
      log(`relay: cannot reach the server socket (${(e as Error).message})`);
      client.close();
      return;
    }
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let linger: ReturnType<typeof setTimeout> | undefined;
    const close = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(linger);
      for (const c of [client, server]) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      conns.delete(entry);
    };
    const entry = { close };
    conns.add(entry);
    const cutOff = async (reply?: Uint8Array) => {
      cut++;
      if (reply) await client.write(reply).catch(() => {});
      close();
    };
    // once the server has answered and closed, the client's side is shut for writing and what
    // it still sends is read and dropped for up to LINGER_MS: closing a socket with unread bytes
    // resets the connection, and the client would lose the answer (a 413 to a huge upload)
    let serverGone = false;
    let drained = 0;
    const turns = new LoopTurns();
    const toClient = server.readable.pipeTo(client.writable, { preventClose: true })
      .then(() => client.closeWrite()).catch(() => {}).finally(() => {
        serverGone = true;
        clearTimeout(timer);
        linger = setTimeout(close, LINGER_MS);
      });
    const write = async (b: Uint8Array) => {
      try {
        for (let at = 0; at < b.length && !serverGone;) at += await server.write(b.subarray(at));
      } catch {
        serverGone = true; // the server stopped reading: the rest is dropped (see above)
      }
    };

    // client -> server, following the framing
    const buf = new Uint8Array(256 * 1024);
    let head: Uint8Array = new Uint8Array(0);
    type State = "head" | "body" | "chunk-size" | "chunk-data" | "chunk-end" | "trailer" | "raw";
    let state = "head" as State;
    let left = 0; // bytes left of a body or chunk
    let line = ""; // a chunk-size or trailer line so far
    // the client is charged only for the time spent waiting for its bytes, not for the time the
    // server takes to read them (back-pressure)
    let headWaited = 0, bodyWaited = 0, bodyBytes = 0;
    const arm = (): "head" | "body" | undefined => {
      clearTimeout(timer);
      if (state === "head") {
        if (head.length === 0) return; // idle between requests: no deadline
        timer = setTimeout(() =>
          cutOff(
            answer(
              "408 Request Timeout",
              `request head not complete within ${headerMs / 1000} s`,
            ),
          ), Math.max(0, headerMs - headWaited));
        return "head";
      }
      if (state === "raw") return;
      // GUARD_SLACK_MS later than the routes, so that those reading the body answer 408 first
      const allowed = pace.graceMs + GUARD_SLACK_MS + (1000 * bodyBytes) / pace.minBytesPerSecond;
      timer = setTimeout(() => cutOff(), Math.max(0, allowed - bodyWaited));
      return "body";
    };
    const startBody = (h: string) => {
      const f = framing(h);
      bodyWaited = 0;
      bodyBytes = 0;
      headWaited = 0;
      if ("raw" in f) state = "raw";
      else if ("chunked" in f) state = "chunk-size";
      else if (f.length > 0) {
        state = "body";
        left = f.length;
      } else state = "head";
    };
    try {
      while (!done) {
        // reads and writes that complete at once resolve as microtasks, so a fast upload would
        // never let the event loop serve anything else (health took 8 s under six 300 MB
        // uploads): the relay waits for its turns (large bodies and drains share theirs, see
        // loop_share.ts)
        const turn = turns.due(serverGone ? Infinity : bodyBytes);
        if (turn) await turn;
        const clock = serverGone ? undefined : arm();
        const t0 = performance.now();
        const n = await client.read(buf);
        clearTimeout(timer);
        if (clock === "head") headWaited += performance.now() - t0;
        else if (clock === "body") bodyWaited += performance.now() - t0;
        if (n === null) break;
        if (serverGone) {
          drained += n; // a bounded drain: past LINGER_BYTES the connection is closed
          if (drained > LINGER_BYTES) break;
          continue;
        }
        let b = buf.subarray(0, n);
        while (b.length > 0 && !done) {
          if (state === "head") {
            const joined = new Uint8Array(head.length + b.length);
            joined.set(head);
            joined.set(b, head.length);
            const end = headEnd(joined, head.length);
            if (end < 0) {
              if (joined.length > MAX_HEAD_BYTES) {
                await cutOff(
                  answer("431 Request Header Fields Too Large", "request head too large"),
                );
                break;
              }
              head = joined; // its first bytes start its clock (see arm)
              b = b.subarray(b.length);
              continue;
            }
            const whole = joined.subarray(0, end + 4);
            await write(whole);
            b = joined.subarray(end + 4);
            head = new Uint8Array(0);
            startBody(new TextDecoder().decode(whole));
          } else if (state === "raw") {
            await write(b);
            bodyBytes += b.length;
            b = b.subarray(b.length);
          } else if (state === "body" || state === "chunk-data") {
            const k = Math.min(left, b.length);
            await write(b.subarray(0, k));
            bodyBytes += k;
            left -= k;
            b = b.subarray(k);
            if (left === 0) state = state === "body" ? "head" : "chunk-end";
          } else {
            // chunk-size, chunk-end and trailer lines: relayed byte by byte up to their CRLF
            const nl = b.indexOf(10);
            const part = nl < 0 ? b : b.subarray(0, nl + 1);
            await write(part);
            bodyBytes += part.length;
            b = b.subarray(part.length);
            line += new TextDecoder().decode(part);
            if (line.length > 4096) {
              await cutOff();
              break;
            }
            if (nl < 0) continue;
            const text = line.trim();
            line = "";
            if (state === "chunk-size") {
              const size = parseInt(text.split(";")[0], 16);
              if (!Number.isFinite(size)) {
                await cutOff();
                break;
              }
              if (size === 0) state = "trailer";
              else {
                state = "chunk-data";
                left = size;
              }
            } else if (state === "chunk-end") state = "chunk-size";
            else if (text === "") state = "head"; // the empty line after the trailers
          }
        }
      }
    } catch { /* the connection was closed */ }
    clearTimeout(timer);
    if (!done) {
      // the client finished sending: let the server answer, then close both sides
      try {
        await server.closeWrite();
      } catch { /* already closed */ }
      await toClient;
    }
    close();
  }

  (async () => {
    for await (const conn of listener) {
      if (closed) {
        conn.close();
        break;
      }
      relay(conn).catch((e) => log(`relay failed: ${(e as Error).message}`));
    }
  })().catch(() => {});

  return {
    port: listener.addr.port,
    cutOff: () => cut,
    open: () => conns.size,
    close() {
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of [...conns]) c.close();
      return Promise.resolve();
    },
  };
}
