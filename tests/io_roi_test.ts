/**
 * ImageJ ROI zips read back by a parser written here from ImageJ's RoiDecoder layout (not by our
 * encoder's code): header fields, relative int16 coordinates, header-2 name; then every mask
 * pixel must be a polygon vertex or inside the polygon (ray casting at pixel centres).
 */
import { join } from "node:path";
import { unzipSync } from "fflate";
import { assertEquals, assertThrows } from "./assert.ts";
import { DATA } from "./fixtures.ts";
import { CellposeError } from "../core/errors.ts";
import { readImage } from "../io/image.ts";
import { encodeRoi, encodeRoiZip } from "../io/roi.ts";

interface ParsedRoi {
  version: number;
  type: number;
  top: number;
  left: number;
  bottom: number;
  right: number;
  position: number;
  name: string;
  x: number[];
  y: number[];
}

function parseRoi(b: Uint8Array): ParsedRoi {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  assertEquals(String.fromCharCode(...b.subarray(0, 4)), "Iout");
  const n = v.getUint16(16);
  const top = v.getInt16(8), left = v.getInt16(10);
  const x = Array.from({ length: n }, (_, i) => left + v.getInt16(64 + 2 * i));
  const y = Array.from({ length: n }, (_, i) => top + v.getInt16(64 + 2 * n + 2 * i));
  const h2 = v.getInt32(60);
  const nameAt = v.getInt32(h2 + 16), nameLen = v.getInt32(h2 + 20);
  const name = String.fromCharCode(
    ...Array.from({ length: nameLen }, (_, i) => v.getUint16(nameAt + 2 * i)),
  );
  return {
    version: v.getInt16(4),
    type: b[6],
    top,
    left,
    bottom: v.getInt16(12),
    right: v.getInt16(14),
    position: v.getInt32(56),
    name,
    x,
    y,
  };
}

function inside(px: number, py: number, xs: number[], ys: number[]): boolean {
  let c = false;
  for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
    if (
      (ys[i] > py) !== (ys[j] > py) &&
      px < xs[i] + ((py - ys[i]) * (xs[j] - xs[i])) / (ys[j] - ys[i])
    ) c = !c;
  }
  return c;
}

/** Pixels of label `l` not covered by the polygon, and non-mask pixels strictly inside it. */
function coverage(m: Uint16Array | Uint32Array, w: number, l: number, r: ParsedRoi) {
  const vertex = new Set(r.x.map((x, i) => `${x},${r.y[i]}`));
  let missed = 0, extra = 0;
  for (let y = r.top - 1; y <= r.bottom + 1; y++) {
    for (let x = r.left - 1; x <= r.right + 1; x++) {
      const on = vertex.has(`${x},${y}`) || inside(x, y, r.x, r.y);
      const mine = y >= 0 && x >= 0 && x < w && y * w + x < m.length && m[y * w + x] === l;
      if (mine && !on) missed++;
      if (!mine && on && !vertex.has(`${x},${y}`)) extra++;
    }
  }
  return { missed, extra };
}

Deno.test("roi zip: polygons cover their dsb2018 masks exactly", async () => {
  for (const id of ["00071198d059", "2cfa857e63be"]) {
    const { image } = await readImage(join(DATA, "dsb2018", `${id}_masks.tif`));
    const m = image.data as Uint16Array;
    const w = image.shape[1];
    const files = unzipSync(encodeRoiZip(image));
    const labels = [...new Set(m)].filter((l) => l !== 0).sort((a, b) => a - b);
    assertEquals(Object.keys(files).sort(), labels.map((l) => `${String(l).padStart(4, "0")}.roi`));
    for (const [file, bytes] of Object.entries(files)) {
      const r = parseRoi(bytes);
      const label = Number(file.slice(0, 4));
      assertEquals([r.version, r.type, r.name, r.position], [228, 0, file.slice(0, 4), 0]);
      assertEquals([r.left, r.top, r.right, r.bottom], [
        Math.min(...r.x),
        Math.min(...r.y),
        Math.max(...r.x),
        Math.max(...r.y),
      ]);
      const { missed, extra } = coverage(m, w, label, r);
      assertEquals([missed, extra], [0, 0], `${id} label ${label}`);
    }
  }
});

Deno.test("roi zip: a 3D stack gives slice-label names and positions; freehand type on request", () => {
  const m = new Uint16Array(2 * 8 * 8);
  for (let y = 1; y < 5; y++) for (let x = 2; x < 6; x++) m[64 + y * 8 + x] = 3;
  const files = unzipSync(encodeRoiZip({ data: m, shape: [2, 8, 8] }, { type: "freehand" }));
  assertEquals(Object.keys(files), ["0002-0003.roi"]);
  const r = parseRoi(files["0002-0003.roi"]);
  assertEquals([r.type, r.position, r.name], [7, 2, "0002-0003"]);
  assertEquals([r.left, r.top, r.right, r.bottom, r.x.length], [2, 1, 5, 4, 12]);
});

Deno.test("roi: bad polygons and shapes are refused", () => {
  assertThrows(
    () => encodeRoi([1, 2, 3]),
    CellposeError,
    "ROI polygon needs 1 to 65535 x,y pairs, got 3 values",
  );
  assertThrows(
    () => encodeRoi([-1, 0, 4, 4]),
    CellposeError,
    "ROI coordinates must lie in 0..32767",
  );
  assertThrows(
    () => encodeRoiZip({ data: new Uint16Array(4), shape: [4] }),
    CellposeError,
    "ROIs need masks [H, W] or [Z, H, W]",
  );
});
