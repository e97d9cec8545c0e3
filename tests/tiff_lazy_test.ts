/**
 * The lazy TIFF source reads the full-resolution level: a thumbnail stored first and reduced pyramid
 * pages are skipped, channels stored as pages (ImageJ `channels=`) come back channel-last, and a Z
 * stack is refused with the reason (the block path is 2-D). Files from tests/data/tiff/make_tiffs.py.
 */
import { join } from "node:path";
import { assertEquals, assertRejects } from "./assert.ts";
import { REPO } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import { openTiff } from "../io/tiff_lazy.ts";
import { blockTiff } from "./hostile_cases.ts";
import { zlibSync } from "fflate";
import { readTiff } from "../io/tiff_read.ts";

const DIR = join(REPO, "tests", "data", "tiff");

/** make_tiffs.py's pattern for unsigned types: (i * 37 + 11) % min(2^bits, 70001). */
function pattern(n: number, modulus: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 37 + 11) % modulus);
}

Deno.test("openTiff: a pyramid's full-resolution pages, channels as pages, channel-last", async () => {
  const src = await openTiff(join(DIR, "pyramid_c2_u16.tif"));
  assertEquals([src.height, src.width, src.channels], [30, 40, 2]);
  const cyx = pattern(2 * 30 * 40, 65536);
  const r = { y0: 4, x0: 7, y1: 29, x1: 33 };
  const got = await src.read(r);
  assertEquals(got.shape, [25, 26, 2]);
  const want: number[] = [];
  for (let y = r.y0; y < r.y1; y++) {
    for (let x = r.x0; x < r.x1; x++) {
      for (let c = 0; c < 2; c++) want.push(cyx[(c * 30 + y) * 40 + x]);
    }
  }
  assertEquals([...got.data], want);
  await src.close();
  // the whole-image reader sees the same series (CYX)
  const whole = await readTiff(await Deno.readFile(join(DIR, "pyramid_c2_u16.tif")), "pyramid");
  assertEquals([whole.axes, whole.image.shape, [...whole.image.data]], ["CYX", [2, 30, 40], cyx]);
});

Deno.test("openTiff: a reduced-resolution thumbnail stored first is skipped", async () => {
  const src = await openTiff(join(DIR, "thumb_first_u8.tif"));
  assertEquals([src.height, src.width, src.channels], [25, 30, 1]);
  const got = await src.read({ y0: 0, x0: 0, y1: 25, x1: 30 });
  assertEquals([...got.data], pattern(25 * 30, 256));
  await src.close();
});

Deno.test("openTiff: Z stacks are refused with the reason", async () => {
  for (
    const [name, what] of [["stack_z.tif", "4 pages (ZYX)"], ["ome_czyx.ome.tif", "6 pages (CZYX)"]]
  ) {
    const e = await assertRejects(() => openTiff(join(DIR, name)), CellposeError, what);
    assertEquals(e.code, "UNSUPPORTED");
  }
});

Deno.test("openTiff: a wide image of one-row strips reads block-sized regions (whole rows decoded)", async () => {
  // 140000 x 2048 uint8 in 2048 one-row Deflate strips (all the same zero row): a 2048 x 2048
  // block decodes its 2048 whole rows, 287 MB, past 16 x the block (64 MiB) and the 256 MiB floor,
  // which is what strips cost any reader (refused before the whole-rows allowance)
  const [w, h] = [140000, 2048];
  const path = await Deno.makeTempFile({ suffix: ".tif" });
  try {
    await Deno.writeFile(path, blockTiff(w, h, w, 1, zlibSync(new Uint8Array(w))));
    const src = await openTiff(path);
    try {
      const block = await src.read({ y0: 0, x0: 100000, y1: 2048, x1: 102048 });
      assertEquals(block.shape, [2048, 2048]);
      assertEquals(block.data.every((v) => v === 0), true);
    } finally {
      await src.close();
    }
  } finally {
    await Deno.remove(path);
  }
});
