/**
 * Model store: download from a local HTTP server (Range support, one mid-body cut on request),
 * size and checksum checks, clear errors, cache lookup and listing; conversion done once and
 * cached beside the checkpoint, and the loaded network against the tiny-cpsam fixture.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals, assertRejects, maxAbsDiff } from "./assert.ts";
import { fixture, FIXTURES } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import type { NdArray } from "../core/ndarray.ts";
import { readChecksumFile } from "../models/checksum.ts";
import type { ModelProgress } from "../models/download.ts";
import { convertModel, loadModel, type LoadModelOptions } from "../models/load.ts";
import { GRAPH_VERSION } from "../models/conversion.ts";
import { downloadModel, listModels, modelsDir, resolveModel } from "../models/store.ts";

const TINY = await Deno.readFile(join(FIXTURES, "tiny-cpsam.pt"));
const TINY_SHA = createHash("sha256").update(TINY).digest("hex");

/**
 * A local model server: serves TINY as /<any name> except /missing, honours `Range` (unless
 * `ignoreRange`), and cuts the first response after `cutAt` bytes.
 */
function serveModels(options: { cutAt?: number; ignoreRange?: boolean } = {}) {
  const ranges: (string | null)[] = [];
  let cutAt = options.cutAt;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const range = options.ignoreRange ? null : req.headers.get("range");
    ranges.push(req.headers.get("range"));
    if (new URL(req.url).pathname === "/missing") return new Response("no", { status: 404 });
    const start = range ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : 0;
    const body = TINY.subarray(start);
    const headers: Record<string, string> = { "content-length": String(body.length) };
    if (range) headers["content-range"] = `bytes ${start}-${TINY.length - 1}/${TINY.length}`;
    const cut = cutAt;
    cutAt = undefined; // cut the connection once
    const stream = cut === undefined ? body : new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(body.slice(0, cut));
      },
      async pull(c) {
        await new Promise((r) => setTimeout(r, 100)); // let the first bytes reach the client
        c.close(); // fewer bytes than Content-Length: the client sees a broken body
      },
    });
    return new Response(stream, { status: range ? 206 : 200, headers });
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  return { url, ranges, [Symbol.asyncDispose]: () => server.shutdown() };
}

/** Runs `fn` with environment variables set (a value) or unset (undefined), then restores them. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T> | T) {
  const saved = Object.keys(vars).map((k) => [k, Deno.env.get(k)] as const);
  const apply = (k: string, v: string | undefined) =>
    v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  try {
    for (const [k, v] of Object.entries(vars)) apply(k, v);
    return await fn();
  } finally {
    for (const [k, v] of saved) apply(k, v);
  }
}

Deno.test("modelsDir follows CELLPOSE_LOCAL_MODELS_PATH, else ~/.cellpose/models", async () => {
  await withEnv({ CELLPOSE_LOCAL_MODELS_PATH: "/tmp/somewhere/models" }, () => {
    assertEquals(modelsDir(), "/tmp/somewhere/models");
  });
  await withEnv({ CELLPOSE_LOCAL_MODELS_PATH: undefined }, () => {
    assertEquals(modelsDir(), join(Deno.env.get("HOME")!, ".cellpose", "models"));
  });
});

Deno.test("downloadModel fetches from CELLPOSE_MODEL_URL with progress, size and sha256", async () => {
  await using srv = serveModels();
  const cacheDir = await Deno.makeTempDir();
  try {
    await withEnv({ CELLPOSE_MODEL_URL: srv.url + "/" }, async () => {
      const events: ModelProgress[] = [];
      const got = await downloadModel("cpsam", { cacheDir, onProgress: (p) => events.push(p) });
      assertEquals(got, { path: join(cacheDir, "cpsam"), size: TINY.length, sha256: TINY_SHA });
      assertEquals(await Deno.readFile(got.path), TINY);
      assertEquals(await readChecksumFile(got.path), TINY_SHA);
      assertEquals(srv.ranges, [null]);
      assert(events.length > 0 && events.every((e) => e.stage === "download"));
      assert(events.every((e, i) => i === 0 || e.bytesDone! > events[i - 1].bytesDone!));
      assertEquals(events.at(-1)!.bytesDone, TINY.length);
      assert(events.every((e) => e.bytesTotal === TINY.length && e.bytesPerSecond! >= 0));
      // second call: already in the cache, no request
      assertEquals(await downloadModel("cpsam", { cacheDir, sha256: TINY_SHA }), got);
      assertEquals(srv.ranges.length, 1);
      const stale = await assertRejects(
        () => downloadModel("cpsam", { cacheDir, sha256: "ab".repeat(32) }),
        CellposeError,
        `the cached ${got.path} has SHA-256 ${TINY_SHA}, expected ${"ab".repeat(32)}: delete it`,
      );
      assertEquals(stale.code, "BAD_MODEL");
      const [m] = await listModels({ cacheDir });
      assertEquals(m.name, "cpsam");
      assertEquals([m.downloaded, m.size, m.sha256, m.converted], [
        true,
        TINY.length,
        TINY_SHA,
        false,
      ]);
    });
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("an interrupted download is kept as .part and resumed with Range", async () => {
  const cacheDir = await Deno.makeTempDir();
  const cutAt = 1_000_000;
  try {
    {
      await using srv = serveModels({ cutAt });
      const err = await assertRejects(
        () => downloadModel("cpsam", { cacheDir, baseUrl: srv.url, retries: 0 }),
        CellposeError,
        "partial file",
      );
      assertEquals(err.code, "DOWNLOAD_FAILED");
      const kept = (await Deno.stat(join(cacheDir, "cpsam.part"))).size;
      assert(kept > 0 && kept <= cutAt, `kept ${kept} bytes`);
      const events: ModelProgress[] = [];
      const got = await downloadModel("cpsam", {
        cacheDir,
        baseUrl: srv.url,
        sha256: TINY_SHA,
        onProgress: (p) => events.push(p),
      });
      assertEquals(srv.ranges, [null, `bytes=${kept}-`]);
      assertEquals(got.sha256, TINY_SHA);
      assertEquals(events[0], {
        stage: "verify",
        bytesDone: 0,
        bytesTotal: kept,
        path: got.path + ".part",
      });
      assert(events[1].bytesDone! > kept);
      assertEquals(await Deno.readFile(got.path), TINY);
    }
    await Deno.remove(join(cacheDir, "cpsam"));
    // with retries (the default) the cut is resumed within one call
    await using srv = serveModels({ cutAt });
    const got = await downloadModel("cpsam", { cacheDir, baseUrl: srv.url, sha256: TINY_SHA });
    assertEquals(srv.ranges.length, 2);
    assert(/^bytes=\d+-$/.test(srv.ranges[1]!), String(srv.ranges[1]));
    assertEquals(await Deno.readFile(got.path), TINY);
    await assertRejects(() => Deno.stat(join(cacheDir, "cpsam.part")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("a server without Range support restarts the partial file", async () => {
  await using srv = serveModels({ ignoreRange: true });
  const cacheDir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(cacheDir, "cpsam.part"), new Uint8Array(1000).fill(255));
    const got = await downloadModel("cpsam", { cacheDir, baseUrl: srv.url, sha256: TINY_SHA });
    assertEquals(srv.ranges, ["bytes=1000-"]);
    assertEquals(await Deno.readFile(got.path), TINY);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("checksum and size mismatches fail and keep no file", async () => {
  await using srv = serveModels();
  const cacheDir = await Deno.makeTempDir();
  try {
    const bad = "0".repeat(64);
    const err = await assertRejects(
      () => downloadModel("cpsam", { cacheDir, baseUrl: srv.url, sha256: bad }),
      CellposeError,
      `expected ${bad}; the downloaded file was deleted`,
    );
    assertEquals([err.code, err.value], ["DOWNLOAD_FAILED", TINY_SHA]);
    const size = await assertRejects(
      () => downloadModel("cpsam", { cacheDir, baseUrl: srv.url, size: 1234 }),
      CellposeError,
      `the server sends ${TINY.length} bytes`,
    );
    assertEquals(size.code, "DOWNLOAD_FAILED");
    assertEquals([...Deno.readDirSync(cacheDir)], []);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("HTTP 404 and an unreachable host give errors that say how to get the file", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    {
      await using srv = serveModels();
      const err = await assertRejects(
        () => downloadModel("missing", { cacheDir, baseUrl: srv.url }),
        CellposeError,
        `HTTP 404 Not Found for ${srv.url}/missing`,
      );
      assertEquals([err.code, err.value], ["DOWNLOAD_FAILED", 404]);
    }
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const err = await assertRejects(
      () => downloadModel("cpsam", { cacheDir, baseUrl: `http://127.0.0.1:${port}` }),
      CellposeError,
      `cannot download the model: this machine cannot reach 127.0.0.1:${port}`,
    );
    assertEquals(err.code, "DOWNLOAD_FAILED");
    assert(err.message.includes("--pretrained_model /path/to/cpsam"), err.message);
    assert(err.message.includes(`copy it to ${join(cacheDir, "cpsam")}`), err.message);
    assertEquals([...Deno.readDirSync(cacheDir)], []);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("an aborted download is CANCELLED and keeps its .part", async () => {
  await using srv = serveModels({ cutAt: 500_000 }); // holds the body open 100 ms after 500 kB
  const cacheDir = await Deno.makeTempDir();
  try {
    const ctl = new AbortController();
    const err = await assertRejects(
      () =>
        downloadModel("cpsam", {
          cacheDir,
          baseUrl: srv.url,
          signal: ctl.signal,
          onProgress: () => ctl.abort(),
        }),
      CellposeError,
      "cancelled",
    );
    assertEquals(err.code, "CANCELLED");
    assert((await Deno.stat(join(cacheDir, "cpsam.part"))).size > 0);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("resolveModel: paths, cache names, .onnx files and MODEL_NOT_FOUND", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    await withEnv({ CELLPOSE_MODEL_URL: undefined }, async () => {
      const fixture = join(FIXTURES, "tiny-cpsam.pt");
      assertEquals(await resolveModel(fixture, { cacheDir }), {
        name: "tiny-cpsam",
        path: fixture,
        kind: "checkpoint",
      });
      await Deno.writeFile(join(cacheDir, "mine"), TINY);
      await Deno.writeTextFile(join(cacheDir, "other.onnx"), "");
      assertEquals(await resolveModel("mine", { cacheDir }), {
        name: "mine",
        path: join(cacheDir, "mine"),
        kind: "checkpoint",
      });
      assertEquals((await resolveModel("other", { cacheDir })).kind, "onnx");
      const missing = await assertRejects(
        () => resolveModel("/no/such/dir/model.pt", { cacheDir }),
        CellposeError,
        "model file /no/such/dir/model.pt not found",
      );
      assertEquals([missing.code, missing.value], ["MODEL_NOT_FOUND", "/no/such/dir/model.pt"]);
      const unknown = await assertRejects(
        () => resolveModel("nope", { cacheDir }),
        CellposeError,
        `model "nope" is neither a file nor a model in the cache ${cacheDir}`,
      );
      assertEquals(unknown.code, "MODEL_NOT_FOUND");
      assert(unknown.message.includes("mine, other, nuclei, cpsam"), unknown.message);
      // a checkpoint saved as <name>.pt is found by the name it is listed under
      await Deno.writeFile(join(cacheDir, "tuned.pt"), TINY);
      assert((await listModels({ cacheDir })).some((m) => m.name === "tuned"));
      assertEquals(await resolveModel("tuned", { cacheDir }), {
        name: "tuned",
        path: join(cacheDir, "tuned.pt"),
        kind: "checkpoint",
      });
      const notHosted = await assertRejects(
        () => downloadModel("cyto9", { cacheDir }),
        CellposeError,
        'no downloadable model "cyto9": known names are cpsam',
      );
      assertEquals(notHosted.code, "MODEL_NOT_FOUND");
      await assertRejects(
        () => resolveModel("cpsam", { cacheDir, download: false }),
        CellposeError,
        "is neither a file nor a model in the cache",
      );
    });
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

/** Max |a - b| over two arrays of equal length. */
Deno.test("loadModel downloads, converts once, caches and matches tiny-net-output", async () => {
  await using srv = serveModels();
  const cacheDir = await Deno.makeTempDir();
  const input = (await fixture("tiny-net-input")) as NdArray<Float32Array>;
  const expected = await fixture("tiny-net-output");
  const stagesOf = async (options: LoadModelOptions = {}) => {
    const stages = new Set<string>();
    const net = await loadModel("cpsam", {
      cacheDir,
      baseUrl: srv.url,
      device: "cpu",
      onProgress: (p) => stages.add(p.stage),
      ...options,
    });
    try {
      const out = await net.run(input);
      assertEquals(out.shape, expected.shape);
      const err = maxAbsDiff(out.data, expected.data as Float32Array);
      assert(err <= (options.precision === "fp16" ? 1e-2 : 1e-4), `max abs error ${err}`);
      assertEquals([net.name, net.device, net.bsize], ["cpsam", "cpu", 256]);
    } finally {
      await net.dispose();
    }
    return [...stages];
  };
  try {
    const onnx = join(cacheDir, "cpsam.onnx");
    assertEquals(await stagesOf(), ["download", "verify", "convert", "load"]);
    const built = (await Deno.stat(onnx)).mtime;
    assertEquals(await stagesOf(), ["load"]); // cached: no hashing, no conversion
    // touched but unchanged: hashed again, not rebuilt
    await Deno.utime(join(cacheDir, "cpsam"), new Date(), new Date(Date.now() - 60_000));
    assertEquals(await stagesOf(), ["verify", "load"]);
    assertEquals((await Deno.stat(onnx)).mtime, built);
    assertEquals(await stagesOf(), ["load"]);
    // a record of another checkpoint (changed content): rebuilt
    const record = JSON.parse(await Deno.readTextFile(`${onnx}.json`));
    await Deno.writeTextFile(`${onnx}.json`, JSON.stringify({ ...record, size: 1, sha256: "1" }));
    assertEquals(await stagesOf(), ["verify", "convert", "load"]);
    assertEquals(JSON.parse(await Deno.readTextFile(`${onnx}.json`)), record);
    // the same checkpoint converted by an older graph builder (no version, or a lower one): rebuilt
    assertEquals(record.graph, GRAPH_VERSION);
    for (const graph of [undefined, GRAPH_VERSION - 1]) {
      await Deno.writeTextFile(`${onnx}.json`, JSON.stringify({ ...record, graph }));
      assertEquals((await listModels({ cacheDir }))[0].variants[0].current, false);
      assertEquals(await stagesOf(), ["verify", "convert", "load"]);
      assertEquals(JSON.parse(await Deno.readTextFile(`${onnx}.json`)), record);
    }
    // fp16 variant beside it
    assertEquals(await stagesOf({ precision: "fp16" }), ["verify", "convert", "load"]);
    const [m] = await listModels({ cacheDir });
    assertEquals(m.variants.map((v) => [v.precision, v.path, v.current]), [
      ["fp32", onnx, true],
      ["fp16", join(cacheDir, "cpsam-fp16.onnx"), true],
    ]);
    assert(m.converted && m.variants.every((v) => v.size > 0));
    // an .onnx path loads as is
    const net = await loadModel(onnx, { device: "cpu", cacheDir });
    assertEquals(net.name, "cpsam");
    await net.dispose();
    await assertRejects(() => convertModel(onnx, { cacheDir }), CellposeError, "already an ONNX");
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("a checkpoint that no longer matches its download checksum is refused", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    const path = join(cacheDir, "cpsam");
    await Deno.writeFile(path, TINY);
    await Deno.writeTextFile(`${path}.sha256`, `${"ab".repeat(32)}  cpsam\n`);
    const err = await assertRejects(
      () => convertModel("cpsam", { cacheDir }),
      CellposeError,
      `${path} has SHA-256 ${TINY_SHA}, but ${path}.sha256 recorded ${"ab".repeat(32)}`,
    );
    assertEquals(err.code, "BAD_MODEL");
    const missing = await assertRejects(
      () => loadModel(join(cacheDir, "nothing.pt"), { cacheDir }),
      CellposeError,
      `model file ${join(cacheDir, "nothing.pt")} not found`,
    );
    assertEquals(missing.code, "MODEL_NOT_FOUND");
    assertEquals([...Deno.readDirSync(cacheDir)].map((e) => e.name).sort(), [
      "cpsam",
      "cpsam.sha256",
    ]);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});
