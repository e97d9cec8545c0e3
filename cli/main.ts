/**
 * `cellpose`: the command-line interface (`deno task cellpose <command> ...`). A thin shell over
 * `mod.ts`: it parses arguments, finds files, reports progress and writes outputs; all the work
 * is done by the library.
 *
 * Exit codes: 0 all done, 1 some files failed, 2 usage error, 3 model missing or unreadable.
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * const code = await main(["segment", "--help"]);
 * console.log(code); // 0
 * ```
 * @module
 */
import { type Command, describeError, EXIT, exitCodeFor } from "./command.ts";

/** The commands; each module is loaded only when its command runs (fast start for --help). */
const COMMANDS: { name: string; summary: string; load: () => Promise<Command> }[] = [
  {
    name: "segment",
    summary: "find the cells in images (files, folders, patterns) and write label images",
    load: async () => (await import("./commands/segment.ts")).segmentCommand,
  },
  {
    name: "eval",
    summary: "score predicted masks against ground truth (average precision, error rate)",
    load: async () => (await import("./commands/eval.ts")).evalCommand,
  },
  {
    name: "train",
    summary: "train (fine-tune) a network on labelled images, as cellpose's train_seg",
    load: async () => (await import("./commands/train.ts")).trainCommand,
  },
  {
    name: "models",
    summary: "list, download or convert models (model folder: ~/.cellpose/models)",
    load: async () => (await import("./commands/models.ts")).modelsCommand,
  },
  {
    name: "worker",
    summary: "run block jobs of `segment --distributed` from a Redis queue until stopped",
    load: async () => (await import("./commands/worker.ts")).workerCommand,
  },
  {
    name: "plan",
    summary: "plan a block-wise run of a large image for a job array (SLURM, LSF)",
    load: async () => (await import("./commands/plan.ts")).planCommand,
  },
  {
    name: "block",
    summary: "run one block of a planned run (one job array task)",
    load: async () => (await import("./commands/block.ts")).blockCommand,
  },
  {
    name: "merge",
    summary: "merge the blocks of a planned run into its label image",
    load: async () => (await import("./commands/merge.ts")).mergeCommand,
  },
  {
    name: "serve",
    summary: "start the local server for the web panel and the Fiji plugin",
    load: async () => (await import("./commands/serve.ts")).serveCommand,
  },
];

/** The top-level `--help`. */
function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  return `cellpose: Cellpose-SAM cell segmentation (cellpose v4 "cpsam"), without Python.

Usage: deno task cellpose <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n")}

Examples:
  deno task cellpose segment images/ --save_tif
  deno task cellpose segment 'plate1/*.tif' --diameter 25 --savedir results/
  deno task cellpose eval results/ ground_truth/
  deno task cellpose train --dir corrected/ --model_name_out my_cells
  deno task cellpose models list
  deno task cellpose serve --port 8000
  deno task cellpose segment slide.tif --distributed redis://10.0.0.5:6379   (workers:
  deno task cellpose worker redis://10.0.0.5:6379 on each machine)

Run \`deno task cellpose <command> --help\` for the options of a command.
Exit codes: 0 all done, 1 some files failed, 2 wrong command line, 3 model missing.
`;
}

/**
 * Runs the CLI with `args` (without the program name) and resolves to the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * console.log(await main(["eval", "pred/", "gt/", "--json"])); // 0, and the scores on stdout
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    const sub = name === "help" ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    console.log(sub ? (await sub.load()).help : topHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    console.error(
      `error: unknown command '${name}'. Commands: ${COMMANDS.map((c) => c.name).join(", ")}. ` +
        "Run `deno task cellpose --help`.",
    );
    return EXIT.usage;
  }
  try {
    return await (await entry.load()).run(rest);
  } catch (e) {
    const code = exitCodeFor(e);
    console.error(`error: ${describeError(e)}`);
    if (code === EXIT.usage) {
      console.error(`Run \`deno task cellpose ${name} --help\` for the options.`);
    }
    return code;
  }
}

if (import.meta.main) {
  // `deno task` runs in the repository folder; paths on the command line are the user's
  const userCwd = Deno.env.get("INIT_CWD");
  if (userCwd) Deno.chdir(userCwd);
  Deno.exit(await main(Deno.args));
}
