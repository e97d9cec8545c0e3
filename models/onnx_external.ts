/**
 * ONNX external data: lays the large initializers of a graph out in a separate file (page-aligned
 * offsets, so runtimes can map them) and writes that file tensor by tensor, so that no second
 * copy of the weights is ever held. Needed beyond protobuf's 2 GB limit (the real cpsam is
 * 1.2 GB in fp32, and loading a model with its weights inline copies them once more).
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./onnx_builder.ts";
 * import { externalBytes, layoutExternal } from "./onnx_external.ts";
 * const g = new GraphBuilder();
 * g.weight("big", [1024], () => new Float32Array(1024).fill(1));
 * g.weight("small", [2], () => new Float32Array(2));
 * const layout = layoutExternal(g.inits, "m.onnx.data");
 * if (!layout.initializers[0].external || layout.initializers[1].external) throw new Error("?");
 * if (externalBytes(layout).length !== 4096) throw new Error("unexpected length");
 * ```
 * @module
 */
import { writeAll } from "../core/fs.ts";
import type { LazyTensor } from "./onnx_builder.ts";
import type { OnnxTensor } from "./onnx_proto.ts";

/** initializers at least this large go to the external data file */
const EXTERNAL_MIN_BYTES = 1024;
/** external data offsets are page aligned so runtimes can map them */
const EXTERNAL_ALIGN = 4096;

/** Initializers as the model refers to them, and where each external one lies in the file. */
export interface ExternalLayout {
  /** the model's initializers: inline (small ones) or references into the data file */
  initializers: OnnxTensor[];
  /** the external tensors in file order */
  pieces: { offset: number; tensor: LazyTensor }[];
  /** length of the data file */
  dataLength: number;
}

/**
 * Places initializers of 1 KiB and more in the data file named `location` (relative to the
 * model); without `location`, every initializer stays inline.
 */
export function layoutExternal(inits: readonly LazyTensor[], location?: string): ExternalLayout {
  const pieces: ExternalLayout["pieces"] = [];
  let dataLength = 0;
  const initializers = inits.map((t): OnnxTensor => {
    if (!location || t.byteLength < EXTERNAL_MIN_BYTES) {
      return { name: t.name, type: t.type, dims: t.dims, data: t.bytes() };
    }
    const offset = Math.ceil(dataLength / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
    pieces.push({ offset, tensor: t });
    dataLength = offset + t.byteLength;
    return {
      name: t.name,
      type: t.type,
      dims: t.dims,
      external: { location, offset, length: t.byteLength },
    };
  });
  return { initializers, pieces, dataLength };
}

/** The data file's bytes in memory (for small models and tests). */
export function externalBytes(layout: ExternalLayout): Uint8Array {
  const data = new Uint8Array(layout.dataLength);
  for (const { offset, tensor } of layout.pieces) data.set(tensor.bytes(), offset);
  return data;
}

/** Writes the data file to `path`, one tensor at a time. */
export async function writeExternalData(path: string, layout: ExternalLayout): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    let at = 0;
    for (const { offset, tensor } of layout.pieces) {
      if (offset > at) await writeAll(file, new Uint8Array(offset - at));
      await writeAll(file, tensor.bytes());
      at = offset + tensor.byteLength;
    }
  } finally {
    file.close();
  }
}
