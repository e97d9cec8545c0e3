/**
 * The plain n-dimensional array every numeric step works on: a typed array in C (row-major)
 * order plus its shape.
 *
 * @example
 * ```ts
 * import { ndarray, size } from "./ndarray.ts";
 * const a = ndarray(new Float32Array(6), [2, 3]);
 * console.log(size(a.shape)); // 6
 * ```
 * @module
 */
import { CellposeError } from "./errors.ts";

/** Typed arrays an {@link NdArray} can hold. */
export type TypedArray =
  | Uint8Array
  | Uint8ClampedArray
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** Typed arrays holding plain numbers (no bigint). */
export type NumericArray = Exclude<TypedArray, BigInt64Array | BigUint64Array>;

/** A C-ordered n-dimensional array. */
export interface NdArray<T extends TypedArray = TypedArray> {
  /** the values, C order (last axis fastest) */
  data: T;
  /** the size of each axis */
  shape: number[];
}

/** Number of elements of a shape. */
export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Builds an {@link NdArray}, checking that the data length matches the shape. */
export function ndarray<T extends TypedArray>(data: T, shape: number[]): NdArray<T> {
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new CellposeError(
      "BAD_SHAPE",
      `shape must be non-negative integers, got [${shape}]`,
      shape,
    );
  }
  if (data.length !== size(shape)) {
    throw new CellposeError(
      "BAD_SHAPE",
      `data has ${data.length} elements but shape [${shape}] needs ${size(shape)}`,
      shape,
    );
  }
  return { data, shape };
}

/** C-order strides (in elements) of a shape. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}
