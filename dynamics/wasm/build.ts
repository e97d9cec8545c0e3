/**
 * Assembles the WebAssembly text kernels of `dynamics/wasm/` (`*.wat`) into the committed binaries
 * next to them (`*.wasm`), with wabt. Run `deno task build:wasm` after editing a `.wat`; a test
 * checks that the committed binaries equal a fresh build.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { assembleWat } from "./build.ts";
 * const wasm = await assembleWat(new URL("./follow2d.wat", import.meta.url));
 * assert(WebAssembly.validate(new Uint8Array(wasm)));
 * ```
 * @module
 */
import wabtInit from "wabt";
import { CellposeError } from "../../core/errors.ts";

/** The `.wat` sources of this folder, assembled by {@link buildWasm}. */
export const WAT_SOURCES = ["follow2d.wat"];

/** Assembles one `.wat` file (multi-value and saturating float-to-int enabled) into a binary. */
export async function assembleWat(url: URL): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const text = await Deno.readTextFile(url);
  let mod;
  try {
    mod = wabt.parseWat(url.pathname, text, { multi_value: true, sat_float_to_int: true });
    mod.resolveNames();
    mod.validate();
  } catch (e) {
    throw new CellposeError("BAD_FILE", `${url.pathname} does not assemble: ${e}`, url.href);
  }
  try {
    return mod.toBinary({ log: false, write_debug_names: false }).buffer;
  } finally {
    mod.destroy();
  }
}

/** Assembles every `.wat` of {@link WAT_SOURCES} and writes the `.wasm` next to it. */
export async function buildWasm(): Promise<void> {
  for (const name of WAT_SOURCES) {
    const wasm = await assembleWat(new URL(`./${name}`, import.meta.url));
    await Deno.writeFile(new URL(`./${name.replace(/\.wat$/, ".wasm")}`, import.meta.url), wasm);
  }
}

if (import.meta.main) await buildWasm();
