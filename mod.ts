/**
 * cellpose-deno: Cellpose-SAM cell segmentation in TypeScript for Deno, the library.
 *
 * Read an image, load a model, segment, write the outputs; large images block by block
 * (`segmentLarge`), on many machines (`runOnRedis`, `runWorker`), and training (`train`). The HTTP
 * server is its own entry point (`server/mod.ts`, which this module does not load), and the
 * block-wise internals (block plans, per-block summaries, the label merge) are under
 * `pipeline/large/mod.ts`. This module only re-exports; each piece lives in its own module.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { averagePrecision, computeMasks, masksToFlows, ndarray } from "./mod.ts";
 * // two square cells: their flows, followed back, give the same two masks
 * const labels = ndarray(new Uint32Array(16 * 16), [16, 16]);
 * for (let y = 2; y < 7; y++) for (let x = 2; x < 7; x++) labels.data[y * 16 + x] = 1;
 * for (let y = 9; y < 14; y++) for (let x = 8; x < 14; x++) labels.data[y * 16 + x] = 2;
 * // unit flows, scaled by 5 as the network predicts them (the flow check divides by 5)
 * const unit = masksToFlows(labels);
 * const flows = ndarray(unit.data.map((v) => 5 * v), unit.shape);
 * const cellprob = ndarray(Float32Array.from(labels.data, (v) => (v ? 5 : -5)), [16, 16]);
 * const masks = await computeMasks(flows, cellprob, { minSize: 0 });
 * assertEquals(averagePrecision(labels, masks, [0.5]).ap[0], 1);
 * ```
 * @module
 */
export { CellposeError, type CellposeErrorCode } from "./core/errors.ts";
export { type NdArray, ndarray, type NumericArray, type TypedArray } from "./core/ndarray.ts";
export type {
  Device,
  DynamicsOptions,
  FollowFrame,
  ImageArray,
  ImageSource,
  NetRunner,
  NormalizeOptions,
  Progress,
  SegmentOptions,
  SegmentResult,
  Stage,
} from "./core/types.ts";
export { readNpy, readNpyFile, writeNpy } from "./io/npy.ts";
export {
  downloadModel,
  type DownloadModelOptions,
  listModels,
  MODEL_REGISTRY,
  type ModelInfo,
  modelsDir,
  type ModelVariant,
  type Precision,
  type RegistryEntry,
  type ResolvedModel,
  resolveModel,
  type ResolveOptions,
  type StoreOptions,
} from "./models/store.ts";
export { PRECISIONS } from "./models/precision.ts";
export type { DownloadResult, ModelProgress } from "./models/download.ts";
export {
  convertModel,
  type ConvertModelOptions,
  type ConvertModelResult,
  loadModel,
  type LoadModelOptions,
} from "./models/load.ts";
export { segment, type SegmentWithModel } from "./pipeline/segment.ts";
export { convertImage, type ConvertOptions } from "./pipeline/channels.ts";
export { normalizeImage } from "./pipeline/normalize.ts";
export { resizeImage } from "./pipeline/resize.ts";
export { type NetworkOptions, type NetworkOutput, runNetwork } from "./pipeline/flows.ts";
export { DEFAULT_MAX_DECODED_BYTES, type LoadedImage, readImage } from "./io/image.ts";
export { type ReadOptions, readTiff } from "./io/tiff_read.ts";
export { encodeTiff, type TiffWriteOptions, writeTiff } from "./io/tiff_write.ts";
export { encodePng, type PngReadOptions, readPng, writePng } from "./io/png.ts";
export { encodeLabels, labelArray, type LabelFormat, writeLabels } from "./io/labels.ts";
export { encodeRoi, encodeRoiZip, type RoiOptions, type RoiType, writeRoiZip } from "./io/roi.ts";
export {
  masksToOutlines,
  type Outline,
  outlineOverlayPng,
  outlinePixels,
  outlinesText,
} from "./io/outlines.ts";
export { type MaskStat, maskStats, statsCsv } from "./io/stats.ts";
export { type OutputNames, outputNames } from "./io/names.ts";
export {
  type EncodedOutput,
  encodeOutput,
  OUTPUT_KINDS,
  outputFileName,
  type OutputKind,
  outputSkipReason,
  type OutputSource,
  resultSummary,
} from "./io/output_formats.ts";
export { type SavedOutputs, type SaveOptions, saveOutputs } from "./io/outputs.ts";
export { gpuBackend, type GpuBackendOptions } from "./kernels/backend_gpu.ts";
export { encodeSegNpy, type SegContent, writeSegNpy } from "./io/seg_npy.ts";
export { computeMasks, type ComputeMasksOptions } from "./dynamics/compute_masks.ts";
export { masksToFlows } from "./dynamics/masks_to_flows.ts";
export type { DynamicsBackend } from "./core/backend.ts";
export { cpuBackend } from "./dynamics/cpu_backend.ts";
export {
  averagePrecision,
  errorRate,
  intersectionOverUnion,
  type IouPairs,
  iouPairs,
  type MatchCounts,
} from "./metrics/matching.ts";
export { arraySource } from "./io/array_source.ts";
export {
  segmentLarge,
  type SegmentLargeOptions,
  type SegmentLargeResult,
} from "./pipeline/segment_large.ts";
export { openTiff, type OpenTiffOptions, type TiffSource } from "./io/tiff_lazy.ts";
export { openImageSource, type OpenSource } from "./io/image_source.ts";
export {
  type OmeZarrInfo,
  type OmeZarrOptions,
  type OmeZarrSource,
  openOmeZarr,
  readOmeZarrInfo,
} from "./io/ome_zarr.ts";
export { zarrLabels, type ZarrLabelsOptions } from "./io/zarr_labels.ts";
export {
  allLabels,
  type LabelSink,
  type LabelTarget,
  type LabelType,
  tiffLabels,
} from "./io/label_sink.ts";
export { type SampleType, type StripWriterOptions, TiffStripWriter } from "./io/tiff_strips.ts";
export { readCheckpoint, readCheckpointFile, type StateDict } from "./models/checkpoint.ts";
export {
  buildCpsamOnnx,
  type BuildOptions,
  type BuiltModel,
  convertCheckpoint,
  type ConvertResult,
  writeCpsamOnnx,
} from "./models/cpsam_graph.ts";
export { type CpsamConfig, cpsamConfig } from "./models/cpsam_config.ts";
export { createRunner, gpuAdapterInfo, type RunnerOptions } from "./models/runtime.ts";
export { initCpsam, type InitOptions } from "./models/cpsam_init.ts";
export { writeCheckpoint, type WriteCheckpointOptions } from "./models/checkpoint_write.ts";
export {
  type LabelledImage,
  train,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
} from "./train/train.ts";
export {
  type BatchLoss,
  lossAndGradients,
  type LossAndGradientsOptions,
  TrainingNet,
  type TrainingNetOptions,
} from "./train/net.ts";
export { loadTrainingImage, type TrainingImage } from "./train/dataset.ts";
export { type PairOptions, type TrainingPair, trainingPairs } from "./io/files.ts";
export {
  type AugmentedBatch,
  type AugmentOptions,
  randomRotateAndResize,
} from "./train/augment.ts";
export type { TrainDevice } from "./train/session.ts";
export type { Block, BlockOptions, BlockPlan, Rect } from "./pipeline/blocks.ts";
export type { GpuRunOptions } from "./kernels/follow_flows_gpu.ts";
export { type ExtraAugmentOptions } from "./train/extra_augment.ts";
export { learningRates } from "./train/schedule.ts";
export { AdamW, type AdamWOptions, type AdamWState } from "./train/adamw.ts";
export { NumpyRandom } from "./core/random.ts";
export {
  blockPlanOf,
  type CreatePlanOptions,
  createRunPlan,
  type ImageIdentity,
  openPlannedImage,
  type PlannedOptions,
  readRunPlan,
  type RunOutput,
  type RunPlan,
  writeRunPlan,
} from "./distributed/run_plan.ts";
export {
  type PlannedBlockOptions,
  type PlannedBlockResult,
  runPlannedBlock,
} from "./distributed/block_job.ts";
export { checkResults, mergeRun, type MergeRunResult } from "./distributed/merge_run.ts";
export {
  type CoordinatorOptions,
  type RedisRunResult,
  runOnRedis,
  type RunProgress,
} from "./distributed/coordinator.ts";
export { runWorker, type WorkerEvent, type WorkerOptions } from "./distributed/worker.ts";
