/**
 * `cellpose block plan.json --index I`: runs one block of a planned run (a job array task),
 * storing its result in the plan's work folder. A block already done for this plan is skipped.
 *
 * @example
 * ```ts ignore
 * import { blockCommand } from "./block.ts";
 * const code = await blockCommand.run(["/shared/plan.json", "--index", "3", "--device", "cpu"]);
 * console.log(code); // 0
 * ```
 * @module
 */
import { CellposeError } from "../../core/errors.ts";
import { runPlannedBlock } from "../../distributed/block_job.ts";
import { readRunPlan } from "../../distributed/run_plan.ts";
import { formatOptions, parseArgs } from "../args.ts";
import { type Command, EXIT } from "../command.ts";
import { loadModelForCli, modelOptions } from "../model.ts";
import { createProgress } from "../progress.ts";

/** `--pretrained_model` without a default: the plan's model unless given. */
export const workerModelFlags = {
  pretrained_model: {
    kind: "string",
    placeholder: "NAME|PATH",
    description: "model on this machine. Default: the one the run was planned with",
    group: "Model",
  },
  device: modelOptions.device,
  fp16: modelOptions.fp16,
} as const;

const options = {
  index: {
    kind: "integer",
    min: 0,
    placeholder: "I",
    description: "the block to run, 0 .. blocks - 1 (e.g. $SLURM_ARRAY_TASK_ID; LSF: " +
      "$((LSB_JOBINDEX - 1)))",
    group: "Block",
  },
  force: {
    kind: "boolean",
    description: "compute the block even when its result is already there",
    group: "Block",
  },
  json: { kind: "boolean", description: "print the result as JSON", group: "Block" },
  ...workerModelFlags,
} as const;

const help = `cellpose block: run one block of a planned run (see \`cellpose plan --help\`).

Usage: deno task cellpose block PLAN.json --index I [options]

The result goes to the plan's work folder; once every block has one, run \`cellpose merge\`.
Blocks are independent: run them in any order, on any node, again if a task died.

${formatOptions(options)}`;

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals, help: wantHelp } = parseArgs(argv, options);
  if (wantHelp) {
    console.log(help);
    return EXIT.ok;
  }
  if (positionals.length !== 1 || v.index === undefined) {
    throw new CellposeError(
      "BAD_PARAMETER",
      "give the plan and --index. Example: cellpose block plan.json --index $SLURM_ARRAY_TASK_ID",
      positionals,
    );
  }
  const plan = await readRunPlan(positionals[0]);
  const progress = createProgress({ total: 1 });
  const model = await loadModelForCli({
    pretrained_model: v.pretrained_model ?? plan.model,
    device: v.device,
    fp16: v.fp16,
  }, progress);
  try {
    const r = await runPlannedBlock(plan, v.index, model, { force: v.force });
    const what = r.skipped
      ? "already done"
      : `${r.nLabels} masks in its region, ${(r.ms / 1000).toFixed(1)} s`;
    if (v.json) console.log(JSON.stringify({ block: v.index, ...r }));
    else console.error(`block ${v.index} of ${plan.blocks.count}: ${what} -> ${r.path}`);
  } finally {
    await model.dispose();
  }
  return EXIT.ok;
}

/** The `block` command. */
export const blockCommand: Command = { name: "block", help, run };
