/**
 * The Redis side of distributed runs: connecting with a bound on the time to get an answer (a URL
 * where nothing listens, or something that never replies, is a BAD_PARAMETER error naming the URL
 * within `timeoutMs`, never a hang), and the names of the keys a queue uses. One queue (default
 * `cellpose`) serves many runs: a stream of block jobs `<queue>:jobs` read by the consumer group
 * `workers`, and per run its plan `<queue>:run:<plan id>` and a stream of finished blocks
 * `<queue>:done:<plan id>`.
 *
 * @example
 * ```ts ignore
 * import { connectRedis, queueKeys } from "./redis.ts";
 * const redis = await connectRedis("redis://127.0.0.1:6379");
 * console.log(await redis.xLen(queueKeys().jobs));
 * redis.destroy();
 * ```
 * @module
 */
import { createClient } from "@redis/client";
import { CellposeError } from "../core/errors.ts";

/** A node-redis client that fails its first connection at once and later retries a minute. */
function newClient(url: string, timeoutMs: number, state: { connected: boolean }) {
  return createClient({
    url,
    socket: {
      connectTimeout: timeoutMs,
      reconnectStrategy: (retries: number, cause: Error) =>
        state.connected && retries < 60 ? 1000 : cause,
    },
  });
}

/** A connected node-redis client. */
export type Redis = ReturnType<typeof newClient>;

/** The keys of queue `queue` (see the module doc). */
export function queueKeys(queue = "cellpose") {
  return {
    jobs: `${queue}:jobs`,
    group: "workers",
    run: (id: string) => `${queue}:run:${id}`,
    done: (id: string) => `${queue}:done:${id}`,
  };
}

/**
 * Connects to the Redis at `url` (`redis://[user:password@]HOST:PORT[/db]`) and checks it answers
 * a PING. Throws BAD_PARAMETER naming the URL when it is not redis:// or rediss://, or when no
 * answer comes within `timeoutMs`. Once connected, a dropped connection is retried
 * for up to a minute.
 */
export async function connectRedis(url: string, timeoutMs = 5000): Promise<Redis> {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !["redis:", "rediss:"].includes(parsed.protocol) || !parsed.hostname) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `a Redis URL looks like redis://HOST:PORT, got ${JSON.stringify(url)}`,
      url,
    );
  }
  const state = { connected: false };
  let lastError = "";
  const client = newClient(url, timeoutMs, state);
  client.on("error", (e: Error) => (lastError = e.message));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([client.connect().then(() => client.ping()), deadline]);
    state.connected = true;
    return client;
  } catch (e) {
    client.destroy();
    const why = lastError || (e as Error).message;
    throw new CellposeError(
      "BAD_PARAMETER",
      `Redis at ${url} does not answer (${why}): is redis-server running there, and reachable ` +
        "from this machine?",
      url,
      { cause: e },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Creates the queue's consumer group (and stream) unless it exists. */
export async function ensureGroup(redis: Redis, queue?: string): Promise<void> {
  const k = queueKeys(queue);
  try {
    await redis.xGroupCreate(k.jobs, k.group, "0", { MKSTREAM: true });
  } catch (e) {
    if (!String((e as Error).message).includes("BUSYGROUP")) throw e;
  }
}
