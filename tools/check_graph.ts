/**
 * Checks the module graph of the project's entry points (`deno info --json`): no import cycle
 * among the project's own modules, and the layer rules of the folder layout (the library does not
 * load the server, the CLI or Hono; `core/` imports only `core/`, `kernels/` only `core/`; `io/`,
 * `models/` and `dynamics/` do not import `pipeline/`; `metrics/` does not import `dynamics/`). Prints each cycle or broken rule and exits 1;
 * part of `deno task check`.
 *
 * Run: `./tools/deno run --allow-read --allow-run --allow-env tools/check_graph.ts`
 *
 * @module
 */
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

/** A module and what it imports (static and dynamic, code and types). */
interface InfoModule {
  specifier: string;
  dependencies?: {
    specifier: string;
    code?: { specifier?: string };
    type?: { specifier?: string };
  }[];
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Entry points whose graphs are checked. */
const ENTRIES = [
  "mod.ts",
  "server/mod.ts",
  "pipeline/large/mod.ts",
  "cli/main.ts",
  "plugin-ui/src/cellpose_panel.ts",
];

/** `path`'s prefix: what it may not import (a path prefix or a package name). */
const RULES: { from: string; not: string[]; why: string }[] = [
  { from: "core/", not: ["!core/"], why: "core/ holds shared helpers and imports only core/" },
  { from: "io/", not: ["pipeline/", "server/", "cli/"], why: "io/ is below the pipeline" },
  { from: "models/", not: ["pipeline/", "server/", "cli/"], why: "models/ is below the pipeline" },
  { from: "kernels/", not: ["!kernels/", "dynamics/"], why: "kernels/ needs only core/ contracts" },
  {
    from: "dynamics/",
    not: ["pipeline/", "server/", "cli/"],
    why: "dynamics/ is below the pipeline",
  },
  { from: "metrics/", not: ["dynamics/", "server/", "cli/"], why: "metrics need only labels" },
  {
    from: "plugin-ui/src/",
    not: ["server/", "cli/"],
    why: "the panel talks to the server over HTTP only (results are encoded by io/)",
  },
];

/** The library's entry must reach none of these. */
const LIBRARY_FORBIDDEN = ["server/", "cli/", "plugin-ui/", "npm:/hono", "npm:hono"];

async function info(entry: string): Promise<InfoModule[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno info ${entry} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] }).modules;
}

/** A project path for a file URL inside the repository, else the specifier itself. */
function local(specifier: string): string {
  if (!specifier.startsWith("file:")) return specifier;
  const rel = relative(ROOT, fileURLToPath(specifier));
  return rel.startsWith("..") ? specifier : rel;
}

function isOwn(name: string): boolean {
  return !name.includes(":") && !name.startsWith("node_modules/");
}

/** Import edges between modules, by project path. */
async function edges(entry: string): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>();
  for (const m of await info(entry)) {
    const from = local(m.specifier);
    const to = graph.get(from) ?? new Set<string>();
    graph.set(from, to);
    for (const d of m.dependencies ?? []) {
      for (const s of [d.code?.specifier, d.type?.specifier]) if (s) to.add(local(s));
    }
  }
  return graph;
}

/** Strongly connected components of more than one module (or a module importing itself). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], on = new Set<string>(), found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!isOwn(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.has(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (isOwn(v) && !index.has(v)) visit(v);
  return found;
}

/** `!dir/` forbids every own module outside `dir/` and `core/`; `dir/` forbids that folder. */
function forbidden(to: string, not: string[]): boolean {
  return not.some((n) =>
    n.startsWith("!")
      ? isOwn(to) && !to.startsWith(n.slice(1)) && !to.startsWith("core/")
      : to.startsWith(n)
  );
}

const problems: string[] = [];
const all = new Map<string, Set<string>>();
for (const entry of ENTRIES) {
  const graph = await edges(entry);
  for (const [k, v] of graph) all.set(k, new Set([...(all.get(k) ?? []), ...v]));
  if (entry === "mod.ts") {
    const reached = [...graph.keys()].filter((m) => LIBRARY_FORBIDDEN.some((f) => m.startsWith(f)));
    for (const m of reached) problems.push(`the library (mod.ts) loads ${m}`);
  }
}
for (const scc of cycles(all)) problems.push(`import cycle: ${scc.join(" <-> ")}`);
for (const [from, tos] of all) {
  for (const rule of RULES) {
    if (!from.startsWith(rule.from)) continue;
    for (const to of tos) {
      if (forbidden(to, rule.not)) problems.push(`${from} imports ${to} (${rule.why})`);
    }
  }
}
if (problems.length) {
  console.error(problems.join("\n"));
  console.error(`check_graph: ${problems.length} problem(s) in ${all.size} modules`);
  Deno.exit(1);
}
console.log(`check_graph: ${all.size} modules, no cycle, layers respected`);
