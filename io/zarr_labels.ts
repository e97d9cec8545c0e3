/**
 * Label images written into an OME-Zarr image as an OME-NGFF `labels` group, chunk by chunk:
 * `<image>/labels/<name>/0` is an unsharded integer array with the image's axes less `c` (time
 * and Z of size 1), chunked like the image in Y and X, with the image's full-resolution scale, an
 * `image-label` entry pointing back at the image, and `<image>/labels` lists `<name>`. The Zarr
 * format and OME version follow the image's (Zarr v2 + 0.4 with a Blosc-LZ4 compressor, Zarr v3 +
 * 0.5 with zstd, the defaults of Python's zarr). Rows arrive in order ({@link LabelSink}); one
 * band of chunk rows is held at a time. The group is built in a hidden folder and renamed into
 * place on close, so an aborted write leaves nothing (and an earlier label of the same name
 * stays until the new one is complete).
 *
 * @example
 * ```ts ignore
 * import { zarrLabels } from "./zarr_labels.ts";
 * const sink = await zarrLabels("/data/slide.ome.zarr", { name: "cp_masks" })(Uint32Array, 20000, 20000);
 * // ... 20000 rows of 20000 labels, in bands
 * await sink.close();
 * ```
 * @module
 */
import * as zarr from "zarrita";
import FileSystemStore from "@zarrita/storage/fs";
import { join, resolve } from "node:path";
import { CellposeError } from "../core/errors.ts";
import type { LabelSink, LabelTarget } from "./label_sink.ts";
import { readOmeZarrInfo } from "./ome_zarr.ts";

/** Options of {@link zarrLabels}. */
export interface ZarrLabelsOptions {
  /** ["cp_masks"] name of the label image in `<image>/labels` */
  name?: string;
  /** chunk height and width (default: the image's Y and X chunks) */
  chunks?: [number, number];
}

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2));

async function readJsonOr(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
}

/**
 * A {@link LabelTarget} that writes the labels into the OME-Zarr image folder `image` (see the
 * module doc). Opening it throws BAD_FILE when `image` is not an OME-Zarr image, and BAD_SHAPE
 * when the label size differs from the image's Y x X or the image has more than one time point
 * or Z plane (the block path makes 2-D labels).
 */
export function zarrLabels(image: string, options: ZarrLabelsOptions = {}): LabelTarget {
  const name = options.name ?? "cp_masks";
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith(".")) {
    throw new CellposeError(
      "BAD_PARAMETER",
      `label name must be letters, digits, '_', '-' or '.', not starting with '.', got ${
        JSON.stringify(name)
      }`,
      name,
    );
  }
  return async (type, width, height) => {
    const info = await readOmeZarrInfo(image);
    const dim = (l: string) => info.axes.includes(l) ? info.shape[info.axes.indexOf(l)] : 1;
    if (dim("Y") !== height || dim("X") !== width || dim("T") > 1 || dim("Z") > 1) {
      throw new CellposeError(
        "BAD_SHAPE",
        `${image}: ${height} x ${width} labels do not fit the image (axes ${info.axes}, shape ` +
          `[${info.shape}]; 2-D labels need one time point and one Z plane)`,
        info.shape,
      );
    }
    const keep = [...info.axes].map((a, i) => [a, i] as const).filter(([a]) => a !== "C");
    const axes = keep.map(([, i]) => info.axisMeta[i]);
    const shape = keep.map(([a, i]) => (a === "Y" || a === "X") ? info.shape[i] : 1);
    const yi = info.axes.indexOf("Y"), xi = info.axes.indexOf("X");
    const side = (n: number, size: number) => Math.min(size, Math.max(64, n));
    const [ch, cw] = options.chunks ??
      [side(info.chunks[yi], height), side(info.chunks[xi], width)];
    const chunkShape = keep.map(([a]) => a === "Y" ? ch : a === "X" ? cw : 1);
    const scale = keep.map(([, i]) => info.scale[i] ?? 1);
    const dtype = type === Uint32Array ? "uint32" : "uint16";

    const root = resolve(image), labelsDir = join(root, "labels");
    const finalDir = join(labelsDir, name);
    const tmpDir = join(labelsDir, `.${name}.partial-${crypto.randomUUID().slice(0, 8)}`);
    await Deno.mkdir(tmpDir, { recursive: true });
    const store = new FileSystemStore(tmpDir);
    const multiscale = {
      name,
      axes,
      datasets: [{ path: "0", coordinateTransformations: [{ type: "scale", scale }] }],
    };
    const source = { image: "../../" };
    let arr: zarr.Array<"uint16" | "uint32", FileSystemStore>;
    if (info.zarrFormat === 3) {
      await Deno.writeFile(
        join(tmpDir, "zarr.json"),
        enc({
          zarr_format: 3,
          node_type: "group",
          attributes: {
            ome: { version: info.version, multiscales: [multiscale], "image-label": { source } },
          },
        }),
      );
      arr = await zarr.create(zarr.root(store).resolve("0"), {
        shape,
        chunkShape,
        dtype,
        fillValue: 0,
        dimensionNames: axes.map((a) => a.name),
        codecs: [
          { name: "bytes", configuration: { endian: "little" } },
          { name: "zstd", configuration: { level: 0, checksum: false } },
        ],
      }) as typeof arr;
    } else {
      const version = info.version;
      await Deno.writeFile(join(tmpDir, ".zgroup"), enc({ zarr_format: 2 }));
      await Deno.writeFile(
        join(tmpDir, ".zattrs"),
        enc({
          multiscales: [{ version, ...multiscale }],
          "image-label": { version, source },
        }),
      );
      await Deno.mkdir(join(tmpDir, "0"));
      await Deno.writeFile(
        join(tmpDir, "0", ".zarray"),
        enc({
          zarr_format: 2,
          shape,
          chunks: chunkShape,
          dtype: dtype === "uint32" ? "<u4" : "<u2",
          compressor: { id: "blosc", cname: "lz4", clevel: 5, shuffle: 1, blocksize: 0 },
          fill_value: 0,
          order: "C",
          filters: null,
          dimension_separator: "/",
        }),
      );
      arr = await zarr.open.v2(zarr.root(store).resolve("0"), { kind: "array" }) as typeof arr;
    }

    const band = new type(ch * width);
    let bandRows = 0, rowsDone = 0;
    const flush = async () => {
      if (bandRows === 0) return;
      const sel = keep.map(([a]) =>
        a === "Y" ? zarr.slice(rowsDone, rowsDone + bandRows) : a === "X" ? null : 0
      );
      const data = band.subarray(0, bandRows * width);
      await zarr.set(arr, sel, { data, shape: [bandRows, width], stride: [width, 1] });
      rowsDone += bandRows;
      bandRows = 0;
    };
    const sink: LabelSink = {
      paths: [finalDir],
      partials: [tmpDir],
      async write(rows) {
        if (rows.length % width !== 0 || !(rows instanceof type)) {
          throw new CellposeError(
            "BAD_SHAPE",
            `label rows must be whole ${type.name} rows of ${width}, got ${rows.length} values`,
            rows.length,
          );
        }
        for (let at = 0; at < rows.length;) {
          const n = Math.min(ch - bandRows, (rows.length - at) / width);
          band.set(rows.subarray(at, at + n * width), bandRows * width);
          bandRows += n;
          at += n * width;
          if (bandRows === ch) await flush();
        }
      },
      async close() {
        await flush();
        if (rowsDone !== height) {
          throw new CellposeError(
            "BAD_SHAPE",
            `labels for ${image} got ${rowsDone} rows, the image has ${height}`,
            rowsDone,
          );
        }
        await publish(labelsDir, tmpDir, finalDir, name, info.zarrFormat, info.version);
      },
      async abort() {
        await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
      },
    };
    return sink;
  };
}

/** Moves the finished label group into place and lists it in `<image>/labels`. */
async function publish(
  labelsDir: string,
  tmpDir: string,
  finalDir: string,
  name: string,
  format: 2 | 3,
  version: string,
): Promise<void> {
  const old = `${tmpDir}.old`;
  let replaced = false;
  try {
    await Deno.rename(finalDir, old);
    replaced = true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.rename(tmpDir, finalDir);
  if (replaced) await Deno.remove(old, { recursive: true });
  if (format === 3) {
    const meta = await readJsonOr(join(labelsDir, "zarr.json"));
    const attrs = (meta.attributes ?? {}) as Record<string, unknown>;
    const ome = (attrs.ome ?? {}) as Record<string, unknown>;
    const labels = Array.isArray(ome.labels) ? ome.labels as string[] : [];
    const out = {
      zarr_format: 3,
      node_type: "group",
      attributes: { ...attrs, ome: { ...ome, version, labels: [...new Set([...labels, name])] } },
    };
    await Deno.writeFile(join(labelsDir, "zarr.json"), enc(out));
  } else {
    await Deno.writeFile(join(labelsDir, ".zgroup"), enc({ zarr_format: 2 }));
    const attrs = await readJsonOr(join(labelsDir, ".zattrs"));
    const labels = Array.isArray(attrs.labels) ? attrs.labels as string[] : [];
    await Deno.writeFile(
      join(labelsDir, ".zattrs"),
      enc({ ...attrs, labels: [...new Set([...labels, name])] }),
    );
  }
}
