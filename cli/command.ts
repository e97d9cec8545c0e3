/**
 * The shape every CLI command has, and the exit codes they share.
 *
 * @example
 * ```ts
 * import { type Command, EXIT } from "./command.ts";
 * const hello: Command = {
 *   name: "hello",
 *   help: "Usage: cellpose hello",
 *   run: () => {
 *     console.log("hello");
 *     return Promise.resolve(EXIT.ok);
 *   },
 * };
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";

/** Exit codes of the CLI. */
export const EXIT = {
  /** everything worked */
  ok: 0,
  /** some files failed; the others were done */
  failed: 1,
  /** the command line was wrong; nothing was done */
  usage: 2,
  /** the model could not be found, downloaded or read */
  model: 3,
} as const;

/** A subcommand of `cellpose`. */
export interface Command {
  name: string;
  /** the full `--help` text */
  help: string;
  /** runs with the arguments after the command name; resolves to the exit code */
  run(argv: string[]): Promise<number>;
}

const MODEL_CODES = new Set(["MODEL_NOT_FOUND", "DOWNLOAD_FAILED", "BAD_MODEL"]);

/**
 * The exit code for an error that ended a whole command.
 *
 * @example
 * ```ts
 * import { CellposeError } from "../core/errors.ts";
 * import { exitCodeFor } from "./command.ts";
 * console.log(exitCodeFor(new CellposeError("MODEL_NOT_FOUND", "no cpsam"))); // 3
 * ```
 */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CellposeError) {
    if (error.code === "BAD_PARAMETER") return EXIT.usage;
    if (MODEL_CODES.has(error.code)) return EXIT.model;
  }
  return EXIT.failed;
}

/**
 * A description of an error for the terminal: the message of a {@link CellposeError}, else the
 * error's name and message.
 *
 * @example
 * ```ts
 * import { describeError } from "./command.ts";
 * console.log(describeError(new TypeError("x is undefined"))); // "TypeError: x is undefined"
 * ```
 */
export function describeError(error: unknown): string {
  if (error instanceof CellposeError) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
