/**
 * A small Python pickle reader for the opcodes that `torch.save` uses in a state dict (protocol
 * 2). Written by hand because no npm package reads pickles without executing them, and a state
 * dict needs only a handful of opcodes: GLOBAL names are resolved through a caller-supplied
 * `findClass` (so nothing runs that the caller did not allow), BINPERSID through
 * `persistentLoad`. Any other opcode is a {@link CellposeError} naming it.
 *
 * Python values map to: str -> string, int -> number (bigint beyond 2^53), bool, None -> null,
 * tuple/list -> array, dict -> Map.
 *
 * @example
 * ```ts
 * import { readPickle } from "./pickle.ts";
 * // pickle.dumps({"a": (1, True)}, protocol=2)
 * const bytes = new Uint8Array([0x80, 2, 0x7d, 0x71, 0, 0x58, 1, 0, 0, 0, 0x61, 0x71, 1, 0x4b,
 *   1, 0x88, 0x86, 0x71, 2, 0x73, 0x2e]);
 * const v = readPickle(bytes, {
 *   findClass: (m, n) => { throw new Error(`${m}.${n}`); },
 *   persistentLoad: () => null,
 * });
 * console.log(v); // Map(1) { "a" => [ 1, true ] }
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";

/** How the reader resolves the two things a pickle cannot hold by itself. */
export interface PickleHooks {
  /** resolves `GLOBAL module name`; a function found here can be called by REDUCE */
  findClass(module: string, name: string): unknown;
  /** resolves a persistent id (torch: `('storage', type, key, location, numel)`) */
  persistentLoad(pid: unknown): unknown;
}

const MARK = Symbol("mark");

/**
 * The most values the reader holds on its stack and in its memo, and the most MARKs open at
 * once: a state dict needs a few thousand values and a depth of ~4; a list of 300k items or
 * nesting 200k deep is refused (`BAD_FILE`) before it costs memory or overflows a call stack.
 */
export const PICKLE_LIMITS = { values: 100_000, depth: 1_000 } as const;

const OPNAMES: Record<number, string> = {
  0x80: "PROTO",
  0x63: "GLOBAL",
  0x51: "BINPERSID",
  0x52: "REDUCE",
  0x62: "BUILD",
  0x28: "MARK",
  0x74: "TUPLE",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x29: "EMPTY_TUPLE",
  0x7d: "EMPTY_DICT",
  0x5d: "EMPTY_LIST",
  0x61: "APPEND",
  0x65: "APPENDS",
  0x73: "SETITEM",
  0x75: "SETITEMS",
  0x58: "BINUNICODE",
  0x4a: "BININT",
  0x4b: "BININT1",
  0x4d: "BININT2",
  0x8a: "LONG1",
  0x47: "BINFLOAT",
  0x4e: "NONE",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x68: "BINGET",
  0x6a: "LONG_BINGET",
  0x2e: "STOP",
};

/**
 * Reads one pickle from `bytes` and returns its value.
 * Throws a {@link CellposeError} `BAD_FILE` for truncated or malformed data and `UNSUPPORTED`
 * for an opcode outside the state-dict subset.
 */
export function readPickle(bytes: Uint8Array, hooks: PickleHooks): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let marks = 0;
  const push = (v: unknown) => {
    if (stack.length >= PICKLE_LIMITS.values) {
      throw new CellposeError(
        "BAD_FILE",
        `pickle holds more than ${PICKLE_LIMITS.values} values on its stack at offset ${pos}`,
        pos,
      );
    }
    stack.push(v);
  };
  const memoize = (key: number, v: unknown) => {
    if (memo.size >= PICKLE_LIMITS.values && !memo.has(key)) {
      throw new CellposeError(
        "BAD_FILE",
        `pickle memoizes more than ${PICKLE_LIMITS.values} values (offset ${pos})`,
        pos,
      );
    }
    memo.set(key, v);
  };

  const need = (n: number) => {
    if (pos + n > bytes.length) {
      throw new CellposeError(
        "BAD_FILE",
        `pickle is truncated: needs ${n} bytes at offset ${pos}, has ${bytes.length - pos}`,
        pos,
      );
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) {
      throw new CellposeError("BAD_FILE", `pickle is truncated in GLOBAL at ${pos}`, pos);
    }
    const s = decoder.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (!stack.length) throw new CellposeError("BAD_FILE", `pickle stack underflow at ${pos}`, pos);
    return stack.pop();
  };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new CellposeError("BAD_FILE", `pickle has no MARK before ${pos}`, pos);
    const items = stack.splice(i);
    items.shift();
    marks--;
    return items;
  };
  const top = (): unknown => {
    if (!stack.length) throw new CellposeError("BAD_FILE", `pickle stack underflow at ${pos}`, pos);
    return stack[stack.length - 1];
  };
  const tooLong = (what: string, n: number) =>
    new CellposeError(
      "BAD_FILE",
      `pickle ${what} of ${n} items at offset ${pos}: more than ${PICKLE_LIMITS.values}`,
      n,
    );
  const asMap = (v: unknown, adding: number): Map<unknown, unknown> => {
    if (!(v instanceof Map)) {
      throw new CellposeError("BAD_FILE", `pickle SETITEM on a non-dict at ${pos}`, pos);
    }
    if (v.size + adding > PICKLE_LIMITS.values) throw tooLong("dict", v.size + adding);
    return v;
  };
  const asList = (v: unknown, adding: number): unknown[] => {
    if (!Array.isArray(v)) {
      throw new CellposeError("BAD_FILE", `pickle APPEND on a non-list at ${pos}`, pos);
    }
    if (v.length + adding > PICKLE_LIMITS.values) throw tooLong("list", v.length + adding);
    return v;
  };
  const recall = (key: number) => {
    if (!memo.has(key)) throw new CellposeError("BAD_FILE", `pickle memo ${key} is unset`, key);
    push(memo.get(key));
  };

  while (true) {
    need(1);
    const op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        need(1);
        pos += 1;
        break;
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        push(hooks.findClass(module, name));
        break;
      }
      case 0x51: // BINPERSID
        push(hooks.persistentLoad(pop()));
        break;
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        if (typeof fn !== "function" || !Array.isArray(args)) {
          throw new CellposeError("BAD_FILE", `pickle REDUCE needs a callable and a tuple`, pos);
        }
        if (args.length > 16) {
          throw new CellposeError("BAD_FILE", `pickle REDUCE with ${args.length} arguments`, pos);
        }
        push(fn(...args));
        break;
      }
      case 0x62: // BUILD: object state (state dict `_metadata`) is not needed
        pop();
        top();
        break;
      case 0x28: // MARK
        if (++marks > PICKLE_LIMITS.depth) {
          throw new CellposeError(
            "BAD_FILE",
            `pickle nests more than ${PICKLE_LIMITS.depth} MARKs at offset ${pos - 1}`,
            pos - 1,
          );
        }
        push(MARK);
        break;
      case 0x74: // TUPLE
        push(popMark());
        break;
      case 0x85: // TUPLE1
        push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        push([pop(), b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        push([pop(), b, c]);
        break;
      }
      case 0x29: // EMPTY_TUPLE
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x61: { // APPEND
        const v = pop();
        asList(top(), 1).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = asList(top(), items.length);
        for (const v of items) list.push(v);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        asMap(top(), 1).set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = asMap(top(), items.length / 2);
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x58: { // BINUNICODE
        need(4);
        const n = view.getUint32(pos, true);
        pos += 4;
        need(n);
        push(decoder.decode(bytes.subarray(pos, pos + n)));
        pos += n;
        break;
      }
      case 0x4a: // BININT
        need(4);
        push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        need(1);
        push(bytes[pos++]);
        break;
      case 0x4d: // BININT2
        need(2);
        push(view.getUint16(pos, true));
        pos += 2;
        break;
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        need(1);
        const n = bytes[pos++];
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
        if (n && bytes[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        const small = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
        push(small ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x71: // BINPUT
        need(1);
        memoize(bytes[pos++], top());
        break;
      case 0x72: // LONG_BINPUT
        need(4);
        memoize(view.getUint32(pos, true), top());
        pos += 4;
        break;
      case 0x68: // BINGET
        need(1);
        recall(bytes[pos++]);
        break;
      case 0x6a: // LONG_BINGET
        need(4);
        recall(view.getUint32(pos, true));
        pos += 4;
        break;
      case 0x2e: // STOP
        return pop();
      default: {
        const hex = `0x${op.toString(16).padStart(2, "0")}`;
        const ch = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : "";
        throw new CellposeError(
          "UNSUPPORTED",
          `pickle opcode ${hex}${ch} at offset ${pos - 1} is not supported (a state dict uses ` +
            `only ${Object.values(OPNAMES).join(", ")})`,
          op,
        );
      }
    }
  }
}
