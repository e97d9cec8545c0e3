/**
 * Fuzzing the local server on loopback with broken uploads: truncated TIFFs, random bytes behind
 * every magic number, TIFF headers claiming huge images in tiny files, wrong content types, bad
 * JSON and bad parameter values. Every one must get a 4xx JSON error (no 5xx, no job created),
 * and the server must still segment afterwards. Seeded, bounded in count and time.
 */
import { join } from "node:path";
import { zlibSync } from "fflate";
import { assert, assertEquals } from "./assert.ts";
import { FIXTURES } from "./fixtures.ts";
import { ifdDataAt, ifdTiff } from "./tiff_ifd.ts";
import { encodePng } from "../io/png.ts";
import { encodeTiff } from "../io/tiff_write.ts";
import { writeNpy } from "../io/npy.ts";
import { startServer } from "../server/main.ts";
import { SEGMENT_PARAMS } from "../server/params.ts";

const CASES = 240;
const TIME_LIMIT_MS = 20_000;

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = prng(20261125);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
const body = (u: Uint8Array) => u as Uint8Array<ArrayBuffer>;

/** A one-strip 8-bit grey TIFF whose header claims `w` x `h` pixels over `strip`. */
function claimedTiff(w: number, h: number, compression: 1 | 8, strip: Uint8Array): Uint8Array {
  const { bytes, dataAt } = ifdTiff([
    [256, 4, 1, w],
    [257, 4, 1, h],
    [258, 3, 1, 8],
    [259, 3, 1, compression],
    [262, 3, 1, 1],
    [273, 4, 1, ifdDataAt(9)], // the strip, after the IFD
    [277, 3, 1, 1],
    [278, 4, 1, h],
    [279, 4, 1, strip.length],
  ], strip.length);
  bytes.set(strip, dataAt);
  return bytes;
}

const MAGIC: Uint8Array[] = [
  new Uint8Array([0x49, 0x49, 42, 0]),
  new Uint8Array([0x4d, 0x4d, 0, 42]),
  new Uint8Array([0x49, 0x49, 43, 0, 8, 0, 0, 0]),
  new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]),
  new Uint8Array([0xff, 0xd8, 0xff, 0xe0]),
  new Uint8Array(0),
];
const WRONG_TYPES = [
  "text/plain",
  "application/json",
  "application/x-www-form-urlencoded",
  "text/html",
  "video/mp4",
  "multipart/form-data",
  "multipart/form-data; boundary=nothing-here",
];
const BAD_JSON = ["{", "[1, 2]", "null", "42", '"x"', '{"flow_threshold": "x"}', '{"nope": 1}'];
const GARBAGE = ["abc", "", "NaN", "Infinity", "1e999", "--1", "0x", "[]", "{}", "true?", "1,5"];

interface Case {
  what: string;
  request: () => Promise<Response>;
}

function cases(url: string): Case[] {
  const post = (data: Uint8Array | FormData, type?: string, query = "") => () =>
    fetch(`${url}/v1/segment${query}`, {
      method: "POST",
      headers: type ? { "content-type": type } : {},
      body: data instanceof FormData ? data : body(data),
    });
  const tiff = (deflate: boolean) => {
    const h = 8 + int(40), w = 8 + int(40);
    const data = Uint16Array.from({ length: h * w }, () => int(65536));
    return encodeTiff({ data, shape: [h, w] }, { compression: deflate ? "deflate" : "none" });
  };
  const png = encodePng({ data: bytes(32 * 24), shape: [24, 32] });
  const out: Case[] = [];
  for (let i = 0; out.length < CASES; i++) {
    switch (i % 6) {
      case 0: {
        const t = tiff(rand() < 0.5);
        const cut = 1 + int(t.length - 1);
        out.push({ what: `TIFF truncated at ${cut}/${t.length}`, request: post(t.slice(0, cut)) });
        break;
      }
      case 1: {
        const m = pick(MAGIC);
        const b = new Uint8Array(m.length + int(2000));
        b.set(m);
        b.set(bytes(b.length - m.length), m.length);
        out.push({
          what: `random ${b.length} bytes after magic [${m}]`,
          request: post(
            b,
            pick(["application/octet-stream", "image/tiff", "image/png", undefined!]),
          ),
        });
        break;
      }
      case 2: {
        const side = pick([100_000, 65_535, 46_341, 30_000]);
        const deflate = rand() < 0.5;
        const strip = deflate ? zlibSync(new Uint8Array(1000)) : bytes(16);
        out.push({
          what: `TIFF claiming ${side} x ${side} in ${strip.length} bytes`,
          request: post(claimedTiff(side, side, deflate ? 8 : 1, strip), "image/tiff"),
        });
        break;
      }
      case 3: {
        const type = pick(WRONG_TYPES);
        out.push({ what: `PNG sent as ${type}`, request: post(png, type) });
        break;
      }
      case 4: {
        const form = new FormData();
        form.set("image", new Blob([body(png)]), "x.png");
        const json = rand() < 0.5 ? pick(BAD_JSON) : new TextDecoder().decode(bytes(1 + int(40)));
        form.set("params", json);
        out.push({ what: `params ${JSON.stringify(json)}`, request: post(form) });
        break;
      }
      default: {
        const name = rand() < 0.8 ? pick(SEGMENT_PARAMS).name : `x${int(1000)}`;
        const value = pick(GARBAGE);
        const query = `?${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
        out.push({ what: `query ${query}`, request: post(png, "image/png", query) });
      }
    }
  }
  return out;
}

Deno.test("server fuzz: broken uploads all get a 4xx JSON error, the server keeps working", async () => {
  const cache = await Deno.makeTempDir({ prefix: "server_fuzz_models_" });
  const logged: string[] = [];
  const server = await startServer({
    port: 0,
    model: join(FIXTURES, "tiny-cpsam.pt"),
    modelsDir: cache,
    device: "cpu",
    maxPixels: 2 ** 26,
    log: (l) => logged.push(l),
  });
  try {
    const started = performance.now();
    let n = 0;
    for (const c of cases(server.url)) {
      if (performance.now() - started > TIME_LIMIT_MS) break;
      const res = await c.request();
      const text = await res.text();
      assert(res.status >= 400 && res.status < 500, `${c.what}: HTTP ${res.status} ${text}`);
      const err = JSON.parse(text).error;
      assert(typeof err.code === "string" && err.message.length > 0, `${c.what}: ${text}`);
      n++;
    }
    assert(n >= 60, `only ${n} cases ran in ${TIME_LIMIT_MS} ms`);

    const health = await (await fetch(`${server.url}/v1/health`)).json();
    assertEquals(health.status, "ok");
    assertEquals([health.queue.running, health.queue.queued, health.queue.stored], [0, 0, 0]);
    const data = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * 37) % 256);
    const ok = await fetch(`${server.url}/v1/segment?sync=1`, {
      method: "POST",
      body: body(writeNpy({ data, shape: [64, 64] })),
    });
    assertEquals(ok.status, 200);
    assertEquals((await ok.json()).shape, [64, 64]);
    assertEquals(logged.filter((l) => !l.startsWith("cellpose server listening")), []);
  } finally {
    await server.close();
    await Deno.remove(cache, { recursive: true });
  }
});
