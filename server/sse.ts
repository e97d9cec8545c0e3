/**
 * Server-Sent Events for a job: replays the job's events after `Last-Event-ID` (all of them for a
 * new client), then streams new ones as they happen and closes after the final state. A comment
 * line every `heartbeatMs` keeps proxies from closing an idle stream. A client that disconnects
 * only unsubscribes; the job goes on (cancel it with `DELETE /v1/jobs/:id`).
 *
 * Wire format per event: `id: <n>`, `event: status|progress`; every `data` has the job's `status`, `data: <JSON>`.
 *
 * @example
 * ```ts
 * import { formatEvent } from "./sse.ts";
 * console.log(formatEvent({ id: 1, type: "status", data: { status: "queued" } }));
 * // id: 1\nevent: status\ndata: {"status":"queued"}\n\n
 * ```
 * @module
 */
import { isFinal, type Job, type JobEvent, type JobQueue } from "./jobs.ts";

/** One event in the `text/event-stream` format. */
export function formatEvent(e: JobEvent): string {
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
}

/** The `text/event-stream` response for `job`, replaying events after `lastEventId`. */
export function jobEventStream<I, R>(
  queue: JobQueue<I, R>,
  job: Job<I, R>,
  lastEventId = 0,
  heartbeatMs = 15_000,
): Response {
  const enc = new TextEncoder();
  let stop = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let closed = false;
      const send = (e: JobEvent) => {
        if (closed || e.id <= lastEventId) return;
        controller.enqueue(enc.encode(formatEvent(e)));
        lastEventId = e.id;
        if (e.type === "status" && isFinal(e.data.status)) stop();
      };
      const beat = setInterval(() => {
        if (!closed) controller.enqueue(enc.encode(": keep-alive\n\n"));
      }, heartbeatMs);
      let unsubscribe = () => {};
      stop = () => {
        if (closed) return;
        closed = true;
        clearInterval(beat);
        unsubscribe();
        try {
          controller.close();
        } catch { /* already closed by the client */ }
      };
      // subscribe first, then replay: an event landing in between is deduplicated by its id
      unsubscribe = queue.subscribe(job.id, send);
      for (const e of [...job.events]) send(e);
      if (isFinal(job.status)) stop(); // nothing more will come (e.g. resumed after the end)
    },
    cancel() {
      stop();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
}
