/**
 * `cellpose merge plan.json`: once every block of a planned run has its result, merges them and
 * writes the label outputs (TIFF strip by strip, OME-Zarr labels chunk by chunk).
 *
 * @example
 * ```ts ignore
 * import { mergeCommand } from "./merge.ts";
 * console.log(await mergeCommand.run(["/shared/plan.json"])); // 0
 * ```
 * @module
 */
import { CellposeError } from "../../core/errors.ts";
import { mergeRun } from "../../distributed/merge_run.ts";
import { readRunPlan } from "../../distributed/run_plan.ts";
import { formatOptions, parseArgs } from "../args.ts";
import { type Command, EXIT } from "../command.ts";

const options = {
  keep_blocks: {
    kind: "boolean",
    description: "keep the block results (default: removed after the merge)",
    group: "Merge",
  },
  json: { kind: "boolean", description: "print the result as JSON", group: "Merge" },
} as const;

const help = `cellpose merge: merge the blocks of a planned run into its labels.

Usage: deno task cellpose merge PLAN.json [options]

Refuses, naming them, when blocks have no result yet or results were made by another plan.

${formatOptions(options)}`;

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals, help: wantHelp } = parseArgs(argv, options);
  if (wantHelp) {
    console.log(help);
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    throw new CellposeError(
      "BAD_PARAMETER",
      "give the plan: cellpose merge plan.json",
      positionals,
    );
  }
  const plan = await readRunPlan(positionals[0]);
  const r = await mergeRun(plan, { keepBlocks: v.keep_blocks });
  if (v.json) console.log(JSON.stringify(r));
  else {
    console.error(
      `${r.nMasks} masks from ${plan.blocks.count} blocks, wrote ${r.outputs.join(", ")} ` +
        `(${(Object.values(r.timings).reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s)`,
    );
  }
  return EXIT.ok;
}

/** The `merge` command. */
export const mergeCommand: Command = { name: "merge", help, run };
