/**
 * `cellpose models list|download|convert`: the model folder from the command line.
 *
 * @example
 * ```ts
 * import { modelsCommand } from "./models.ts";
 * await modelsCommand.run(["list"]); // prints the models in ~/.cellpose/models
 * ```
 * @module
 */
import { convertModel, downloadModel, listModels, modelsDir, type Precision } from "../../mod.ts";
import { CellposeError } from "../../core/errors.ts";
import { formatOptions, parseArgs } from "../args.ts";
import { type Command, EXIT } from "../command.ts";
import { modelOptions, precisionOf, reportModelProgress, withWeightsHelp } from "../model.ts";
import { createProgress } from "../progress.ts";

const options = {
  fp16: {
    kind: "boolean",
    description: "convert: build the half-precision network (used by --fp16)",
    group: "Options",
  },
  quantize: modelOptions.quantize,
  force: {
    kind: "boolean",
    description: "convert: rebuild even when an up-to-date network exists",
    group: "Options",
  },
  json: {
    kind: "boolean",
    description: "print the result as JSON on stdout",
    group: "Options",
  },
} as const;

const help = `cellpose models: see, download and prepare the segmentation models.

Usage:
  deno task cellpose models list                  models in the model folder and downloadable ones
  deno task cellpose models download [NAME]       download a model (default: cpsam, ~1.2 GB)
  deno task cellpose models convert NAME|PATH     prepare a checkpoint for fast loading (ONNX)

The model folder is ${modelsDir()}
(set CELLPOSE_LOCAL_MODELS_PATH to use another one). Any cellpose v4 checkpoint copied into it
(the official cpsam or a model you fine-tuned in cellpose) can then be used by name:
\`segment --pretrained_model NAME\`. Converting is done automatically on first use; \`convert\`
only does it ahead of time. Converted networks are stored next to the checkpoint.

Examples:
  deno task cellpose models list
  deno task cellpose models download cpsam
  deno task cellpose models convert ~/models/my_finetuned_model --fp16
  deno task cellpose models convert cpsam --quantize int8

${formatOptions(options)}`;

const MB = 1024 * 1024;
const mb = (bytes?: number) => (bytes === undefined ? "?" : `${(bytes / MB).toFixed(0)} MB`);

async function list(json: boolean): Promise<number> {
  const models = await listModels();
  if (json) {
    console.log(JSON.stringify({ dir: modelsDir(), models }));
    return EXIT.ok;
  }
  console.log(`model folder: ${modelsDir()}`);
  if (!models.length) console.log("  (empty)");
  for (const m of models) {
    const state = m.downloaded ? mb(m.size) : `not downloaded (${m.url})`;
    const nets = m.variants.map((v) => `${v.precision}${v.current ? "" : " (outdated)"}`);
    console.log(
      `  ${m.name.padEnd(24)} ${state}${nets.length ? `  converted: ${nets.join(", ")}` : ""}`,
    );
  }
  return EXIT.ok;
}

async function download(name: string, json: boolean): Promise<number> {
  try {
    const got = await downloadModel(name, {
      onProgress: reportModelProgress(createProgress({ total: 1 })),
    });
    if (json) console.log(JSON.stringify(got));
    else console.log(`${name}: ${got.path} (${mb(got.size)}, sha256 ${got.sha256})`);
    return EXIT.ok;
  } catch (e) {
    throw e instanceof CellposeError ? withWeightsHelp(e, name) : e;
  }
}

async function convert(target: string, precision: Precision, force: boolean, json: boolean) {
  const out = await convertModel(target, {
    precision,
    force,
    onProgress: reportModelProgress(createProgress({ total: 1 })),
  });
  if (json) console.log(JSON.stringify(out));
  else {
    console.log(
      `${out.checkpoint} -> ${out.onnxPath} (${out.precision}${
        out.reused ? ", already up to date" : ""
      })`,
    );
  }
  return EXIT.ok;
}

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals, help: wantHelp } = parseArgs(argv, options);
  if (wantHelp) {
    console.log(help);
    return EXIT.ok;
  }
  const [action, ...rest] = positionals;
  const expect = (n: number, usage: string) => {
    if (rest.length > n) {
      throw new CellposeError("BAD_PARAMETER", `too many arguments; usage: ${usage}`, rest);
    }
  };
  switch (action) {
    case "list":
      expect(0, "models list");
      return await list(v.json);
    case "download":
      expect(1, "models download [NAME]");
      return await download(rest[0] ?? "cpsam", v.json);
    case "convert":
      expect(1, "models convert NAME|PATH");
      if (!rest.length) {
        throw new CellposeError("BAD_PARAMETER", "models convert needs a model name or path", rest);
      }
      return await convert(
        rest[0],
        precisionOf(v),
        v.force,
        v.json,
      );
    default:
      throw new CellposeError(
        "BAD_PARAMETER",
        action === undefined
          ? "models needs an action: list, download or convert"
          : `unknown models action '${action}': use list, download or convert`,
        action,
      );
  }
}

/** The `models` command. */
export const modelsCommand: Command = {
  name: "models",
  help,
  run,
};
