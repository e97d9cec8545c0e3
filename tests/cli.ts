/**
 * The `cellpose` command line (`cli/main.ts`) run as a subprocess, as a user runs it: shared by
 * the tests and benchmarks that check the CLI end to end. {@link runCli} runs a command to its
 * end; {@link spawnCli} starts one to watch its log, signal it or kill it mid-run. Their waits
 * are bounded (10 min unless told otherwise): a hung CLI fails the test instead of hanging it, and
 * every error names the command and carries the end of what it printed on stderr.
 *
 * @example A command to its end; one watched as it runs
 * ```ts
 * import { assert, assertEquals } from "./assert.ts";
 * import { runCli, spawnCli } from "./cli.ts";
 * const help = await runCli(["--help"]);
 * assertEquals(help.code, 0, help.stderr);
 * assert(help.stdout.includes("segment"));
 * const p = spawnCli(["segment"]);
 * await p.waitFor(/no images given/);
 * assertEquals((await p.result()).code, 2, p.stderr);
 * ```
 * @module
 */
import { join } from "node:path";
import { REPO } from "./fixtures.ts";

const MAIN = join(REPO, "cli", "main.ts");

/** How long {@link runCli} and {@link CliProcess.result} wait for the exit by default: 10 min. */
const TIMEOUT_MS = 600_000;

/** How a CLI subprocess is started. */
export interface CliOptions {
  /** variables set on top of this process's environment; `NO_COLOR=1` is always set */
  env?: Record<string, string>;
  /** the working folder [this process's] */
  cwd?: string;
  /** also copy the CLI's stderr to this process's stderr as it comes (a benchmark's progress) */
  echo?: boolean;
}

/** How a CLI subprocess ended, and all it printed. */
export interface CliResult {
  /** the exit code (128 + the signal's number when a signal ended it) */
  code: number;
  /** the signal that ended it, if one did */
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** The last `n` characters of `text`, marked as cut when longer. */
function tail(text: string, n = 4000): string {
  return text.length > n ? `...${text.slice(-n)}` : text;
}

/**
 * A running `cellpose ...` subprocess ({@link spawnCli}): stdin closed, stdout and stderr
 * collected as they come (readable at any time in {@link stdout} / {@link stderr}).
 */
export class CliProcess {
  /** the command line after `cellpose`, for messages */
  readonly command: string;
  /** what the CLI printed on stdout so far */
  stdout = "";
  /** what the CLI printed on stderr so far (its log and progress) */
  stderr = "";
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<CliResult>;
  #ended = false;

  /** Starts `cellpose <args>`; see {@link spawnCli}. */
  constructor(args: string[], options: CliOptions = {}) {
    this.command = `cellpose ${args.join(" ")}`;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      cwd: options.cwd,
      env: { NO_COLOR: "1", ...options.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (
      stream: ReadableStream<Uint8Array>,
      key: "stdout" | "stderr",
      echo: boolean,
    ) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        this[key] += decoder.decode(chunk, { stream: true });
        if (echo) await Deno.stderr.write(chunk);
      }
      this[key] += decoder.decode();
    };
    this.#done = Promise.all([
      collect(this.#child.stdout, "stdout", false),
      collect(this.#child.stderr, "stderr", options.echo ?? false),
    ]).then(async () => {
      const { code, signal } = await this.#child.status;
      this.#ended = true;
      return { code, signal, stdout: this.stdout, stderr: this.stderr };
    });
  }

  /** The process id (to read its `/proc/<pid>/...`). */
  get pid(): number {
    return this.#child.pid;
  }

  /**
   * Resolves to the first match of `re` in the stderr; rejects, with the stderr, when the CLI
   * exits without printing it or `ms` pass first.
   */
  async waitFor(re: RegExp, ms = 60_000): Promise<RegExpMatchArray> {
    const end = performance.now() + ms;
    for (;;) {
      const ended = this.#ended; // read first: once set, the stderr is complete
      const m = this.stderr.match(re);
      if (m) return m;
      if (ended) {
        const { code } = await this.#done;
        throw new Error(
          `${this.command} exited ${code} without printing ${re}; stderr:\n${tail(this.stderr)}`,
        );
      }
      if (performance.now() > end) {
        throw new Error(
          `${this.command} printed no ${re} within ${ms / 1000} s; stderr:\n${tail(this.stderr)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * The exit and all the CLI printed, once it has exited; rejects, with the stderr so far, when it
   * still runs after `ms` (`Infinity`: no limit). Does not stop it: see {@link kill}.
   */
  async result(ms = TIMEOUT_MS): Promise<CliResult> {
    if (ms === Infinity) return await this.#done;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.command} still running after ${ms / 1000} s; stderr:\n${tail(this.stderr)}`,
            ),
          ),
        ms,
      );
    });
    try {
      return await Promise.race([this.#done, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `signal` (SIGINT: Ctrl+C); nothing when the process has already ended. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    try {
      this.#child.kill(signal);
    } catch { /* already ended */ }
  }
}

/**
 * Starts `cellpose <args>` (`deno run -A cli/main.ts <args>`) and returns at once. The caller
 * ends it: {@link CliProcess.result} (bounded), after {@link CliProcess.kill} where needed.
 */
export function spawnCli(args: string[], options: CliOptions = {}): CliProcess {
  return new CliProcess(args, options);
}

/**
 * Runs `cellpose <args>` to its end: its exit code, stdout and stderr. A CLI still running after
 * `timeoutMs` is killed and the call rejects, naming the command and the end of its stderr.
 */
export async function runCli(
  args: string[],
  options: CliOptions & { timeoutMs?: number } = {},
): Promise<CliResult> {
  const p = spawnCli(args, options);
  try {
    return await p.result(options.timeoutMs);
  } catch (e) {
    p.kill();
    await p.result(Infinity);
    throw e;
  }
}
