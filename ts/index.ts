/**
 * libtorch-gan: GANs from Node.js and TypeScript at native LibTorch speed.
 * Nothing here prints, installs process handlers or loads the native addon on import.
 */
import * as dist from './distributed/index';
import * as F from './nn/functional';
import * as nn from './nn/index';
import * as optim from './optim/index';
import * as safetensors from './tensor/safetensors';
import * as torch from './tensor/torch';

export { torch, nn, optim, F, safetensors, dist };
export { Tensor } from './tensor/tensor';
export type { DType, Device } from './tensor/dtype';
export { GanStep, type StepResult, type StepInputs, type EpochOptions, type EpochResult, type EpochProgress } from './gan/gan-step';
export { PRECISIONS, type Precision, resolvePrecision } from './gan/precision';
export type { GanStepSpec, NoiseSpec, ConditioningSpec } from './gan/step-spec';
export type { ModuleSpec } from './nn/spec';
export { info, type RuntimeInfo } from './native/info';
export { locateLibTorch, LibTorchNotFoundError, type LibTorchInfo } from './native/locate-libtorch';
export * as data from './data/index';
export { presets, getPreset, adaptPreset, DEFAULT_PRESET, type Preset } from './gan/presets';
export { dcganPreset, dcganModels, DCGAN_SIZES, type ConvShape } from './gan/presets/dcgan';
export { withOneHot, drawLabels } from './gan/condition';
export * as ganLosses from './gan/recipes/losses';
export { diffAugment, DIFF_AUGMENT_POLICIES } from './gan/recipes/diff-augment';
export { applyInit, type InitScheme } from './gan/weights-init';
export { parseConfig, loadConfigFile, resolveConfig, ConfigError, type RunConfig, type ResolvedConfig } from './config/config';
export { Trainer, type TrainResult, type TrainDevice, type TrainerDeviceEvent } from './run/trainer';
export { sample, type SampleOptions } from './store/generator';
export { saveSamples, type Samples } from './gan/sample';
export { Generator, loadGenerator, type GenerateOptions, type GeneratorOptions, type PngOptions } from './serve/generator';
export { imperativeStep } from './gan/imperative-step';
export { noise, type NoiseOptions } from './gan/noise';
export { buildGan, buildModels, type BuiltGan } from './gan/build';
export {
  evaluate,
  QualityEvaluator,
  EvaluationError,
  type ClassifierId,
  type EvaluateOptions,
  type EvaluationReport,
  type QualityScores,
} from './quality/evaluate';
export {
  loadClassifier,
  loadMnistClassifier,
  classifierModel,
  mnistClassifierModel,
  CLASSIFIERS,
  ClassifierError,
  type ClassifierDataset,
  type ClassifierInfo,
} from './quality/classifier';
export { frechetDistance, featureStats, inceptionScore, type FeatureStats } from './quality/metrics';
export { readMetrics, type QualityRow } from './quality/epoch-quality';
export { exportOnnx, exportPytorch, ExportTargetError, OnnxExportError, type ExportOnnxOptions, type ExportedOnnx } from './export/index';
export { loadPytorch, savePytorch, DEFAULT_MAX_BYTES, type LoadPytorchOptions } from './tensor/torch-save';
export { fitStateDict, StateDictFitError } from './nn/state-dict-fit';
