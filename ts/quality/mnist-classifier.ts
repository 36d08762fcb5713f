/**
 * The package's MNIST classifier, the feature extractor of its quality metrics (classifier-FID, IS,
 * class coverage). A small conv net trained by the package's own facade (scripts/train-classifier.mjs,
 * `npm run train:classifier`); its weights ship in models/ with a SHA-256 and the figures of the run
 * that made them (models/mnist-classifier.json).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sha256Hex } from '../data/download';
import { Conv2d } from '../nn/conv';
import { Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers';
import { type Device } from '../tensor/dtype';
import * as safetensors from '../tensor/safetensors';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { packageRoot } from '../util/package';
import { withRngState } from '../gan/noise';

/** What the classifier reads: one channel of 28x28 pixels in '[-1,1]' (the package's pixel convention). */
export const CLASSIFIER_INPUT = Object.freeze({ channels: 1, size: 28, range: '[-1,1]' as const });
/** Width of the penultimate layer, the features FID is computed on. */
export const FEATURE_DIM = 128;
export const CLASSES = 10;

/** The shipped weights and their record (sha256, accuracy, seed, command). */
export const CLASSIFIER_FILES = Object.freeze({
  weights: path.join(packageRoot, 'models', 'mnist-classifier.safetensors'),
  record: path.join(packageRoot, 'models', 'mnist-classifier.json'),
});

export class ClassifierError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClassifierError';
  }
}

/** The record scripts/train-classifier.mjs writes beside the weights. */
export interface ClassifierRecord {
  sha256: string;
  testAccuracy: number;
  seed: number;
  epochs: number;
  command: string;
  [k: string]: unknown;
}

/** The architecture: three conv-ReLU-maxpool blocks (28 -> 14 -> 7 -> 3), a 128-wide ReLU layer, 10 logits. */
export function mnistClassifierModel(opts: { device?: Device } = {}): Sequential {
  const o = { device: opts.device };
  return new Sequential(
    new Conv2d(1, 32, 3, { padding: 1, ...o }),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(32, 64, 3, { padding: 1, ...o }),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(64, 64, 3, { padding: 1, ...o }),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    new Linear(64 * 3 * 3, FEATURE_DIM, o),
    new ReLU(),
    new Linear(FEATURE_DIM, CLASSES, o),
  );
}

/** Features (penultimate layer, [N, 128]) and logits ([N, 10]) of a batch of [N, 1, 28, 28] images. */
export function featuresAndLogits(model: Sequential, x: Tensor): { features: Tensor; logits: Tensor } {
  const layers = model.children();
  const last = layers.length - 1;
  let h = x;
  for (let i = 0; i < last; i++) h = layers[i]!.forward(h);
  return { features: h, logits: layers[last]!.forward(h) };
}

/** The record beside the shipped weights; throws ClassifierError naming the file when it is missing or malformed. */
export function readClassifierRecord(file = CLASSIFIER_FILES.record): ClassifierRecord {
  let rec: unknown;
  try {
    rec = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ClassifierError(`cannot read the classifier record ${file}: ${(e as Error).message}`);
  }
  const r = rec as Partial<ClassifierRecord>;
  if (typeof r !== 'object' || r === null || typeof r.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(r.sha256))
    throw new ClassifierError(`${file}: expected an object with a 64-digit hex sha256, got ${JSON.stringify(rec)?.slice(0, 200)}`);
  return r as ClassifierRecord;
}

/**
 * The trained classifier in eval mode, its weights checked against the record's SHA-256 first (a
 * corrupt or replaced file is an error naming both digests, never silently wrong metrics).
 */
export function loadMnistClassifier(opts: { device?: Device; weights?: string; record?: string } = {}): { model: Sequential; record: ClassifierRecord } {
  const weightsFile = opts.weights ?? CLASSIFIER_FILES.weights;
  const record = readClassifierRecord(opts.record ?? CLASSIFIER_FILES.record);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(weightsFile);
  } catch (e) {
    throw new ClassifierError(`cannot read the classifier weights ${weightsFile}: ${(e as Error).message}`);
  }
  const digest = sha256Hex(bytes);
  if (digest !== record.sha256)
    throw new ClassifierError(
      `${weightsFile}: SHA-256 ${digest} does not match ${record.sha256} in ${opts.record ?? CLASSIFIER_FILES.record} (corrupt or replaced file; reinstall the package)`,
    );
  // building the model draws its init from the global generator: leave that as it was
  const model = withRngState(() => mnistClassifierModel({ device: opts.device }));
  try {
    torch.scope(() => model.loadStateDict(safetensors.load(bytes, { device: opts.device })));
  } catch (e) {
    model.dispose();
    throw new ClassifierError(`${weightsFile}: ${(e as Error).message}`);
  }
  return { model: model.eval() as Sequential, record };
}
