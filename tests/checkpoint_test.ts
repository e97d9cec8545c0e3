import { unzipSync } from "fflate";
import { join } from "node:path";
import { CellposeError } from "../core/errors.ts";
import { readCheckpoint, readCheckpointFile } from "../models/checkpoint.ts";
import { readPickle } from "../models/pickle.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { FIXTURES } from "./fixtures.ts";
import { PickleWriter, torchZip } from "./torch_zip.ts";

const TINY = join(FIXTURES, "tiny-cpsam.pt");

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

Deno.test("readCheckpointFile reads every tensor of tiny-cpsam.pt with the bytes of its storage", async () => {
  const sd = await readCheckpointFile(TINY);
  assertEquals(sd.size, 42);
  assertEquals(sd.get("encoder.pos_embed")!.shape, [1, 32, 32, 64]);
  assertEquals(sd.get("encoder.blocks.1.attn.rel_pos_h")!.shape, [127, 16]);
  assertEquals(sd.get("W2")!.shape, [192, 3, 8, 8]);
  // independent path: fflate unzips the archive and the storage bytes are compared as float32
  const files = unzipSync(await Deno.readFile(TINY));
  const neck = sd.get("encoder.neck.2.weight")!.data; // contiguous: the whole storage
  const neckRaw = Object.values(files).filter((f) => f.length === 256 * 256 * 9 * 4);
  assertEquals(neckRaw.length, 1);
  assertEquals(bytesOf(neck), neckRaw[0]);
  // pos_embed is a strided view ([:, ::2, ::2] of a 64 x 64 grid, storage "3")
  const raw = new Float32Array(files["tiny-cpsam/data/3"].slice().buffer);
  const pos = sd.get("encoder.pos_embed")!.data;
  for (const [i, j, c] of [[0, 0, 0], [1, 2, 3], [31, 31, 63], [17, 5, 40]]) {
    assertEquals(pos[(i * 32 + j) * 64 + c], raw[(2 * i * 64 + 2 * j) * 64 + c]);
  }
  // in-memory reading gives the same tensors
  const mem = readCheckpoint(await Deno.readFile(TINY));
  assertEquals([...mem.keys()], [...sd.keys()]);
  for (const [k, v] of sd) assertEquals(mem.get(k)!.data, v.data, k);
});

Deno.test("readCheckpoint widens half and bfloat16, strips module., follows strides", () => {
  const half = new Float16Array([1.5, -2.25, 65504, 2 ** -24]);
  const bf16 = new Uint16Array([0x3fc0, 0xc010]); // 1.5, -2.25
  const f32 = new Float32Array([0, 1, 2, 3, 4, 5]);
  const p = new PickleWriter().global("collections", "OrderedDict").op(0x29, 0x52, 0x28)
    .tensor("module.h", "HalfStorage", "0", 4, [4], [1])
    .tensor("module.b", "BFloat16Storage", "1", 2, [2], [1])
    .tensor("module.t", "FloatStorage", "2", 6, [3, 2], [1, 3]) // transpose of a [2, 3] tensor
    .tensor("module.s", "FloatStorage", "2", 6, [2], [1]) // view sharing storage 2
    .op(0x75, 0x2e);
  const sd = readCheckpoint(torchZip(p.bytes(), {
    "0": bytesOf(half),
    "1": bytesOf(bf16),
    "2": bytesOf(f32),
  }));
  assertEquals([...sd.keys()], ["h", "b", "t", "s"]);
  assertEquals(Array.from(sd.get("h")!.data), [1.5, -2.25, 65504, 2 ** -24]);
  assertEquals(Array.from(sd.get("b")!.data), [1.5, -2.25]);
  assertEquals(sd.get("t")!.shape, [3, 2]);
  assertEquals(Array.from(sd.get("t")!.data), [0, 3, 1, 4, 2, 5]);
  assertEquals(Array.from(sd.get("s")!.data), [0, 1]);
});

Deno.test("a truncated or non-zip checkpoint is a BAD_MODEL error saying why", async () => {
  const tiny = await Deno.readFile(TINY);
  const e1 = assertThrows(() => readCheckpoint(tiny.subarray(0, 100_000)), CellposeError);
  assertEquals(e1.code, "BAD_MODEL");
  assert(/truncated|not a zip/.test(e1.message), e1.message);
  const e2 = assertThrows(
    () => readCheckpoint(new TextEncoder().encode("<html>404 not found</html>")),
    CellposeError,
    "torch.save",
  );
  assertEquals(e2.code, "BAD_MODEL");
  const tmp = await Deno.makeTempFile({ suffix: ".pt" });
  await Deno.writeFile(tmp, tiny.subarray(0, tiny.length - 50));
  const e3 = await assertRejects(() => readCheckpointFile(tmp), CellposeError);
  assertEquals(e3.code, "BAD_MODEL");
  await Deno.remove(tmp);
  // storage shorter than the tensor claims
  const p = new PickleWriter().global("collections", "OrderedDict").op(0x29, 0x52, 0x28)
    .tensor("w", "FloatStorage", "0", 8, [8], [1]).op(0x75, 0x2e);
  const e4 = assertThrows(
    () => readCheckpoint(torchZip(p.bytes(), { "0": new Uint8Array(12) })),
    CellposeError,
    "storage data/0 holds 12 bytes, but the pickle declares 8 f32 elements (32 bytes)",
  );
  assertEquals(e4.code, "BAD_MODEL");
  // a strided view past the end of its storage
  const q = new PickleWriter().beginDict().tensor("w", "FloatStorage", "0", 3, [3], [2]).endDict();
  const e5 = assertThrows(
    () => readCheckpoint(torchZip(q.bytes(), { "0": new Uint8Array(12) })),
    CellposeError,
    "tensor w reads past its storage (3 elements)",
  );
  assertEquals(e5.code, "BAD_MODEL");
});

Deno.test("an unknown pickle opcode is an error naming it", () => {
  // STACK_GLOBAL (0x93, protocol 4) is outside the state-dict subset
  const p = new PickleWriter().str("collections").str("OrderedDict").op(0x93, 0x2e);
  const e = assertThrows(() => readCheckpoint(torchZip(p.bytes(), {})), CellposeError, "0x93");
  assertEquals([e.code, e.value], ["BAD_MODEL", "UNSUPPORTED"]);
  const hooks = { findClass: () => null, persistentLoad: () => null };
  assertThrows(
    () => readPickle(new Uint8Array([0x80, 2, 0x58, 9, 0, 0]), hooks),
    CellposeError,
    "truncated",
  );
});

Deno.test("a pickle calling something other than tensor rebuilds is refused", () => {
  const p = new PickleWriter().global("os", "system").str("echo hi").op(0x85, 0x52, 0x2e);
  const e = assertThrows(() => readCheckpoint(torchZip(p.bytes(), {})), CellposeError, "os.system");
  assertEquals(e.code, "BAD_MODEL");
});
