/**
 * The fields of the panel's parameter form (`<cellpose-params>`), made from the parameter table
 * (`core/params.ts`): the parameters that have a panel `label`, with the table's defaults, ranges
 * and help. No DOM: the tests check it against the table.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { FIELDS } from "./params_fields.ts";
 * assertEquals(FIELDS.find((f) => f.name === "flow_threshold")?.value, 0.4);
 * ```
 * @module
 */
import { type ParamSpec, SEGMENT_PARAMS } from "../../core/params.ts";

/** One input of the form. */
export interface Field {
  /** cellpose name */
  name: string;
  /** the label shown */
  label: string;
  /** initial value: the table's default */
  value: number | boolean;
  /** the line of help under the input */
  help: string;
  /** the number input's step */
  step?: number;
  /** smallest value the input takes (the table's, or its "automatic" value when lower) */
  min?: number;
  /** largest value the input takes */
  max?: number;
}

function field(p: ParamSpec): Field {
  const min = p.min === undefined ? undefined : Math.min(p.min, p.unset ?? p.min);
  return {
    name: p.name,
    label: p.label!,
    value: p.default as number | boolean,
    help: p.help,
    step: p.step,
    min,
    max: p.max,
  };
}

/** The fields: the table's parameters that have a panel label, in the table's order. */
export const FIELDS: readonly Field[] = SEGMENT_PARAMS.filter((p) => p.label).map(field);

/** The "automatic" value of each parameter that has one. */
export const UNSET: ReadonlyMap<string, number | undefined> = new Map(
  SEGMENT_PARAMS.map((p) => [p.name, p.unset]),
);
