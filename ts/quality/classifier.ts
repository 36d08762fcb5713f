/**
 * The package's classifiers, the feature extractors of its quality metrics (classifier-FID, IS, class
 * coverage): one per dataset whose runs can be scored (MNIST digits, Fashion-MNIST clothing), the same
 * small conv net for both, trained by the package's own facade (scripts/train-classifier.mjs,
 * `npm run train:classifier -- --dataset <name>`). Each one's weights ship in models/ with a SHA-256
 * and the figures of the run that made them (models/<name>.json).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type DatasetName } from '../data/catalog';
import { sha256Hex } from '../data/download';
import { Conv2d } from '../nn/conv';
import { Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers';
import { type Device } from '../tensor/dtype';
import * as safetensors from '../tensor/safetensors';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { describeValue } from '../util/describe';
import { packageRoot } from '../util/package';
import { withRngState } from '../gan/noise';

/** What the classifier reads: one channel of 28x28 pixels in '[-1,1]' (the package's pixel convention). */
export const CLASSIFIER_INPUT = Object.freeze({ channels: 1, size: 28, range: '[-1,1]' as const });
/** Width of the penultimate layer, the features FID is computed on. */
export const FEATURE_DIM = 128;
export const CLASSES = 10;

/** The datasets a classifier ships for, by the run config's names (config `data.dataset`). */
export type ClassifierDataset = 'mnist' | 'fashion-mnist';

/** One shipped classifier: what it was trained on and where its files are. */
export interface ClassifierInfo {
  dataset: ClassifierDataset;
  /** Its name in reports and its files' stem in models/: 'mnist-classifier', 'fashion-mnist-classifier'. */
  name: string;
  /** The dataset as the data layer names it (its test set is the reference, its training set the floor). */
  data: DatasetName;
  /** The dataset as people write it, for messages: 'MNIST', 'Fashion-MNIST'. */
  title: string;
  /** What its classes are, for messages: 'digit', 'clothing'. */
  kind: string;
  /** The safetensors metadata tag the weights were saved with (part of the file, so of its SHA-256). */
  architecture: string;
  files: { weights: string; record: string };
}

function info(dataset: ClassifierDataset, data: DatasetName, title: string, kind: string): ClassifierInfo {
  const name = `${dataset}-classifier`;
  return Object.freeze({
    dataset,
    name,
    data,
    title,
    kind,
    architecture: `libtorch-gan ${name} v1`,
    files: Object.freeze({
      weights: path.join(packageRoot, 'models', `${name}.safetensors`),
      record: path.join(packageRoot, 'models', `${name}.json`),
    }),
  });
}

/** The shipped classifiers by dataset. */
export const CLASSIFIERS: Readonly<Record<ClassifierDataset, ClassifierInfo>> = Object.freeze({
  mnist: info('mnist', 'MNIST', 'MNIST', 'digit'),
  'fashion-mnist': info('fashion-mnist', 'FashionMNIST', 'Fashion-MNIST', 'clothing'),
});

export class ClassifierError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClassifierError';
  }
}

/** The classifier of `dataset` ('mnist' or 'fashion-mnist'); a ClassifierError naming the value otherwise. */
export function classifierFor(dataset: unknown): ClassifierInfo {
  if (typeof dataset !== 'string' || !Object.hasOwn(CLASSIFIERS, dataset))
    throw new ClassifierError(
      `dataset: expected one with a shipped classifier (${Object.keys(CLASSIFIERS)
        .map((k) => JSON.stringify(k))
        .join(' or ')}), got ${describeValue(dataset)}`,
    );
  return CLASSIFIERS[dataset as ClassifierDataset];
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
export function classifierModel(opts: { device?: Device } = {}): Sequential {
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

/** The MNIST classifier's architecture: the one every classifier shares (kept under its first name). */
export const mnistClassifierModel = classifierModel;

/** Features (penultimate layer, [N, 128]) and logits ([N, 10]) of a batch of [N, 1, 28, 28] images. */
export function featuresAndLogits(model: Sequential, x: Tensor): { features: Tensor; logits: Tensor } {
  const layers = model.children();
  const last = layers.length - 1;
  let h = x;
  for (let i = 0; i < last; i++) h = layers[i]!.forward(h);
  return { features: h, logits: layers[last]!.forward(h) };
}

/** The record beside the shipped weights (default: MNIST's); throws ClassifierError naming the file when it is missing or malformed. */
export function readClassifierRecord(file = CLASSIFIERS.mnist.files.record): ClassifierRecord {
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
 * The trained classifier of `dataset` in eval mode, its weights checked against the record's SHA-256
 * first (a corrupt or replaced file is an error naming both digests, never silently wrong metrics).
 */
export function loadClassifier(
  dataset: ClassifierDataset,
  opts: { device?: Device; weights?: string; record?: string } = {},
): { model: Sequential; record: ClassifierRecord; classifier: ClassifierInfo } {
  const classifier = classifierFor(dataset);
  const weightsFile = opts.weights ?? classifier.files.weights;
  const recordFile = opts.record ?? classifier.files.record;
  const record = readClassifierRecord(recordFile);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(weightsFile);
  } catch (e) {
    throw new ClassifierError(`cannot read the classifier weights ${weightsFile}: ${(e as Error).message}`);
  }
  const digest = sha256Hex(bytes);
  if (digest !== record.sha256)
    throw new ClassifierError(
      `${weightsFile}: SHA-256 ${digest} does not match ${record.sha256} in ${recordFile} (corrupt or replaced file; reinstall the package)`,
    );
  // building the model draws its init from the global generator: leave that as it was
  const model = withRngState(() => classifierModel({ device: opts.device }));
  try {
    torch.scope(() => model.loadStateDict(safetensors.load(bytes, { device: opts.device })));
  } catch (e) {
    model.dispose();
    throw new ClassifierError(`${weightsFile}: ${(e as Error).message}`);
  }
  return { model: model.eval() as Sequential, record, classifier };
}

/** The MNIST classifier (loadClassifier('mnist', opts)). */
export function loadMnistClassifier(opts: { device?: Device; weights?: string; record?: string } = {}): { model: Sequential; record: ClassifierRecord } {
  const { model, record } = loadClassifier('mnist', opts);
  return { model, record };
}
