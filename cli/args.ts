/**
 * The command-line parser of the CLI. Options are declared once as {@link OptionSpecs} (keys are
 * cellpose v4's snake_case names) and that declaration drives both parsing and the option list of
 * `--help`. Every flag may be written snake_case or kebab-case, in any letter case
 * (`--flow_threshold`, `--flow-threshold`, `--do_3d`), as `--name value` or `--name=value`.
 * Negative numbers are accepted as values (`--cellprob_threshold -2`), which node's `parseArgs`
 * refuses, hence this small parser. Bad input throws a {@link CellposeError} with code
 * `BAD_PARAMETER` that names the flag as the user typed it.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./args.ts";
 * const specs = {
 *   diameter: { kind: "number", description: "cell diameter", placeholder: "PX" },
 *   save_tif: { kind: "boolean", description: "write a TIFF" },
 * } as const;
 * const { values, positionals } = parseArgs(["a.png", "--diameter=17", "--save-tif"], specs);
 * console.log(values.diameter, values.save_tif, positionals); // 17 true ["a.png"]
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";
import { checkParam, type ParamSpec, paramSpec } from "../core/params.ts";

/** What an option holds: a flag, text, a number, an integer, or a list of numbers. */
export type OptionKind = "boolean" | "string" | "number" | "integer" | "numbers";

/** The declaration of one option. */
export interface OptionSpec {
  kind: OptionKind;
  /** one line for `--help` */
  description: string;
  /** value placeholder in `--help`, e.g. `PX` */
  placeholder?: string;
  /** value when the flag is absent (booleans default to false) */
  default?: string | number | readonly number[];
  /** allowed values of a string option */
  choices?: readonly string[];
  /** smallest allowed number (inclusive) */
  min?: number;
  /** for `numbers`: how many values, given as `1,99` or `1 99` */
  count?: number;
  /** heading the option is listed under in `--help` */
  group?: string;
  /** the parameter table's entry the option comes from: its range is checked (`checkParam`) */
  param?: ParamSpec;
}

/** A flag made from the parameter table: type, help, range and default are the table's. */
export type TableFlag<K extends "number" | "integer" | "boolean"> = {
  kind: K;
  description: string;
  placeholder?: string;
  group?: string;
  param: ParamSpec;
} & (K extends "boolean" ? unknown : { default: number });

/**
 * The flag of the table's parameter `name` (`kind` must be its type; a parameter without a
 * default gets none, and is then `undefined` when absent).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { SEGMENT_PARAMS } from "../core/params.ts";
 * import { parseArgs, tableFlag } from "./args.ts";
 * const specs = { flow_threshold: tableFlag(SEGMENT_PARAMS, "flow_threshold", "number") };
 * assertEquals(parseArgs([], specs).values.flow_threshold, 0.4);
 * ```
 */
export function tableFlag<const K extends "number" | "integer" | "boolean">(
  table: readonly ParamSpec[],
  name: string,
  kind: K,
  extra: { placeholder?: string; group?: string } = {},
): TableFlag<K> {
  const param = paramSpec(table, name);
  if (param.type !== kind) throw new Error(`${name} is a ${param.type} in the table, not ${kind}`);
  if (kind !== "boolean" && param.default === undefined) {
    throw new Error(`${name} has no default in the table: use optionalTableFlag`);
  }
  const flag: Record<string, unknown> = { kind, description: param.help, param, ...extra };
  if (kind !== "boolean") flag.default = param.default;
  return flag as TableFlag<K>;
}

/** The flag of a table parameter without a default: `undefined` when absent. */
export function optionalTableFlag<const K extends "number" | "integer">(
  table: readonly ParamSpec[],
  name: string,
  kind: K,
  extra: { placeholder?: string; group?: string } = {},
): { kind: K; description: string; placeholder?: string; group?: string; param: ParamSpec } {
  const param = paramSpec(table, name);
  if (param.type !== kind) throw new Error(`${name} is a ${param.type} in the table, not ${kind}`);
  if (param.default !== undefined) throw new Error(`${name} has a default: use tableFlag`);
  return { kind, description: param.help, param, ...extra };
}

/** Options of a command, keyed by their snake_case name (without `--`). */
export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S["kind"] extends "boolean" ? boolean
  : S["kind"] extends "string" ? (S["choices"] extends readonly (infer C)[] ? C : string)
  : S["kind"] extends "numbers" ? number[]
  : number;

/** Parsed option values: booleans and options with defaults are always set. */
export type Values<T extends OptionSpecs> = {
  -readonly [K in keyof T]: T[K] extends { kind: "boolean" } | { default: unknown } ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined;
};

/** Result of {@link parseArgs}. */
export interface ParsedArgs<T extends OptionSpecs> {
  values: Values<T>;
  positionals: string[];
  /** `-h` or `--help` was given */
  help: boolean;
}

const canonical = (name: string) => name.replaceAll("-", "_").toLowerCase();

function usage(message: string, value: unknown): CellposeError {
  return new CellposeError("BAD_PARAMETER", message, value);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function unknownOption(flag: string, specs: OptionSpecs): CellposeError {
  const wanted = canonical(flag.replace(/^-+/, ""));
  const close = Object.keys(specs)
    .map((k) => ({ k, d: editDistance(wanted, k.toLowerCase()) }))
    .filter(({ d }) => d <= Math.max(2, Math.floor(wanted.length / 4)))
    .sort((a, b) => a.d - b.d);
  const hint = close.length ? ` Did you mean --${close[0].k}?` : "";
  return usage(`unknown option ${flag}.${hint}`, flag);
}

function toNumber(flag: string, text: string, spec: OptionSpec): number {
  const v = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(v)) throw usage(`${flag} expects a number, got '${text}'`, text);
  if (spec.kind === "integer" && !Number.isInteger(v)) {
    throw usage(`${flag} expects a whole number, got '${text}'`, text);
  }
  if (spec.min !== undefined && v < spec.min) {
    throw usage(`${flag} must be at least ${spec.min}, got ${v}`, v);
  }
  if (spec.param) checkParam(spec.param, v, flag);
  return v;
}

const looksNumeric = (s: string | undefined) =>
  s !== undefined && s.trim() !== "" && Number.isFinite(Number(s));

/**
 * Parses `argv` against `specs`. Positionals may come before, between or after options; `--`
 * ends option parsing.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./args.ts";
 * const specs = { cellprob_threshold: { kind: "number", default: 0, description: "" } } as const;
 * console.log(parseArgs(["--cellprob-threshold", "-2"], specs).values); // { cellprob_threshold: -2 }
 * ```
 */
export function parseArgs<const T extends OptionSpecs>(
  argv: readonly string[],
  specs: T,
): ParsedArgs<T> {
  const byName = new Map(Object.keys(specs).map((k) => [canonical(k), k]));
  const values: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(specs)) {
    values[k] = s.kind === "boolean"
      ? false
      : Array.isArray(s.default)
      ? [...s.default]
      : s.default;
  }
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const key = flag.startsWith("--") ? byName.get(canonical(flag.slice(2))) : undefined;
    if (key === undefined) throw unknownOption(flag, specs);
    const spec = specs[key];
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (spec.kind === "boolean") {
      if (inline !== undefined) {
        if (!/^(true|false)$/i.test(inline)) {
          throw usage(`${flag} is a switch: write ${flag} alone, not ${arg}`, arg);
        }
        values[key] = inline.toLowerCase() === "true";
      } else values[key] = true;
      continue;
    }
    const takeNext = (): string => {
      const next = argv[i + 1];
      const numeric = spec.kind !== "string" && looksNumeric(next);
      if (next === undefined || (next.startsWith("-") && !numeric && next !== "-")) {
        throw usage(
          `${flag} needs a value${spec.placeholder ? ` (${spec.placeholder})` : ""}`,
          flag,
        );
      }
      i++;
      return next;
    };
    const text = inline ?? takeNext();
    if (spec.kind === "string") {
      if (spec.choices && !spec.choices.includes(text)) {
        throw usage(`${flag} must be one of ${spec.choices.join(", ")}; got '${text}'`, text);
      }
      values[key] = text;
    } else if (spec.kind === "numbers") {
      const parts = text.split(",").filter((p) => p.trim() !== "");
      const count = spec.count;
      while (count !== undefined && parts.length < count && inline === undefined) {
        if (!looksNumeric(argv[i + 1])) break;
        parts.push(argv[++i]);
      }
      if (count !== undefined && parts.length !== count) {
        throw usage(
          `${flag} expects ${count} numbers (e.g. ${flag} ${
            (spec.default as number[] | undefined)?.join(" ") ?? "1 99"
          }), got ${parts.length}`,
          text,
        );
      }
      values[key] = parts.map((p) => toNumber(flag, p, spec));
    } else {
      values[key] = toNumber(flag, text, spec);
    }
  }
  return { values: values as Values<T>, positionals, help };
}

function describeDefault(spec: OptionSpec): string {
  if (spec.default === undefined) return "";
  const d = Array.isArray(spec.default)
    ? spec.default.join(spec.count ? " " : ",")
    : String(spec.default);
  return ` [default: ${d}]`;
}

/**
 * The option list of a command's `--help`, grouped under their `group` headings, in declaration
 * order, lines wrapped at 100 columns.
 *
 * @example
 * ```ts
 * import { formatOptions } from "./args.ts";
 * console.log(formatOptions({ fp16: { kind: "boolean", description: "half precision" } }));
 * // Options:
 * //   --fp16  half precision
 * ```
 */
export function formatOptions(specs: OptionSpecs): string {
  const groups = new Map<string, string[][]>();
  for (const [name, spec] of Object.entries(specs)) {
    const g = spec.group ?? "Options";
    const value = spec.kind === "boolean"
      ? ""
      : ` ${spec.choices ? spec.choices.join("|") : spec.placeholder ?? "VALUE"}`;
    const rows = groups.get(g) ?? [];
    rows.push([`  --${name}${value}`, spec.description + describeDefault(spec)]);
    groups.set(g, rows);
  }
  const width = Math.min(
    36,
    Math.max(...[...groups.values()].flat().map(([left]) => left.length)) + 2,
  );
  const out: string[] = [];
  for (const [g, rows] of groups) {
    out.push(`${g}:`);
    for (const [left, text] of rows) {
      const lines = wrap(text, 100 - width);
      if (left.length + 2 > width) out.push(left, ...lines.map((l) => " ".repeat(width) + l));
      else {
        out.push(
          left.padEnd(width) + lines[0],
          ...lines.slice(1).map((l) => " ".repeat(width) + l),
        );
      }
    }
    out.push("");
  }
  return out.join("\n");
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines;
}
