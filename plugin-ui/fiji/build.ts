/**
 * Builds the ImageJ/Fiji bridge: `deno task build:fiji` -> plugin-ui/fiji/build/Cellpose_SAM.jar.
 * Needs a JDK (javac, jar) and ImageJ's `ij.jar` (env `IJ_JAR`, default Debian's /usr/share/java/ij.jar,
 * or Fiji's `Fiji.app/jars/ij-*.jar`). The jar has no dependency beyond ij.jar and the JDK.
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { CellposeError } from "../../core/errors.ts";

const here = fileURLToPath(new URL(".", import.meta.url));

async function exec(cmd: string, args: string[], cwd?: string): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new CellposeError(
      "UNSUPPORTED",
      `${cmd} not found: install a JDK (apt-get install default-jdk-headless)`,
      cmd,
      {
        cause: e,
      },
    );
  }
  if (!out.success) {
    throw new CellposeError(
      "BAD_FILE",
      `${cmd} failed:\n${new TextDecoder().decode(out.stderr)}`,
      args,
    );
  }
}

/** Compiles the bridge and packs it with its plugins.config; returns the jar's path. */
export async function buildFijiBridge(
  ijJar = Deno.env.get("IJ_JAR") ?? "/usr/share/java/ij.jar",
): Promise<string> {
  try {
    await Deno.stat(ijJar);
  } catch {
    throw new CellposeError(
      "BAD_FILE",
      `ij.jar not found at ${ijJar}: set IJ_JAR or apt-get install imagej`,
      ijJar,
    );
  }
  const build = join(here, "build");
  const classes = join(build, "classes");
  await Deno.remove(build, { recursive: true }).catch(() => {});
  await Deno.mkdir(classes, { recursive: true });
  const sources = [...Deno.readDirSync(join(here, "src", "cellpose"))]
    .filter((e) => e.name.endsWith(".java"))
    .map((e) => join(here, "src", "cellpose", e.name));
  await exec("javac", ["--release", "11", "-nowarn", "-cp", ijJar, "-d", classes, ...sources]);
  await Deno.copyFile(join(here, "plugins.config"), join(classes, "plugins.config"));
  const jar = join(build, "Cellpose_SAM.jar");
  await exec("jar", ["cf", jar, "-C", classes, "."]);
  return jar;
}

if (import.meta.main) {
  console.log(await buildFijiBridge());
}
