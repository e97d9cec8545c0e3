/** Label writing (dtype choice, format by extension) and cellpose output names. */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { CellposeError } from "../core/errors.ts";
import { readImage } from "../io/image.ts";
import { encodeLabels, labelArray, writeLabels } from "../io/labels.ts";
import { outputNames } from "../io/names.ts";

Deno.test("labels: uint16 up to 65535, uint32 beyond, values kept", () => {
  const small = labelArray({ data: Int32Array.from([0, 3, 65535]), shape: [1, 3] });
  assert(small.data instanceof Uint16Array);
  assertEquals(Array.from(small.data), [0, 3, 65535]);
  const big = labelArray({ data: Float32Array.from([0, 65536, 7]), shape: [1, 3] });
  assert(big.data instanceof Uint32Array);
  assertEquals(Array.from(big.data), [0, 65536, 7]);
  assertThrows(
    () => labelArray({ data: Int32Array.from([0, -2]), shape: [1, 2] }),
    CellposeError,
    "labels must be non-negative integers, found -2",
  );
  assertThrows(
    () => labelArray({ data: Float32Array.from([1.5]), shape: [1, 1] }),
    CellposeError,
    "found 1.5",
  );
});

Deno.test("labels: written as .tif, .png and .npy by extension and read back identical", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = Uint16Array.from({ length: 40 * 30 }, (_, i) => (i * 97) % 1000);
    for (const ext of ["tif", "tiff", "png", "npy"]) {
      const path = join(dir, `m_cp_masks.${ext}`);
      await writeLabels({ data, shape: [40, 30] }, path);
      const back = await readImage(path);
      assertEquals([back.image.shape, back.image.data], [[40, 30], data], ext);
    }
    const stack = Uint32Array.from({ length: 3 * 8 * 9 }, (_, i) => i * 1000);
    await writeLabels({ data: stack, shape: [3, 8, 9] }, join(dir, "s.tif"));
    const s = await readImage(join(dir, "s.tif"));
    assertEquals([s.axes, s.image.data], ["ZYX", stack]);
    await assertRejects(
      () => writeLabels({ data, shape: [40, 30] }, join(dir, "m.jpg")),
      CellposeError,
      "cannot tell the label format of",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("labels: PNG refuses stacks and more than 65535 masks", () => {
  assertThrows(
    () => encodeLabels({ data: new Uint16Array(8), shape: [2, 2, 2] }, "png"),
    CellposeError,
    "PNG labels must be 2D",
  );
  assertThrows(
    () => encodeLabels({ data: Uint32Array.from([70000]), shape: [1, 1] }, "png"),
    CellposeError,
    "more than 65535 masks do not fit in a 16-bit PNG",
  );
});

Deno.test("names: cellpose's output file names", () => {
  assertEquals(outputNames("/data/img01.ome.tif"), {
    base: "img01.ome",
    masksTif: "/data/img01.ome_cp_masks.tif",
    masksPng: "/data/img01.ome_cp_masks.png",
    outlinesTxt: "/data/img01.ome_cp_outlines.txt",
    overlayPng: "/data/img01.ome_outlines_cp_masks.png",
    flowsTif: "/data/img01.ome_flows_cp_masks.tif",
    dpTif: "/data/img01.ome_dP_cp_masks.tif",
    cellprobTif: "/data/img01.ome_cellprob_cp_masks.tif",
    statsCsv: "/data/img01.ome_stats_cp_masks.csv",
    seg: "/data/img01.ome_seg.npy",
    rois: "/data/img01.ome_rois.zip",
  });
  const n = outputNames("img.png", { savedir: "/out", suffix: "_v2" });
  assertEquals([n.masksTif, n.outlinesTxt, n.overlayPng, n.seg, n.rois], [
    "/out/img_v2.tif",
    "/out/img_cp_outlines.txt",
    "/out/img_outlines_v2.png",
    "/out/img_seg.npy", // savedir takes every output (cellpose leaves these two beside the image)
    "/out/img_rois.zip",
  ]);
});
