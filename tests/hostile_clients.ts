/**
 * Hostile HTTP clients for the server's tests and load benchmark: raw HTTP/1.1 over TCP (a head
 * byte by byte, a body at a set pace, chunked bodies of any size without a Content-Length) and
 * multipart bodies built by hand, so that nothing a browser or `fetch` would refuse is off limits.
 * @module
 */
export const MiB = 2 ** 20;
const enc = new TextEncoder();
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw HTTP/1.1 exchange on its own connection: the answer's status, body and time. */
export interface Raw {
  status: number;
  text: string;
  ms: number;
}

/**
 * Sends `head` (then the `body` chunks) over a plain TCP connection, `gapMs` between writes
 * (head bytes one at a time when `slowHead`), until the server answers or closes; resolves with
 * what it answered (status 0: closed without an answer).
 */
export async function raw(
  url: string,
  head: string,
  body: Iterable<Uint8Array> = [],
  o: { gapMs?: number; slowHead?: boolean; limitMs?: number } = {},
): Promise<Raw> {
  const port = Number(new URL(url).port);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const t0 = performance.now();
  let answered = false;
  const reading = (async () => {
    const chunks: string[] = [];
    const buf = new Uint8Array(64 * 1024);
    const dec = new TextDecoder();
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        chunks.push(dec.decode(buf.subarray(0, n), { stream: true }));
        answered = true;
        const all = chunks.join("");
        const end = all.indexOf("\r\n\r\n");
        const len = /content-length:\s*(\d+)/i.exec(all);
        if (end >= 0 && len && all.length >= end + 4 + Number(len[1])) break;
      }
    } catch { /* reset by the server */ }
    answered = true;
    return chunks.join("");
  })();
  const writes = o.slowHead ? [...head].map((c) => enc.encode(c)) : [enc.encode(head)];
  const limit = performance.now() + (o.limitMs ?? 60_000);
  let lastYield = performance.now();
  try {
    for (const w of [...writes, ...body]) {
      if (answered || performance.now() > limit) break;
      for (let at = 0; at < w.length;) at += await conn.write(w.subarray(at));
      // writes that complete at once resolve as microtasks: give this process's other clients
      // (a health sampler) their turn
      if (performance.now() - lastYield > 4) {
        await sleep(0);
        lastYield = performance.now();
      }
      if (o.gapMs) await Promise.race([sleep(o.gapMs), reading]);
    }
  } catch { /* the server closed the connection */ }
  const text = await Promise.race([reading, sleep(Math.max(0, limit - performance.now()))]);
  const ms = performance.now() - t0;
  try {
    conn.close();
  } catch { /* closed */ }
  if (typeof text !== "string") return { status: -1, text: "no answer in time", ms };
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, text: text.slice(text.indexOf("\r\n\r\n") + 4), ms };
}

/** `total` bytes of zeros in 64 KiB chunks (Deno takes no larger), as chunked transfer coding. */
export function* chunked(
  total: number,
  prefix: Uint8Array = new Uint8Array(0),
): Generator<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024);
  const frame = (b: Uint8Array) => {
    const out = new Uint8Array(b.length + 16);
    const h = enc.encode(`${b.length.toString(16)}\r\n`);
    out.set(h);
    out.set(b, h.length);
    out.set(enc.encode("\r\n"), h.length + b.length);
    return out.subarray(0, h.length + b.length + 2);
  };
  if (prefix.length) yield frame(prefix);
  for (let sent = 0; sent < total; sent += chunk.length) yield frame(chunk);
  yield enc.encode("0\r\n\r\n");
}

export const HOST = "Host: 127.0.0.1\r\n";
export const BOUNDARY = "hostileboundary";
export const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

export function partHead(name: string, filename?: string): string {
  const file = filename ? `; filename="${filename}"` : "";
  return `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"${file}\r\n\r\n`;
}

export function multipartBody(
  parts: [string, string | Uint8Array, string?][],
): Uint8Array<ArrayBuffer> {
  const pieces: Uint8Array[] = [];
  for (const [name, value, filename] of parts) {
    pieces.push(enc.encode(partHead(name, filename)));
    pieces.push(typeof value === "string" ? enc.encode(value) : value);
    pieces.push(enc.encode("\r\n"));
  }
  pieces.push(enc.encode(`--${BOUNDARY}--\r\n`));
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
