/**
 * A real redis-server (Debian's /usr/bin/redis-server) for the distributed tests and benchmark,
 * started on a free loopback port with its own data folder and no persistence.
 * @module
 */
import { connectRedis } from "../distributed/redis.ts";

/** A free loopback port (bound, then released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

/** A redis-server of the caller's own on a free loopback port, data in `dir`; `stop` ends it. */
export async function startRedis(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `redis://127.0.0.1:${port}`;
  const end = performance.now() + 10000;
  for (;;) {
    try {
      (await connectRedis(url, 500)).destroy();
      break;
    } catch (e) {
      if (performance.now() > end) {
        child.kill("SIGKILL");
        throw e;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}
