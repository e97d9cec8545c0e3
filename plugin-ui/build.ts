/**
 * Builds the panel: `deno task build:panel` bundles `<cellpose-panel>` and everything it uses
 * (lit, the project's readers and writers) into one ES module, `plugin-ui/dist/cellpose-panel.js`,
 * next to `index.html`. The server serves this folder at `/`.
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";

const here = fileURLToPath(new URL(".", import.meta.url));

/** Bundles the panel into `dist/`; returns the folder. */
export async function buildPanel(): Promise<string> {
  const dist = join(here, "dist");
  await Deno.mkdir(dist, { recursive: true });
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--minify",
      join(here, "src", "cellpose_panel.ts"),
      "-o",
      join(dist, "cellpose-panel.js"),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new CellposeError(
      "BAD_FILE",
      `bundling the panel failed:\n${new TextDecoder().decode(out.stderr)}`,
      "plugin-ui",
    );
  }
  await Deno.copyFile(join(here, "index.html"), join(dist, "index.html"));
  return dist;
}

if (import.meta.main) console.log(await buildPanel());
