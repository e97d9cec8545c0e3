/**
 * The server's job queue on its own: concurrency, the bounded queue, cancel (also of work that
 * ignores its signal), failures, event order, and deletion of finished jobs by age and by total
 * result size (with a clock the test moves).
 */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { CellposeError } from "../core/errors.ts";
import { ServerError } from "../server/errors.ts";
import { createJobQueue, type JobContext } from "../server/jobs.ts";

/** Work that ends when the test says so. */
function controlled() {
  const runs = new Map<number, { ctx: JobContext; finish: (v: number) => void }>();
  const work = (n: number, ctx: JobContext) =>
    new Promise<number>((resolve) => runs.set(n, { ctx, finish: resolve }));
  return { runs, work };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("jobs: at most `concurrency` run; more wait; a full queue refuses with retryAfter", async () => {
  const { runs, work } = controlled();
  const q = createJobQueue(work, { concurrency: 2, maxQueued: 1, resultBytes: () => 1 });
  try {
    const a = q.submit(1, 10), b = q.submit(2, 10), c = q.submit(3, 10);
    assertEquals([a.status, b.status, c.status], ["running", "running", "queued"]);
    const full = assertThrows(() => q.submit(4, 10), ServerError);
    assertEquals(full.code, "QUEUE_FULL");
    assert((full.value as { retryAfter: number }).retryAfter >= 1);
    assertEquals(q.stats().queuedBytes, 10);

    runs.get(1)!.finish(100);
    await tick();
    assertEquals([a.status, a.result, c.status], ["done", 100, "running"]);
    runs.get(2)!.finish(200);
    runs.get(3)!.finish(300);
    assertEquals((await q.settled(c.id)).result, 300);
    assertEquals(q.stats().running, 0);
  } finally {
    q.close();
  }
});

Deno.test("jobs: events come in order; repeated progress is dropped; failures are kept", async () => {
  const q = createJobQueue((n: number, { onProgress }) => {
    onProgress({ stage: "normalize" });
    onProgress({ stage: "network", tilesDone: 0, tilesTotal: 2 });
    onProgress({ stage: "network", tilesDone: 0, tilesTotal: 2 });
    onProgress({ stage: "network", tilesDone: 2, tilesTotal: 2 });
    if (n < 0) throw new CellposeError("BAD_VALUE", "negative");
    return Promise.resolve(n);
  }, { resultBytes: () => 1, describe: (r) => ({ value: r }) });
  try {
    const ok = await q.settled(q.submit(5, 1).id);
    assertEquals(ok.events.map((e) => [e.id, e.type, e.data.status]), [
      [1, "status", "queued"],
      [2, "status", "running"],
      [3, "progress", "running"],
      [4, "progress", "running"],
      [5, "progress", "running"],
      [6, "status", "done"],
    ]);
    assertEquals(ok.events.at(-1)!.data, { status: "done", value: 5 });
    // a listener that throws (a closed stream) is dropped; the job and other listeners go on
    const { runs, work } = controlled();
    const q2 = createJobQueue(work, { resultBytes: () => 1 });
    const j2 = q2.submit(1, 1);
    const seen: string[] = [];
    q2.subscribe(j2.id, () => {
      throw new Error("stream closed");
    });
    q2.subscribe(j2.id, (e) => seen.push(String(e.data.status)));
    runs.get(1)!.finish(1);
    assertEquals((await q2.settled(j2.id)).status, "done");
    assertEquals(seen, ["done"]);
    q2.close();

    const bad = await q.settled(q.submit(-1, 1).id);
    assertEquals(bad.status, "failed");
    assertEquals(bad.error, { code: "BAD_VALUE", message: "negative" });
    const thrown = createJobQueue((): Promise<number> => {
      throw new Error("boom");
    }, { resultBytes: () => 1 });
    const j = await thrown.settled(thrown.submit(0, 1).id);
    assertEquals([j.status, j.error?.code], ["failed", "INTERNAL"]);
    thrown.close();
  } finally {
    q.close();
  }
});

Deno.test("jobs: cancel aborts the signal and ends the job at once; its slot frees when work returns", async () => {
  const { runs, work } = controlled();
  const q = createJobQueue(work, { concurrency: 1, resultBytes: () => 1 });
  try {
    const a = q.submit(1, 1), b = q.submit(2, 1);
    q.cancel(b.id); // waiting: removed from the queue
    assertEquals([b.status, q.stats().queued], ["cancelled", 0]);
    q.cancel(a.id); // running, and its work ignores the signal
    assertEquals(a.status, "cancelled");
    assert(runs.get(1)!.ctx.signal.aborted);
    const c = q.submit(3, 1);
    assertEquals([c.status, q.stats().running], ["queued", 1]);
    runs.get(1)!.finish(1); // the ignored result is dropped, the next job starts
    await tick();
    assertEquals([a.status, a.result, c.status], ["cancelled", undefined, "running"]);
    runs.get(3)!.finish(3);
    await q.settled(c.id);
  } finally {
    q.close();
  }
});

Deno.test("jobs: finished jobs are deleted after the TTL and, oldest first, over the size budget", async () => {
  let now = 1000;
  const q = createJobQueue((n: number) => Promise.resolve(n), {
    resultBytes: (n) => n,
    resultTtlMs: 60_000,
    maxResultBytes: 25,
    now: () => now,
  });
  try {
    const a = await q.settled(q.submit(10, 0).id);
    now += 10;
    const b = await q.settled(q.submit(10, 0).id);
    assertEquals(q.stats().resultBytes, 20);
    now += 10;
    const c = await q.settled(q.submit(10, 0).id); // 30 > 25: the oldest goes
    assertEquals([q.get(a.id), q.get(b.id)?.id, q.get(c.id)?.id], [undefined, b.id, c.id]);
    assertEquals(q.stats().resultBytes, 20);
    now += 60_000 - 10; // b is 60 s old, c 59.99 s
    q.prune();
    assertEquals([q.get(b.id), q.get(c.id)?.id], [undefined, c.id]);
    now += 10;
    q.prune();
    assertEquals([q.stats().stored, q.stats().resultBytes], [0, 0]);
    // a result alone over the budget is kept until it expires
    const big = await q.settled(q.submit(40, 0).id);
    assertEquals(q.get(big.id)?.result, 40);
  } finally {
    q.close();
  }
});
