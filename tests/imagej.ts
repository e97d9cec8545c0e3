/**
 * Real ImageJ 1.53 (Debian's `imagej`, its ij.jar) under Xvfb for the Fiji bridge's tests: the
 * bridge jar installed into a fresh ImageJ home, a macro run to its end or to a deadline. ImageJ
 * runs in a session of its own (`setsid`), so a stuck ImageJ (a modal dialog waiting for a click
 * nobody makes) is killed with Xvfb and every child at the deadline, and the test fails with the
 * macro thread's Java stack instead of waiting forever on ImageJ's open pipes.
 * @module
 */
import { join } from "node:path";
import { buildFijiBridge } from "../plugin-ui/fiji/build.ts";
import { missing } from "./e2e.ts";

export const IJ_JAR = "/usr/share/java/ij.jar";
const XVFB = "/usr/bin/xvfb-run";

/** Whether ImageJ, Xvfb or a JDK is missing (the tests are then ignored). */
export function imagejMissing(): boolean {
  return missing(IJ_JAR, XVFB, "/usr/bin/javac", "/usr/bin/setsid");
}

/** A fresh ImageJ home with the bridge jar in its plugins folder. */
export async function imagejHome(prefix: string): Promise<string> {
  const jar = await buildFijiBridge(IJ_JAR);
  const home = await Deno.makeTempDir({ prefix });
  await Deno.mkdir(join(home, "plugins"), { recursive: true });
  await Deno.copyFile(jar, join(home, "plugins", "Cellpose_SAM.jar"));
  return home;
}

/**
 * Runs `macro` in ImageJ (home from {@link imagejHome}) until the file `done` is written (the
 * macro's last step before `run("Quit")`), gives ImageJ 15 s to quit, then stops it. Throws with
 * the macro thread's stack when ImageJ exits early or `timeoutMs` passes. `javaArgs` go before
 * `-jar` (e.g. `-Djava.io.tmpdir=...`).
 */
export async function runMacro(
  home: string,
  macro: string,
  done: string,
  timeoutMs: number,
  javaArgs: string[] = [],
): Promise<void> {
  const macroFile = join(home, "test.ijm");
  await Deno.writeTextFile(macroFile, macro);
  const proc = new Deno.Command("/usr/bin/setsid", {
    args: [
      XVFB,
      "-a",
      "-s",
      "-screen 0 1280x800x24",
      "java",
      "-Xmx1g",
      `-Duser.home=${home}`,
      `-Dplugins.dir=${home}`,
      ...javaArgs,
      "-jar",
      IJ_JAR,
      "-macro",
      macroFile,
    ],
    env: { HOME: home },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = proc.output(); // drains the pipes as ImageJ writes
  let exited = false;
  proc.status.then(() => (exited = true));
  let failure: string | undefined;
  const end = Date.now() + timeoutMs;
  while (!failure) {
    if ((await Deno.stat(done).catch(() => null))?.size) break;
    if (exited) failure = "ImageJ exited before the macro finished";
    else if (Date.now() > end) failure = `ImageJ did not finish within ${timeoutMs / 1000} s`;
    else await new Promise((r) => setTimeout(r, 250));
  }
  if (failure && !exited) await threadDump(proc.pid);
  const quitBy = Date.now() + 15_000; // run("Quit")
  while (!failure && !exited && Date.now() < quitBy) await new Promise((r) => setTimeout(r, 100));
  try {
    Deno.kill(-proc.pid, "SIGKILL"); // the session: xvfb-run, Xvfb and java
  } catch { /* already gone */ }
  const out = await output;
  if (failure) {
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    // the macro runs on ImageJ's main thread (renamed Run$_main once a command ran)
    const main = text.match(/^"(Run\$_)?main"[\s\S]*?\n\n/m)?.[0] ?? text.slice(-4000);
    throw new Error(`${failure}; the macro thread:\n${main}`);
  }
}

/** Makes the session's java print its threads' stacks to its stdout (SIGQUIT). */
async function threadDump(sessionPid: number): Promise<void> {
  const ps = await new Deno.Command("ps", { args: ["-o", "pid=,comm=", "-s", `${sessionPid}`] })
    .output();
  for (const line of new TextDecoder().decode(ps.stdout).split("\n")) {
    const [pid, comm] = line.trim().split(/\s+/);
    if (comm === "java") Deno.kill(Number(pid), "SIGQUIT");
  }
  await new Promise((r) => setTimeout(r, 1000));
}
