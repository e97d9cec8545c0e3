/**
 * The parameter table (`core/params.ts`) is the one place a default or range is written: the
 * CLI's help and flag checks, the server's validation (through HTTP), `/openapi.json`, the panel's
 * form and the library's checks are derived from it here, parameter by parameter, and the work
 * caps of the hardening issue (niter, lowhigh pairs, the rescaled size from diameter) hold.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { FIXTURES } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import {
  MAX_RESCALED_PIXELS,
  NETWORK_CHANNELS,
  type ParamSpec,
  paramSpec,
  SEGMENT_PARAMS,
  TRAIN_PARAMS,
} from "../core/params.ts";
import { parseArgs } from "../cli/args.ts";
import { options as segmentFlags, segmentCommand } from "../cli/commands/segment.ts";
import { trainCommand } from "../cli/commands/train.ts";
import { parseSegmentParams } from "../server/params.ts";
import { openApiDocument, paramSchema } from "../server/openapi.ts";
import { startServer } from "../server/main.ts";
import { TRAIN_PARAMS as SERVER_TRAIN_PARAMS } from "../server/train_routes.ts";
import { FIELDS } from "../plugin-ui/src/params_fields.ts";
import { computeMasks, DYNAMICS_DEFAULTS } from "../dynamics/compute_masks.ts";
import { segment } from "../pipeline/segment.ts";
import { loadModel } from "../models/load.ts";

const numeric = (t: readonly ParamSpec[]) =>
  t.filter((p) => p.type === "number" || p.type === "integer");
/** A value just inside each end of the range, and one just outside. */
function probes(p: ParamSpec): { ok: number[]; bad: number[] } {
  const step = p.type === "integer" ? 1 : Math.max(1e-6, ((p.max ?? 1) - (p.min ?? 0)) * 1e-3);
  const ok: number[] = [], bad: number[] = [];
  if (p.min !== undefined) {
    (p.openMin ? bad : ok).push(p.min);
    if (p.openMin) ok.push(p.min + step);
    else if (p.min - step !== p.unset) bad.push(p.min - step);
  }
  if (p.max !== undefined) {
    (p.openMax ? bad : ok).push(p.max);
    if (p.openMax) ok.push(p.max - step);
    bad.push(p.max + step);
  }
  if (p.type === "integer") bad.push((ok[0] ?? 0) + 0.5);
  return { ok, bad };
}
const collapse = (s: string) => s.replace(/\s+/g, " ");

Deno.test("params: every entry is complete and consistent", () => {
  for (const p of [...SEGMENT_PARAMS, ...TRAIN_PARAMS]) {
    assert(/^[a-z][a-z0-9_]*[a-z0-9]$/i.test(p.name) && p.help.length > 10, p.name);
    if (p.default !== undefined && typeof p.default === "number") {
      assert(
        p.default === p.unset ||
          ((p.min === undefined || p.default >= p.min) &&
            (p.max === undefined || p.default <= p.max)),
        `${p.name}: default inside the range`,
      );
    }
    if (p.type === "number" || p.type === "integer") {
      assert(p.max !== undefined, `${p.name}: every number is bounded (work caps)`);
    }
  }
  // the work caps the hardening issue asks for
  assertEquals(paramSpec(SEGMENT_PARAMS, "niter").max, 10000);
  assertEquals(NETWORK_CHANNELS, 3);
  // the library's dynamics defaults are the table's
  for (
    const [key, name] of [
      ["cellprobThreshold", "cellprob_threshold"],
      ["flowThreshold", "flow_threshold"],
      ["minSize", "min_size"],
      ["maxSizeFraction", "max_size_fraction"],
    ] as const
  ) assertEquals(DYNAMICS_DEFAULTS[key], paramSpec(SEGMENT_PARAMS, name).default);
});

Deno.test("params: the CLI's help and flag checks come from the table", () => {
  const segHelp = collapse(segmentCommand.help);
  const trainHelp = collapse(trainCommand.help);
  let flags = 0;
  for (
    const [table, help, command] of [
      [SEGMENT_PARAMS, segHelp, "segment"],
      [TRAIN_PARAMS, trainHelp, "train"],
    ] as const
  ) {
    for (const p of table) {
      if (!help.includes(`--${p.name} `)) continue; // not a flag of this command
      flags++;
      const dflt = p.default !== undefined && p.type !== "boolean"
        ? ` [default: ${p.default}]`
        : "";
      assert(help.includes(collapse(p.help) + dflt), `${command} --${p.name}: help and default`);
    }
  }
  assert(flags >= 20, `${flags} table flags in the CLI`);
  for (const p of numeric(SEGMENT_PARAMS)) {
    const spec = (segmentFlags as Record<string, { param?: ParamSpec }>)[p.name];
    if (!spec) continue;
    assertEquals(spec.param, p, `--${p.name} is the table's entry`);
    const { ok, bad } = probes(p);
    for (const v of ok) {
      assertEquals(
        parseArgs([`--${p.name}`, String(v)], segmentFlags).values[p.name as "niter"],
        v,
      );
    }
    for (const v of bad) {
      const e = assertThrows(() => parseArgs([`--${p.name}=${v}`], segmentFlags), CellposeError);
      assertEquals(e.code, "BAD_PARAMETER");
      assert(e.message.includes(`--${p.name}`), e.message);
    }
  }
});

Deno.test("params: the server validates by the table, over HTTP", async () => {
  const server = await startServer({ port: 0, log: () => {}, preload: false });
  try {
    for (const p of numeric(SEGMENT_PARAMS)) {
      const { ok, bad } = probes(p);
      for (const v of ok) {
        assertEquals(parseSegmentParams({ [p.name]: String(v) })[p.key as "niter"], v);
      }
      if (p.unset !== undefined) assertEquals(parseSegmentParams({ [p.name]: p.unset }), {});
      for (const v of bad) {
        const res = await fetch(`${server.url}/v1/segment?${p.name}=${v}`, {
          method: "POST",
          headers: { "content-type": "image/png" },
          body: new Uint8Array(8),
        });
        const body = await res.json();
        assertEquals([res.status, body.error.code, body.error.field], [
          400,
          "BAD_PARAMETER",
          p.name,
        ]);
      }
    }
    // lowhigh: at most one pair per network channel
    const pairs = (n: number) =>
      JSON.stringify({ lowhigh: Array.from({ length: n }, () => [0, 1]) });
    assertEquals(parseSegmentParams({ normalize: pairs(3) }), {
      normalize: { lowhigh: [[0, 1], [0, 1], [0, 1]] },
    });
    const e = assertThrows(() => parseSegmentParams({ normalize: pairs(1e5) }), CellposeError);
    assert(e.message.length < 300 && e.message.includes("normalize.lowhigh"), e.message);
    // the server's training parameters are the table's entries
    for (const p of SERVER_TRAIN_PARAMS) assertEquals(p, paramSpec(TRAIN_PARAMS, p.name));
  } finally {
    await server.close();
  }
});

Deno.test("params: /openapi.json describes the table's ranges and defaults", () => {
  const doc = openApiDocument();
  const query = doc.paths["/v1/segment"].post as {
    parameters: { name: string; schema: unknown }[];
  };
  for (const p of SEGMENT_PARAMS) {
    const q = query.parameters.find((x) => x.name === p.name);
    assert(q, p.name);
    const schema = q.schema as Record<string, unknown>;
    assertEquals(schema, paramSchema(p));
    assertEquals(schema.default, p.default, p.name);
    if (p.type === "number" || p.type === "integer") {
      const range =
        (p.unset !== undefined ? (schema.oneOf as Record<string, unknown>[])[1] : schema) as Record<
          string,
          unknown
        >;
      assertEquals(range[p.openMin ? "exclusiveMinimum" : "minimum"], p.min, p.name);
      assertEquals(range[p.openMax ? "exclusiveMaximum" : "maximum"], p.max, p.name);
    }
  }
});

Deno.test("params: the panel's form is the table's labelled parameters", () => {
  const labelled = SEGMENT_PARAMS.filter((p) => p.label);
  assertEquals(FIELDS.map((f) => f.name), labelled.map((p) => p.name));
  for (const [i, f] of FIELDS.entries()) {
    const p = labelled[i];
    assertEquals([f.value, f.help, f.max, f.step], [p.default, p.help, p.max, p.step], p.name);
    if (p.min !== undefined) assertEquals(f.min, Math.min(p.min, p.unset ?? p.min));
  }
});

Deno.test("params: the library checks the table's ranges and the rescaled size", async () => {
  const flows = { data: new Float32Array(2 * 16), shape: [2, 4, 4] };
  const cellprob = { data: new Float32Array(16), shape: [4, 4] };
  await assertRejects(
    () => computeMasks(flows, cellprob, { niter: 10001 }),
    CellposeError,
    "niter",
  );
  await assertRejects(
    () => computeMasks(flows, cellprob, { maxSizeFraction: 1.5 }),
    CellposeError,
    "maxSizeFraction",
  );
  const model = await loadModel(join(FIXTURES, "tiny-cpsam.pt"), { device: "cpu" });
  try {
    const small = { data: new Uint8Array(64 * 64), shape: [64, 64] };
    // a diameter below 1 px is refused by the table; 30 / 0.5 would be 3840 x 3840
    await assertRejects(() => segment(small, { model, diameter: 0.5 }), CellposeError, "diameter");
    // 1000 x 1000 at diameter 3 would be 10^8 pixels, past the default budget of 2^26
    const big = { data: new Uint8Array(1000 * 1000), shape: [1000, 1000] };
    const t0 = performance.now();
    const e = await assertRejects(() => segment(big, { model, diameter: 3 }), CellposeError);
    assertEquals([e.code, (e.value as { field: string }).field], ["BAD_PARAMETER", "diameter"]);
    assert(e.message.includes(String(MAX_RESCALED_PIXELS)), e.message);
    assert(e.message.includes("at least 3.67"), e.message); // 30 * sqrt(10^6 / 2^26)
    assert(performance.now() - t0 < 10_000, "refused before any work");
    // a smaller budget of the caller's
    await assertRejects(
      () => segment(small, { model, diameter: 10, maxPixels: 10_000 }),
      CellposeError,
      "diameter",
    );
    // an image larger than the budget may still be shrunk
    const r = await segment(small, { model, diameter: 60, maxPixels: 1000 });
    assertEquals(r.masks.shape, [64, 64]);
  } finally {
    await model.dispose();
  }
});
