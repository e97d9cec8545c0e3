/**
 * cellpose-deno: Cellpose-SAM cell segmentation in TypeScript for Deno.
 *
 * This module only re-exports; each piece lives in its own module.
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
  listModels,
  MODEL_REGISTRY,
  type ModelInfo,
  modelsDir,
  type Precision,
  type ResolvedModel,
  resolveModel,
} from "./models/store.ts";
export type { DownloadResult, ModelProgress } from "./models/download.ts";
export {
  convertModel,
  type ConvertModelResult,
  loadModel,
  type LoadModelOptions,
} from "./models/load.ts";
export { segment, type SegmentWithModel } from "./pipeline/segment.ts";
export { convertImage, type ConvertOptions } from "./pipeline/channels.ts";
export { normalizeImage } from "./pipeline/normalize.ts";
export { resizeImage } from "./pipeline/resize.ts";
export { type NetworkOptions, type NetworkOutput, runNetwork } from "./pipeline/flows.ts";
export { type AppOptions, type CellposeApp, createApp } from "./server/app.ts";
export { type RunningServer, type ServerOptions, startServer } from "./server/main.ts";
export { type LoadedImage, readImage } from "./io/image.ts";
export { readTiff } from "./io/tiff_read.ts";
export { encodeTiff, type TiffWriteOptions, writeTiff } from "./io/tiff_write.ts";
export { encodePng, readPng, writePng } from "./io/png.ts";
export { encodeLabels, labelArray, type LabelFormat, writeLabels } from "./io/labels.ts";
export { encodeRoi, encodeRoiZip, type RoiType, writeRoiZip } from "./io/roi.ts";
export {
  masksToOutlines,
  type Outline,
  outlineOverlayPng,
  outlinePixels,
  outlinesText,
} from "./io/outlines.ts";
export { type MaskStat, maskStats, statsCsv } from "./io/stats.ts";
export { type OutputNames, outputNames } from "./io/names.ts";
export { gpuBackend, type GpuBackendOptions } from "./kernels/backend_gpu.ts";
export { encodeSegNpy, type SegContent, writeSegNpy } from "./io/seg_npy.ts";
export { computeMasks, type ComputeMasksOptions } from "./dynamics/compute_masks.ts";
export { masksToFlows } from "./dynamics/masks_to_flows.ts";
export type { DynamicsBackend } from "./dynamics/backend.ts";
export { cpuBackend } from "./dynamics/cpu_backend.ts";
export {
  averagePrecision,
  errorRate,
  intersectionOverUnion,
  type IouPairs,
  iouPairs,
  type MatchCounts,
} from "./metrics/matching.ts";
export {
  type Block,
  type BlockOptions,
  type BlockPlan,
  neighbours,
  planBlocks,
  type Rect,
} from "./pipeline/blocks.ts";
export {
  applyMerge,
  type BlockOutput,
  blockOutput,
  type BlockSummary,
  decodeSummary,
  encodeSummary,
  mergeBlocks,
  type MergeOptions,
  type MergeResult,
  summarizeBlock,
} from "./pipeline/merge_labels.ts";
export {
  arraySource,
  assembleBlocks,
  type AssembleOptions,
  type BlockJobOptions,
  type CoreReader,
  imageNormalization,
  segmentBlock,
  segmentLarge,
  type SegmentLargeOptions,
  type SegmentLargeResult,
  writeMergedLabels,
} from "./pipeline/segment_large.ts";
export { openTiff, type TiffSource } from "./io/tiff_lazy.ts";
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
export { type AugmentOptions, randomRotateAndResize } from "./train/augment.ts";
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
