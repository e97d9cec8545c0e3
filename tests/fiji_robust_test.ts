/**
 * The Fiji bridge against a server that answers badly (issue 12), in real ImageJ 1.53 under Xvfb:
 * a small HTTP server of the test's own gives, per path prefix, an unexpected job id, truncated
 * JSON, JSON nested 100 000 deep, a job stuck in "running" (a segmentation and a training), and
 * an endless answer. Each Segment
 * must end in bounded time with a clear error in the Log (and `lastError` for macros), never a
 * stack trace, a hang or a silent stop; the stuck job is cancelled (DELETE); no temp file is left.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { imagejHome, imagejMissing, runMacro } from "./imagej.ts";

/** The bad answers, by the first path segment of the "server" address the macro uses. */
function badServer(deletes: string[]): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const [, kind, ...rest] = url.pathname.split("/");
    const path = "/" + rest.join("/");
    await req.body?.cancel().catch(() => {});
    const json = (body: string) =>
      new Response(body, { headers: { "content-type": "application/json" } });
    if (req.method === "DELETE") {
      deletes.push(`${kind} ${path}`);
      return json('{"status":"cancelled"}');
    }
    if (req.method === "POST" && path === "/v1/segment") {
      if (kind === "badid") return json('{"id":"../../v1/models/x y","status":"queued"}');
      if (kind === "truncated") return json('{"id":"abc","status":"que');
      if (kind === "deep") return json("[".repeat(100_000));
      return json(`{"id":"${kind}1","status":"queued"}`);
    }
    if (path === "/v1/jobs/stuck1") {
      return json('{"id":"stuck1","status":"running","fraction":0.25}');
    }
    if (req.method === "POST" && path === "/v1/train") {
      return json('{"id":"train1","status":"queued"}');
    }
    if (path === "/v1/train/train1") {
      return json(
        '{"id":"train1","status":"running","fraction":0.5,"epoch":1,"nEpochs":2,"loss":0.7}',
      );
    }
    if (path === "/v1/jobs/endless1") {
      const chunk = new TextEncoder().encode(" ".repeat(1 << 16));
      let sent = 0;
      return new Response(
        new ReadableStream({
          pull(c) {
            sent += chunk.length;
            if (sent > 1 << 30) c.close(); // 1 GiB at most, should the bridge not stop
            else c.enqueue(chunk);
          },
        }),
        { headers: { "content-type": "application/json" } },
      );
    }
    return new Response('{"message":"not here"}', { status: 404 });
  });
}

Deno.test({
  name:
    "fiji robust: bad job id, truncated and deep JSON, a job stuck in running, an endless answer: clear errors in bounded time",
  ignore: imagejMissing(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const home = await imagejHome("fiji_robust_");
    const tmp = join(home, "tmp");
    await Deno.mkdir(tmp);
    const deletes: string[] = [];
    const server = badServer(deletes);
    const base = `http://127.0.0.1:${server.addr.port}`;
    const out = join(home, "result.txt");
    const cases = ["badid", "truncated", "deep", "stuck", "endless"];
    const macro = `
newImage("cells", "8-bit ramp", 64, 64, 1);
kinds = newArray(${cases.map((c) => `"${c}"`).join(", ")});
text = "";
for (i = 0; i < kinds.length; i++) {
  t0 = getTime();
  run("Segment...", "server=${base}/" + kinds[i] + " token=[] model=[] diameter=0 flow=0.4 cell=0 minimum=15 give=3");
  e = call("cellpose.CellposeBridge.lastError");
  text = text + kinds[i] + "\\t" + (getTime() - t0) + "\\t" + replace(e, "\\n", " ") + "\\n";
}
// Train... waits under the same deadline (the Segment dialog saved give=3)
newImage("labels", "16-bit black", 64, 64, 1);
t0 = getTime();
run("Train...", "server=${base}/stucktrain image=cells labels=labels model=m epochs=2 learning=0.001");
e = call("cellpose.CellposeBridge.lastError");
text = text + "stucktrain\\t" + (getTime() - t0) + "\\t" + replace(e, "\\n", " ") + "\\n";
File.saveString(text + "LOG\\n" + getInfo("log"), "${out}");
run("Quit");
`;
    try {
      await runMacro(home, macro, out, 240_000, [`-Djava.io.tmpdir=${tmp}`]);
      const [table, log] = (await Deno.readTextFile(out)).split("LOG\n");
      const rows = new Map(
        table.trim().split("\n").map((l) => {
          const [kind, ms, error] = l.split("\t");
          return [kind, { ms: Number(ms), error }];
        }),
      );
      console.log([...rows].map(([k, r]) => `${k}: ${r.ms} ms: ${r.error}`).join("\n"));
      const want: Record<string, RegExp> = {
        badid: /unexpected job id for POST \/v1\/segment: "\.\.\/\.\.\/v1\/models\/x y"/,
        truncated:
          /answer to POST \/v1\/segment is not valid JSON \(the answer ends inside a string/,
        deep: /not valid JSON \(nested deeper than 64/,
        stuck: /The segmentation made no progress for 3 s \(server says: running 0\.25\); gave up/,
        stucktrain:
          /The training made no progress for 3 s \(server says: running 0\.5 0\.7\); gave up/,
        endless:
          /answer to GET \/endless\/v1\/jobs\/endless1 is larger than 4 MiB; stopped reading/,
      };
      for (const kind of [...cases, "stucktrain"]) {
        const r = rows.get(kind);
        assert(r, `no row for ${kind}`);
        assert(want[kind].test(r.error), `${kind}: ${r.error}`);
        assert(r.ms < 60_000, `${kind} took ${r.ms} ms`);
        assert(
          log.includes(`Cellpose-SAM error: ${r.error.slice(0, 40)}`),
          `${kind} not in the Log`,
        );
      }
      assert(!/Exception|\tat /.test(log), `a stack trace in the Log:\n${log}`);
      assertEquals(
        deletes,
        ["stuck /v1/jobs/stuck1", "stucktrain /v1/train/train1"],
        "the stuck jobs were cancelled",
      );
      assertEquals([...Deno.readDirSync(tmp)].map((e) => e.name), [], "temp files left behind");
    } finally {
      await server.shutdown();
      await Deno.remove(home, { recursive: true });
    }
  },
});
