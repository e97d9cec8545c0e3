/**
 * `cellpose worker redis://HOST:PORT`: runs block jobs from a Redis queue until stopped (Ctrl+C
 * or SIGTERM: the running block is cancelled and its job put back for another worker).
 *
 * @example
 * ```ts ignore
 * import { workerCommand } from "./worker.ts";
 * await workerCommand.run(["redis://127.0.0.1:6379", "--device", "cpu"]); // until SIGTERM
 * ```
 * @module
 */
import { CellposeError } from "../../core/errors.ts";
import { runWorker } from "../../distributed/worker.ts";
import { formatOptions, parseArgs } from "../args.ts";
import { type Command, EXIT } from "../command.ts";
import { loadModelForCli } from "../model.ts";
import { createProgress } from "../progress.ts";
import { workerModelFlags } from "./block.ts";

const options = {
  queue: {
    kind: "string",
    default: "cellpose",
    placeholder: "NAME",
    description: "queue (key prefix) shared with `segment --distributed`",
    group: "Worker",
  },
  claim_after: {
    kind: "number",
    min: 1,
    default: 60,
    placeholder: "S",
    description: "take over a job its worker has not touched for S seconds (a dead worker)",
    group: "Worker",
  },
  name: {
    kind: "string",
    placeholder: "NAME",
    description: "this worker's name in the queue. Default: host-pid-random",
    group: "Worker",
  },
  ...workerModelFlags,
} as const;

const help = `cellpose worker: run block jobs from Redis until stopped.

Usage: deno task cellpose worker redis://HOST:PORT [options]

Start one on each machine (or GPU); then \`cellpose segment IMAGE --distributed redis://HOST:PORT\`
anywhere plans the image and queues its blocks. The image and the output folder must be on
storage every worker sees, under the same path. A worker that dies leaves its job pending: another
takes it over after --claim_after seconds. Stop with Ctrl+C or SIGTERM.

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
      "give the Redis URL. Example: cellpose worker redis://10.0.0.5:6379",
      positionals,
    );
  }
  const [url] = positionals;
  const progress = createProgress({ total: 1, tty: false });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, onSignal);
  try {
    const r = await runWorker(url, {
      queue: v.queue,
      name: v.name,
      claimAfterMs: v.claim_after * 1000,
      signal: stop.signal,
      loadModel: (model) =>
        loadModelForCli({
          pretrained_model: v.pretrained_model ?? model,
          device: v.device,
          fp16: v.fp16,
        }, progress),
      onEvent: (e) => {
        if (e.type === "ready") progress.note(`worker ${e.worker}: waiting for jobs on ${url}`);
        else if (e.type === "start") {
          progress.note(
            `block ${e.block} of ${e.image}: started${e.claimed ? " (taken over)" : ""}`,
          );
        } else if (e.type === "done") {
          progress.note(
            `block ${e.block}: ${
              e.skipped ? "already done" : `done in ${(e.ms / 1000).toFixed(1)} s`
            }`,
          );
        } else if (e.type === "failed") progress.note(`block ${e.block}: FAILED: ${e.message}`);
        else progress.note(`block ${e.block}: stopped, job put back`);
      },
    });
    progress.note(`worker stopped after ${r.blocks} blocks`);
  } finally {
    for (const s of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(s, onSignal);
  }
  return EXIT.ok;
}

/** The `worker` command. */
export const workerCommand: Command = { name: "worker", help, run };
