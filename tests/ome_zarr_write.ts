/**
 * Test helper: writes an array in the OME-Zarr image layout, OME-NGFF 0.4 on Zarr v2 (`.zgroup`,
 * `.zattrs` with `multiscales`, `<level>/.zarray`) or 0.5 on Zarr v3 (`zarr.json` with
 * `attributes.ome.multiscales`), with a 2x-downsampled second level, chunks written by zarrita.
 * The metadata is written here by hand, independently of io/zarr_labels.ts.
 * @module
 */
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";
import { join } from "node:path";
import type { NdArray, NumericArray } from "../core/ndarray.ts";

const DTYPES: Record<string, [string, string]> = {
  Uint8Array: ["uint8", "|u1"],
  Uint16Array: ["uint16", "<u2"],
  Int16Array: ["int16", "<i2"],
  Float32Array: ["float32", "<f4"],
};

/** Options of {@link writeOmeZarr}. */
export interface WriteOmeZarrOptions {
  version: "0.4" | "0.5";
  /** lower-case OME axis names, e.g. "cyx", "zyx", "tczyx" */
  axes: string;
  chunks: number[];
  /** [true] a second level, 2x smaller in y and x */
  pyramid?: boolean;
  /** v2 compressor / v3 codec after bytes (default: zstd; zarrita encodes no gzip or zlib) */
  codec?: "blosc" | "zstd" | "none";
}

/** Every other pixel in y and x (nearest), for the second level. */
function halve(a: NdArray<NumericArray>): NdArray<NumericArray> {
  const shape = a.shape.slice();
  const n = shape.length, h = shape[n - 2], w = shape[n - 1];
  const h2 = Math.ceil(h / 2), w2 = Math.ceil(w / 2);
  const lead = shape.slice(0, -2).reduce((p, q) => p * q, 1);
  const out = new (a.data.constructor as { new (n: number): NumericArray })(lead * h2 * w2);
  for (let l = 0; l < lead; l++) {
    for (let y = 0; y < h2; y++) {
      for (let x = 0; x < w2; x++) out[(l * h2 + y) * w2 + x] = a.data[(l * h + 2 * y) * w + 2 * x];
    }
  }
  return { data: out, shape: [...shape.slice(0, -2), h2, w2] };
}

/** Writes `image` (C order, dimensions as `options.axes`) as an OME-Zarr image at `dir`. */
export async function writeOmeZarr(
  dir: string,
  image: NdArray<NumericArray>,
  options: WriteOmeZarrOptions,
): Promise<void> {
  const { version, axes, chunks } = options;
  const levels = options.pyramid === false ? [image] : [image, halve(image)];
  const typeOf = (l: string) => l === "c" ? "channel" : l === "t" ? "time" : "space";
  const multiscale = {
    name: "image",
    axes: [...axes].map((l) => ({
      name: l,
      type: typeOf(l),
      ...(typeOf(l) === "space" ? { unit: "micrometer" } : {}),
    })),
    datasets: levels.map((_, i) => ({
      path: String(i),
      coordinateTransformations: [{
        type: "scale",
        scale: [...axes].map((l) => (l === "y" || l === "x") ? 0.5 * 2 ** i : 1),
      }],
    })),
  };
  const [dtype, v2type] = DTYPES[image.data.constructor.name];
  const store = new FileSystemStore(dir);
  await Deno.mkdir(dir, { recursive: true });
  const json = (path: string, v: unknown) => Deno.writeTextFile(path, JSON.stringify(v));
  if (version === "0.5") {
    await json(join(dir, "zarr.json"), {
      zarr_format: 3,
      node_type: "group",
      attributes: { ome: { version: "0.5", multiscales: [multiscale] } },
    });
  } else {
    await json(join(dir, ".zgroup"), { zarr_format: 2 });
    await json(join(dir, ".zattrs"), { multiscales: [{ version: "0.4", ...multiscale }] });
  }
  for (let i = 0; i < levels.length; i++) {
    const a = levels[i];
    const loc = zarr.root(store).resolve(String(i));
    let arr;
    if (version === "0.5") {
      const codec = options.codec === "blosc"
        ? {
          name: "blosc",
          configuration: {
            cname: "lz4",
            clevel: 5,
            shuffle: "shuffle",
            typesize: a.data.BYTES_PER_ELEMENT,
            blocksize: 0,
          },
        }
        : { name: "zstd", configuration: { level: 0, checksum: false } };
      arr = await zarr.create(loc, {
        shape: a.shape,
        chunkShape: chunks,
        dtype: dtype as "uint16",
        fillValue: 0,
        dimensionNames: [...axes],
        codecs: [
          { name: "bytes", configuration: { endian: "little" } },
          ...(options.codec === "none" ? [] : [codec]),
        ],
      });
    } else {
      await Deno.mkdir(join(dir, String(i)), { recursive: true });
      const compressor = options.codec === "blosc"
        ? { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1, blocksize: 0 }
        : { id: "zstd", level: 1 };
      await json(join(dir, String(i), ".zarray"), {
        zarr_format: 2,
        shape: a.shape,
        chunks,
        dtype: v2type,
        compressor: options.codec === "none" ? null : compressor,
        fill_value: 0,
        order: "C",
        filters: null,
        dimension_separator: "/",
      });
      arr = await zarr.open.v2(loc, { kind: "array" });
    }
    const stride = a.shape.map((_, k) => a.shape.slice(k + 1).reduce((p, q) => p * q, 1));
    await zarr.set(arr as zarr.Array<"uint16", FileSystemStore>, null, {
      data: a.data as Uint16Array,
      shape: a.shape,
      stride,
    });
  }
}

/** The Zarr v2 array of {@link declaredOmeZarr}: what its `.zarray` says. */
export interface DeclaredArray {
  shape: number[];
  chunks: number[];
  /** a Zarr v2 dtype, e.g. "|u1", "<u2" */
  dtype: string;
  /** [none] e.g. `{ id: "zlib", level: 9 }` */
  compressor?: unknown;
}

/**
 * An OME-Zarr 0.4 image at `dir` with axes `axes` whose full-resolution array is declared by its
 * `.zarray` alone, no chunk stored (missing chunks read as 0): for sizes no test could write,
 * with the chunk files a test needs added under `<dir>/0/`.
 */
export async function declaredOmeZarr(
  dir: string,
  axes: string,
  array: DeclaredArray,
): Promise<void> {
  const ones = [...axes].map(() => 1);
  await writeOmeZarr(dir, { data: new Uint8Array(1), shape: ones }, {
    version: "0.4",
    axes,
    chunks: ones,
    pyramid: false,
  });
  await Deno.remove(join(dir, "0"), { recursive: true });
  await Deno.mkdir(join(dir, "0"));
  await Deno.writeTextFile(
    join(dir, "0", ".zarray"),
    JSON.stringify({
      zarr_format: 2,
      shape: array.shape,
      chunks: array.chunks,
      dtype: array.dtype,
      compressor: array.compressor ?? null,
      fill_value: 0,
      order: "C",
      filters: null,
    }),
  );
}
