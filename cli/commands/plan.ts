/**
 * `cellpose plan IMAGE --out plan.json`: plans a block-wise run for a cluster without a
 * scheduler of its own (SLURM or LSF job arrays): the blocks, the whole image's normalisation and
 * the outputs, written as JSON for `cellpose block plan.json --index I` (one array task per block)
 * and `cellpose merge plan.json` (once all are done).
 *
 * @example
 * ```ts ignore
 * import { planCommand } from "./plan.ts";
 * const code = await planCommand.run(["/shared/slide.tif", "--out", "/shared/plan.json"]);
 * console.log(code); // 0
 * ```
 * @module
 */
import { basename, resolve } from "node:path";
import { CellposeError } from "../../core/errors.ts";
import { createRunPlan, writeRunPlan } from "../../distributed/run_plan.ts";
import { formatOptions, type OptionSpecs, parseArgs } from "../args.ts";
import { type Command, EXIT } from "../command.ts";
import { blockFlags, blockInputs, plannedModel, runLayout } from "../distributed.ts";
import { modelOptions } from "../model.ts";
import { options as segmentFlags, segmentOptions } from "./segment.ts";

/** segment's Segmentation flags, as the blocks will use them. */
const segmentation = Object.fromEntries(
  Object.entries(segmentFlags).filter(([, s]) => s.group === "Segmentation"),
) as OptionSpecs;

const options = {
  out: {
    kind: "string",
    placeholder: "PLAN.json",
    description: "where to write the plan (required)",
    group: "Plan",
  },
  work_dir: {
    kind: "string",
    placeholder: "FOLDER",
    description: "where the blocks' results wait for the merge, on storage every node sees. " +
      "Default: <savedir>/<name>_cp_blocks",
    group: "Plan",
  },
  savedir: {
    kind: "string",
    placeholder: "FOLDER",
    description: "folder of the label TIFF <name>_cp_masks.tif. Default: next to the image",
    group: "Plan",
  },
  save_tif: {
    kind: "boolean",
    description: "for an OME-Zarr image, also write the label TIFF (its labels group is always " +
      "written)",
    group: "Plan",
  },
  json: { kind: "boolean", description: "print the plan's summary as JSON", group: "Plan" },
  ...blockFlags,
  ...segmentation,
  pretrained_model: modelOptions.pretrained_model,
} as const;

const help = `cellpose plan: plan a block-wise run of one large image for a job array.

Usage: deno task cellpose plan IMAGE --out plan.json [options]

IMAGE is a TIFF or an OME-Zarr folder (0.4 or 0.5) on storage every node sees. The plan holds
the blocks, the whole image's normalisation (read once, here), the segmentation options, the
model name and where results go. Then run one task per block and merge:

  deno task cellpose plan slide.ome.zarr --out plan.json --diameter 17
  # SLURM: sbatch --array=0-<blocks - 1> ... with, in the task:
  deno task cellpose block plan.json --index $SLURM_ARRAY_TASK_ID
  deno task cellpose merge plan.json

A TIFF gets <savedir>/<name>_cp_masks.tif; an OME-Zarr image gets the label image cp_masks in
its labels group (and the TIFF with --save_tif). See the README, "Many machines".

${formatOptions(options)}`;

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals, help: wantHelp } = parseArgs(argv, options);
  if (wantHelp) {
    console.log(help);
    return EXIT.ok;
  }
  if (positionals.length !== 1 || !v.out) {
    throw new CellposeError(
      "BAD_PARAMETER",
      "give one image and --out. Example: cellpose plan slide.tif --out plan.json",
      positionals,
    );
  }
  const [image] = await blockInputs(positionals, {});
  if (!image) {
    throw new CellposeError("BAD_PARAMETER", `no image at ${positionals[0]}`, positionals);
  }
  const kind = (await Deno.stat(image)).isDirectory ? "zarr" : "tiff";
  const layout = runLayout(image, kind, {
    savedir: v.savedir,
    saveTif: v.save_tif,
    workDir: v.work_dir,
  });
  const plan = await createRunPlan(image, {
    ...layout,
    options: segmentOptions(v as never),
    model: plannedModel(v.pretrained_model),
    blockSize: v.block_size,
    halo: v.halo,
  });
  await writeRunPlan(v.out, plan);
  const n = plan.blocks.count;
  if (v.json) {
    console.log(JSON.stringify({
      plan: resolve(v.out),
      id: plan.id,
      blocks: n,
      workDir: plan.workDir,
      outputs: plan.outputs,
    }));
  } else {
    console.error(
      `plan ${plan.id}: ${n} blocks of ${plan.blocks.blockSize} px (halo ${plan.blocks.halo}) ` +
        `for ${basename(image)} (${plan.image.height} x ${plan.image.width})\n` +
        `  results in ${plan.workDir}\n` +
        `  next: cellpose block ${v.out} --index I   for I in 0..${n - 1} (e.g. --array=0-${
          n - 1
        })\n` +
        `  then: cellpose merge ${v.out}`,
    );
  }
  return EXIT.ok;
}

/** The `plan` command. */
export const planCommand: Command = { name: "plan", help, run };
