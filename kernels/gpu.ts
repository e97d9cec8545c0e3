/**
 * The thin layer over `navigator.gpu` that the WGSL kernels share: one cached `GPUDevice` (with the
 * adapter's own buffer limits), storage buffers, arrays split over several bindings when they
 * exceed `maxStorageBufferBindingSize`, dispatches split past 65535 workgroups per dimension, and
 * a single readback per result.
 *
 * @example
 * ```ts
 * import { gpuDevice, readBuffer, storageBuffer } from "./gpu.ts";
 * const device = await gpuDevice();
 * if (device) {
 *   const buf = storageBuffer(device, new Float32Array([1, 2, 3]));
 *   console.log(new Float32Array(await readBuffer(device, buf, 12))); // [1, 2, 3]
 * }
 * ```
 * @module
 */
import { CellposeError } from "../core/errors.ts";

/** Threads per workgroup of every 1D kernel here. */
export const WORKGROUP = 64;

let cached: Promise<GPUDevice | null> | undefined;
const infos = new WeakMap<GPUDevice, GPUAdapterInfo>();

/**
 * The shared device, requested once with the adapter's `maxBufferSize`,
 * `maxStorageBufferBindingSize` and `maxStorageBuffersPerShaderStage`.
 * Resolves to null when WebGPU or an adapter is missing (or the device is lost later).
 */
export function gpuDevice(): Promise<GPUDevice | null> {
  cached ??= requestDevice();
  return cached;
}

/**
 * A WebGPU adapter from `navigator.gpu`, or null when there is none. Where `XDG_RUNTIME_DIR` is
 * unset (servers, CI), a private one is set first: without it the system's graphics loaders print
 * "XDG_RUNTIME_DIR is invalid" on every start.
 */
export async function requestGpuAdapter(): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return null;
  try {
    if (!Deno.env.get("XDG_RUNTIME_DIR")) {
      const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/cellpose-deno-xdg-${Deno.uid() ?? 0}`;
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      Deno.env.set("XDG_RUNTIME_DIR", dir);
    }
  } catch { /* no env or fs permission: the loaders only get noisier */ }
  return await gpu.requestAdapter().catch(() => null);
}

/** True for software rasterisers (llvmpipe, lavapipe, SwiftShader, WARP): no real GPU. */
export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  return info.isFallbackAdapter === true ||
    /llvmpipe|lavapipe|swiftshader|software|warp/i.test(`${info.vendor} ${info.description}`);
}

async function requestDevice(): Promise<GPUDevice | null> {
  const adapter = await requestGpuAdapter();
  if (!adapter) return null;
  const { maxBufferSize, maxStorageBufferBindingSize, maxStorageBuffersPerShaderStage } =
    adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: { maxBufferSize, maxStorageBufferBindingSize, maxStorageBuffersPerShaderStage },
  }).catch(() => null);
  if (!device) return null;
  infos.set(device, adapter.info);
  device.lost.then(() => {
    cached = undefined;
  });
  return device;
}

/**
 * The adapter behind a device of {@link gpuDevice} (kept at creation: reading
 * `device.adapterInfo` later can crash Deno once the adapter object is collected).
 */
export function adapterInfo(device: GPUDevice): GPUAdapterInfo | undefined {
  return infos.get(device);
}

/** A storage buffer holding `data` (or `bytes` zeroed bytes), also usable as copy source. */
export function storageBuffer(device: GPUDevice, data: ArrayBufferView | number): GPUBuffer {
  const bytes = typeof data === "number" ? data : data.byteLength;
  checkBufferSize(device, bytes);
  const buffer = device.createBuffer({
    size: Math.max(4, Math.ceil(bytes / 4) * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    mappedAtCreation: typeof data !== "number",
  });
  if (typeof data !== "number") {
    new Uint8Array(buffer.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    buffer.unmap();
  }
  return buffer;
}

/** A uniform buffer holding `data` (a plain struct of 4-byte fields). */
export function uniformBuffer(device: GPUDevice, data: ArrayBufferView): GPUBuffer {
  const buffer = device.createBuffer({
    size: Math.ceil(data.byteLength / 16) * 16,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return buffer;
}

function checkBufferSize(device: GPUDevice, bytes: number): void {
  if (bytes > device.limits.maxBufferSize) {
    throw new CellposeError(
      "TOO_LARGE",
      `a GPU buffer of ${bytes} bytes exceeds this device's maxBufferSize ` +
        `${device.limits.maxBufferSize}; use device "cpu"`,
      bytes,
    );
  }
}

/**
 * Runs `run` (which records, submits and reads back GPU work) inside validation and
 * out-of-memory error scopes, so that a rejected pipeline or buffer becomes a CellposeError
 * instead of silently wrong results: TOO_LARGE when the GPU ran out of memory, UNSUPPORTED when
 * WebGPU refused the work.
 */
export async function checkedRun<T>(
  device: GPUDevice,
  what: string,
  run: () => Promise<T>,
): Promise<T> {
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  const outcome = await run().then((value) => ({ value }), (error: unknown) => ({ error }));
  const invalid = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (oom) {
    throw new CellposeError(
      "TOO_LARGE",
      `${what}: the GPU ran out of memory (${oom.message})`,
      what,
    );
  }
  if (invalid) {
    throw new CellposeError(
      "UNSUPPORTED",
      `${what}: WebGPU refused the work: ${invalid.message}`,
      what,
    );
  }
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}

/** Throws TOO_LARGE when a kernel would need more storage bindings than the device allows. */
export function checkBindingCount(device: GPUDevice, count: number, what: string): void {
  const max = device.limits.maxStorageBuffersPerShaderStage;
  if (count > max) {
    throw new CellposeError(
      "TOO_LARGE",
      `${what} needs ${count} storage bindings, this device allows ${max}; use device "cpu"`,
      count,
    );
  }
}

/** Copies the first `bytes` of `buffer` back to the host once all submitted work is done. */
export async function readBuffer(
  device: GPUDevice,
  buffer: GPUBuffer,
  bytes: number,
): Promise<ArrayBuffer> {
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = device.createBuffer({
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.destroy();
  return out;
}

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** The compute pipeline of a WGSL source (entry point `main`), compiled once per device. */
export function computePipeline(device: GPUDevice, code: string): GPUComputePipeline {
  let byCode = pipelines.get(device);
  if (!byCode) pipelines.set(device, byCode = new Map());
  let pipeline = byCode.get(code);
  if (!pipeline) {
    pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    });
    byCode.set(code, pipeline);
  }
  return pipeline;
}

const sources = new Map<string, Promise<string>>();

/** Loads a `.wgsl` file next to this module (file: in Deno, http: in a browser), once. */
export function wgslSource(name: string): Promise<string> {
  let src = sources.get(name);
  if (!src) {
    src = fetch(new URL(name, import.meta.url)).then((res) => {
      if (!res.ok) throw new CellposeError("BAD_FILE", `kernel ${name} not found`, name);
      return res.text();
    });
    src.catch(() => sources.delete(name));
    sources.set(name, src);
  }
  return src;
}

/**
 * Workgroup counts for `threads` invocations of a {@link WORKGROUP}-wide kernel: `[x, y]` with
 * `x <= maxComputeWorkgroupsPerDimension`. Kernels rebuild the flat index as
 * `gid.x + gid.y * num_workgroups.x * WORKGROUP` and skip indices past the end.
 */
export function workgroupGrid(device: GPUDevice, threads: number): [number, number] {
  const groups = Math.max(1, Math.ceil(threads / WORKGROUP));
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= maxDim) return [groups, 1];
  const y = Math.ceil(groups / maxDim);
  return [Math.ceil(groups / y), y];
}

/**
 * How one logical array is split over bindings of at most `maxBindingBytes` (default: the
 * device's `maxStorageBufferBindingSize`): `chunks` consecutive ranges of `chunkElems` elements
 * of one buffer, each range starting at an offset aligned for storage bindings.
 */
export interface ChunkLayout {
  elems: number;
  elemBytes: number;
  chunkElems: number;
  chunks: number;
}

/** Plans the bindings of an array of `elems` elements of `elemBytes` bytes each. */
export function chunkLayout(
  device: GPUDevice,
  elems: number,
  elemBytes: number,
  maxBindingBytes = device.limits.maxStorageBufferBindingSize,
): ChunkLayout {
  const align = Math.max(device.limits.minStorageBufferOffsetAlignment, elemBytes);
  const alignedElems = align / elemBytes;
  const fit = Math.floor(maxBindingBytes / elemBytes / alignedElems) * alignedElems;
  if (fit < 1) {
    throw new CellposeError("BAD_PARAMETER", `binding size ${maxBindingBytes} is too small`, fit);
  }
  const chunkElems = Math.min(fit, Math.max(elems, 1));
  return { elems, elemBytes, chunkElems, chunks: Math.max(1, Math.ceil(elems / chunkElems)) };
}

/**
 * WGSL for an array split as `layout`: one `var<storage>` per chunk from `@binding(first)` on,
 * plus `NAME_get(i)` (and `NAME_set(i, v)` when writable) over the whole index range.
 */
export function chunkedWgsl(
  name: string,
  layout: ChunkLayout,
  type: string,
  writable: boolean,
  first: number,
): string {
  const access = writable ? "read_write" : "read";
  const lines: string[] = [];
  for (let c = 0; c < layout.chunks; c++) {
    lines.push(
      `@group(0) @binding(${first + c}) var<storage, ${access}> ${name}_${c}: array<${type}>;`,
    );
  }
  const last = layout.chunks - 1;
  const body = (stmt: (c: number, j: string) => string) => {
    if (layout.chunks === 1) return stmt(0, "i");
    const cases = Array.from({ length: last }, (_, c) => `case ${c}u: { ${stmt(c, "j")} }`);
    return `let c = i / ${layout.chunkElems}u; let j = i - c * ${layout.chunkElems}u; ` +
      `switch c { ${cases.join(" ")} default: { ${stmt(last, "j")} } }`;
  };
  lines.push(
    `fn ${name}_get(i: u32) -> ${type} { ${body((c, j) => `return ${name}_${c}[${j}];`)} }`,
  );
  if (writable) {
    lines.push(
      `fn ${name}_set(i: u32, v: ${type}) { ${body((c, j) => `${name}_${c}[${j}] = v;`)} }`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Bind-group entries of `buffer` split as `layout`, from `@binding(first)` on. */
export function chunkedEntries(
  buffer: GPUBuffer,
  layout: ChunkLayout,
  first: number,
): GPUBindGroupEntry[] {
  const total = Math.max(4, layout.elems * layout.elemBytes);
  return Array.from({ length: layout.chunks }, (_, c) => {
    const offset = c * layout.chunkElems * layout.elemBytes;
    const size = Math.min(layout.chunkElems * layout.elemBytes, total - offset);
    return { binding: first + c, resource: { buffer, offset, size } };
  });
}
