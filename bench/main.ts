/**
 * `deno task bench`: runs every `bench/*.bench.ts` (or those named on the command line) in turn.
 * Each exports a default async function that prints its own table with ratios.
 * @module
 */
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const only = Deno.args;
const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".bench.ts"))
  .sort();
for (const f of files) {
  if (only.length && !only.some((o) => f.startsWith(o))) continue;
  console.log(`\n## ${f.replace(".bench.ts", "")}`);
  const mod = await import(new URL(f, import.meta.url).href);
  await mod.default();
}
