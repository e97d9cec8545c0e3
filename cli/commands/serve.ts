/**
 * `cellpose serve`: starts the local HTTP server (segmentation API, progress events and the web
 * panel) until Ctrl+C.
 *
 * @example
 * ```ts ignore
 * import { serveCommand } from "./serve.ts";
 * await serveCommand.run(["--port", "8000"]); // serves until interrupted
 * ```
 * @module
 */
import { CellposeError } from "../../core/errors.ts";
import { join } from "node:path";
import { startServer } from "../../server/main.ts";
import { DEFAULT_PANEL_DIR } from "../../server/panel.ts";
import { buildPanel } from "../../plugin-ui/build.ts";
import { formatOptions, parseArgs } from "../args.ts";
import { type Command, EXIT } from "../command.ts";
import { modelOptions, precisionOf } from "../model.ts";

const options = {
  port: {
    kind: "integer",
    min: 0,
    default: 8000,
    placeholder: "PORT",
    description: "TCP port to listen on (0: any free port)",
    group: "Server",
  },
  host: {
    kind: "string",
    default: "127.0.0.1",
    placeholder: "HOST",
    description: "address to listen on; 127.0.0.1 = this computer only, 0.0.0.0 = the network " +
      "(then set --token)",
    group: "Server",
  },
  token: {
    kind: "string",
    placeholder: "SECRET",
    description: "require this token from clients (Authorization: Bearer SECRET); needed, 8 " +
      "characters or more, when --host is not this computer. Default: $CELLPOSE_TOKEN, else none",
    group: "Server",
  },
  data_dir: {
    kind: "string",
    placeholder: "FOLDERS",
    description: "folders (comma-separated) whose images clients may name by path in " +
      "POST /v1/segment_large?path= (huge images, read in place). Default: none",
    group: "Server",
  },
  ...modelOptions,
} as const;

const help = `cellpose serve: run the segmentation server for the web panel, Fiji and scripts.

Usage: deno task cellpose serve [--port 8000] [--host 127.0.0.1] [--token SECRET]

Starts a local HTTP server and prints its address; open it in a browser for the web panel, or
point the Fiji plugin at it. The model is loaded once and shared by all requests. Stop it with
Ctrl+C (or SIGTERM): running jobs are cancelled and the model is freed.

Examples:
  deno task cellpose serve
  deno task cellpose serve --port 9000 --device webgpu --fp16
  deno task cellpose serve --host 0.0.0.0 --token my-secret   (reachable from other computers)

${formatOptions(options)}`;

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals, help: wantHelp } = parseArgs(argv, options);
  if (wantHelp) {
    console.log(help);
    return EXIT.ok;
  }
  if (positionals.length) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `serve takes no file arguments, got '${positionals.join(" ")}'`,
      positionals,
    );
  }
  await ensurePanel();
  const server = await startServer({
    port: v.port,
    host: v.host,
    token: v.token,
    model: v.pretrained_model,
    device: v.device,
    precision: precisionOf(v),
    dataDirs: v.data_dir?.split(",").map((d) => d.trim()).filter(Boolean),
  });
  const stop = () => void server.close();
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const sig of signals) Deno.addSignalListener(sig, stop);
  await server.finished;
  for (const sig of signals) Deno.removeSignalListener(sig, stop);
  return EXIT.ok;
}

/** Builds the web panel on first use, so `/` serves it; the API works without it. */
async function ensurePanel(): Promise<void> {
  try {
    await Deno.stat(join(DEFAULT_PANEL_DIR, "cellpose-panel.js"));
  } catch {
    console.error("building the web panel (first start) ...");
    await buildPanel().catch((e) =>
      console.error(`the web panel could not be built: ${e.message}`)
    );
  }
}

/** The `serve` command. */
export const serveCommand: Command = {
  name: "serve",
  help,
  run,
};
