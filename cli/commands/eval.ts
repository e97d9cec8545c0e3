/**
 * `cellpose eval <predicted> <ground truth>`: scores predicted label images against ground truth
 * with cellpose's average precision and the Cellpose paper's error rate.
 *
 * @example
 * ```ts
 * import { evalCommand } from "./eval.ts";
 * const code = await evalCommand.run(["../shared/data/dsb2018", "../shared/data/dsb2018"]);
 * console.log(code); // 0 (and a table with AP 1.000 for every image)
 * ```
 * @module
 */
import { basename, extname } from "node:path";
import { CellposeError } from "../../core/errors.ts";
import { averagePrecision, errorRate, type MatchCounts, readImage } from "../../mod.ts";
import { formatOptions, parseArgs } from "../args.ts";
import { type Command, describeError, EXIT } from "../command.ts";
import { type EvalPair, evalPairs, pathKind } from "../../io/files.ts";

const options = {
  thresholds: {
    kind: "numbers",
    default: [0.5, 0.75, 0.9],
    placeholder: "IOU,...",
    description: "IoU thresholds at which a predicted mask counts as matching a true one",
    group: "Options",
  },
  json: {
    kind: "boolean",
    description: "print the results as one JSON object on stdout instead of a table",
    group: "Options",
  },
} as const;

const help =
  `cellpose eval: how good are the masks? Compares predicted label images with ground truth.

Usage: deno task cellpose eval <predicted> <ground_truth> [--thresholds 0.5,0.75,0.9] [--json]

<predicted> and <ground_truth> are two folders, or two label image files (.tif .png .npy).
Files are paired by name: the ground truth <name>_masks.tif (or any label image, if the folder
has no *_masks files) goes with the prediction <name>_cp_masks.tif (what \`segment --save_tif\`
writes), or <name>_masks.* or the same file name in the predicted folder. Ground truth without
a prediction is listed and left out.

For each image and IoU threshold t, a predicted mask matches a true mask when their
intersection over union is at least t (one-to-one). Then:
  AP = TP / (TP + FP + FN)           cellpose's "average precision" (1.0 is perfect)
  error rate = (FP + FN) / (TP + FN) at IoU 0.5, as in the Cellpose paper (0.0 is perfect)
TP: matched masks, FP: predicted masks with no match, FN: true masks that were missed.
The summary gives AP averaged over images and TP/FP/FN summed over images.

Examples:
  deno task cellpose segment images/ --save_tif --savedir results/
  deno task cellpose eval results/ images/
  deno task cellpose eval cell_cp_masks.tif cell_masks.tif --thresholds 0.5 --json

${
    formatOptions(options)
  }Exit codes: 0 every pair scored, 1 some pair could not be read (or no pair found), 2 wrong
command line.`;

const stemOf = (f: string) => basename(f).slice(0, -extname(f).length);

async function isDir(path: string): Promise<boolean> {
  const k = await pathKind(path);
  if (!k) throw new CellposeError("BAD_PARAMETER", `no such file or folder: ${path}`, path);
  return k === "dir";
}

async function readLabels(path: string) {
  const { image } = await readImage(path);
  return image;
}

const f3 = (x: number) => x.toFixed(3);

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals, help: wantHelp } = parseArgs(argv, options);
  if (wantHelp) {
    console.log(help);
    return EXIT.ok;
  }
  if (positionals.length !== 2) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `eval needs two arguments, <predicted> and <ground_truth>; got ${positionals.length}`,
      positionals,
    );
  }
  const thresholds = v.thresholds;
  if (!thresholds.length || thresholds.some((t) => t <= 0 || t > 1)) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `--thresholds must be IoU values in (0, 1], got ${thresholds.join(",")}`,
      thresholds,
    );
  }
  const [predPath, gtPath] = positionals;
  const [predIsDir, gtIsDir] = [await isDir(predPath), await isDir(gtPath)];
  if (predIsDir !== gtIsDir) {
    throw new CellposeError(
      "BAD_PARAMETER",
      "give two folders or two files, not one of each",
      positionals,
    );
  }
  const { pairs, missing } = predIsDir
    ? await evalPairs(predPath, gtPath)
    : { pairs: [{ name: stemOf(gtPath), pred: predPath, gt: gtPath }], missing: [] as string[] };
  const failures: string[] = [];
  const images: (EvalPair & MatchCounts & { errorRate: number })[] = [];
  for (const pair of pairs) {
    try {
      const [pred, gt] = [await readLabels(pair.pred), await readLabels(pair.gt)];
      const ap = averagePrecision(gt, pred, thresholds);
      images.push({ ...pair, ...ap, errorRate: errorRate(gt, pred) });
    } catch (e) {
      failures.push(`${pair.name}: ${describeError(e)}`);
    }
  }
  const sum = (k: "tp" | "fp" | "fn") =>
    thresholds.map((_, i) => images.reduce((s, im) => s + im[k][i], 0));
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
  const summary = {
    thresholds,
    images,
    meanAP: thresholds.map((_, i) => mean(images.map((im) => im.ap[i]))),
    tp: sum("tp"),
    fp: sum("fp"),
    fn: sum("fn"),
    meanErrorRate: mean(images.map((im) => im.errorRate)),
    failures,
    missing,
  };
  if (v.json) console.log(JSON.stringify(summary));
  else {
    const width = Math.max(5, ...images.map((im) => im.name.length)) + 2;
    const apHead = thresholds.map((t) => `AP@${t.toFixed(2)}`.padStart(8)).join("");
    console.log(
      `${"image".padEnd(width)}${apHead}${"TP".padStart(6)}${"FP".padStart(6)}${"FN".padStart(6)}` +
        `  error rate   (TP/FP/FN at IoU ${thresholds[0]})`,
    );
    for (const im of images) {
      console.log(
        `${im.name.padEnd(width)}${im.ap.map((a) => f3(a).padStart(8)).join("")}` +
          `${String(im.tp[0]).padStart(6)}${String(im.fp[0]).padStart(6)}${
            String(im.fn[0]).padStart(6)
          }  ${f3(im.errorRate)}`,
      );
    }
    console.log(`\nmean over ${images.length} image${images.length === 1 ? "" : "s"}:`);
    thresholds.forEach((t, i) => {
      console.log(
        `  IoU ${t.toFixed(2)}: AP ${f3(summary.meanAP[i])}  TP ${summary.tp[i]}  FP ${
          summary.fp[i]
        }  FN ${summary.fn[i]}`,
      );
    });
    console.log(`  error rate (IoU 0.5, mean per image): ${f3(summary.meanErrorRate)}`);
  }
  if (missing.length) {
    console.error(
      `note: ${missing.length} ground-truth file${missing.length === 1 ? " has" : "s have"} no ` +
        `prediction in ${predPath} and ${missing.length === 1 ? "is" : "are"} not scored: ` +
        `${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`,
    );
  }
  for (const f of failures) console.error(`error: ${f}`);
  if (!images.length) {
    console.error("error: no image pair could be scored");
    return EXIT.failed;
  }
  return failures.length ? EXIT.failed : EXIT.ok;
}

/** The `eval` command. */
export const evalCommand: Command = {
  name: "eval",
  help,
  run,
};
