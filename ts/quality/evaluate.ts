/**
 * What a generator's images are worth, measured with the package's classifier of the run's dataset
 * (classifier.ts: MNIST digits or Fashion-MNIST clothing): classifier-FID against that dataset's test
 * set, an Inception-style score, the class histogram and its coverage, the accuracy of requested labels
 * (conditional generators), and the same figures for real training images of the dataset (the floor a
 * perfect generator would reach at the same n). Classifier-FID is tf-gan's "MNIST Frechet distance",
 * not comparable with Inception-FID, nor across the two classifiers: every result names its classifier.
 */
import * as os from 'node:os';
import { type DatasetOptions, loadDataset } from '../data/mnist';
import { imagesShape, type Preset } from '../gan/presets';
import { type Sequential } from '../nn/layers';
import { type Device } from '../tensor/dtype';
import { describeValue, readOptions } from '../util/options';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { toModelInput } from '../gan/image-batch';
import { hasCheckpoint, readTrainerState } from '../store/checkpoint';
import { readRunInfo } from '../store/run-dir';
import { generate, seededInputs } from '../gan/sample';
import { loadGeneratorModule, usesEmaGenerator } from '../store/generator';
import { CLASSIFIER_INPUT, CLASSIFIERS, type ClassifierDataset, type ClassifierInfo, FEATURE_DIM, featuresAndLogits, loadClassifier } from './classifier';
import { classHistogram, coverage, type FeatureStats, featureStats, frechetDistance, inceptionScore, labelAccuracy } from './metrics';

/** The figures of one set of images. */
export interface QualityScores {
  n: number;
  /** Classifier-FID against the dataset's test set (lower is better; real training images score `floor.fid`). */
  fid: number;
  /** Inception-style score with the dataset's classifier, 1..10 (higher is better). */
  inceptionScore: number;
  /** Images the classifier assigns to each class 0..9 (the digits of MNIST, the clothing classes of Fashion-MNIST). */
  histogram: number[];
  /** The rarest class's share relative to an even share: 1 = all classes equally often, ~0 = one missing (mode collapse). */
  coverage: number;
  /** Conditional generators: the share of images the classifier reads as the requested class; null otherwise. */
  labelAccuracy: number | null;
}

export class EvaluationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvaluationError';
  }
}

/** Images per classifier batch: bounds memory whatever n is. */
const BATCH = 1000;
const CLASSIFIER_CHUNK = 100;
/** The most samples one evaluation takes (its features are held in float32 and float64). */
export const MAX_EVAL_N = 1_000_000;

/** Checks an evaluation's sample count n: an integer >= 2 whose features fit in memory. */
export function checkEvalN(n: unknown, what = 'n'): number {
  if (!Number.isSafeInteger(n) || (n as number) < 2 || (n as number) > MAX_EVAL_N)
    throw new RangeError(`${what}: expected an integer from 2 (a covariance needs two samples) to ${MAX_EVAL_N}, got ${describeValue(n)}`);
  const bytes = (n as number) * FEATURE_DIM * 12 + BATCH * 784 * 4 * 4;
  if (bytes > os.freemem())
    throw new RangeError(
      `${what}: ${n} samples need ${(bytes / 2 ** 30).toFixed(1)} GiB for their features, more than the ${(os.freemem() / 2 ** 30).toFixed(1)} GiB free`,
    );
  return n as number;
}

/** The classifier that scores a run on `dataset` (config data.dataset); a checked preset's images are what it reads: one 28x28 channel. */
export function checkClassifiable(preset: Preset, dataset: string): ClassifierInfo {
  if (!Object.hasOwn(CLASSIFIERS, dataset)) {
    const known = Object.values(CLASSIFIERS)
      .map((c) => `${c.title} (${c.name})`)
      .join(' and ');
    throw new EvaluationError(
      `the quality metrics need a classifier trained on the run's own classes; the package ships one for ${known} runs, none for a ${dataset} run${dataset === 'folder' ? ' (a folder of images has classes of its own)' : ''}`,
    );
  }
  const c = CLASSIFIERS[dataset as ClassifierDataset];
  const per = imagesShape(preset.image, 1).slice(1);
  if (per.reduce((a, b) => a * b, 1) !== CLASSIFIER_INPUT.size * CLASSIFIER_INPUT.size || (per.length === 3 && per[0] !== 1))
    throw new EvaluationError(
      `the generator draws images of shape [${per.join(', ')}]; the ${c.title} classifier reads 1x28x28 images (train at --image-size 28 --channels 1)`,
    );
  return c;
}

/** Which classifier produced a set of figures: figures of different classifiers are not comparable. */
export interface ClassifierId {
  /** 'mnist-classifier' or 'fashion-mnist-classifier' (its files in models/). */
  name: string;
  dataset: ClassifierDataset;
  sha256: string;
  testAccuracy: number;
}

/**
 * The classifier of a dataset (`dataset`: 'mnist', the default, or 'fashion-mnist') and its test set's
 * feature statistics, loaded once; scores sets of images. `create` reads the dataset's test split (and,
 * for `floor`, the training split) like MNIST() / FashionMNIST() do.
 */
export class QualityEvaluator {
  private floors = new Map<number, QualityScores>();
  private constructor(
    readonly model: Sequential,
    readonly classifier: ClassifierId,
    readonly reference: FeatureStats,
    readonly device: Device,
    private readonly data: DatasetOptions,
  ) {}

  static async create(opts: { device?: Device; data?: DatasetOptions; dataset?: ClassifierDataset } = {}): Promise<QualityEvaluator> {
    const o = readOptions('QualityEvaluator.create', opts, ['device', 'data', 'dataset']);
    const device = o.deviceOr('device', 'cpu');
    const dataset = o.get('dataset') ?? 'mnist';
    if (typeof dataset !== 'string' || !Object.hasOwn(CLASSIFIERS, dataset))
      throw o.error('dataset', '"mnist" or "fashion-mnist" (the datasets with a classifier)');
    const c = CLASSIFIERS[dataset as ClassifierDataset];
    const test = await loadDataset(c.data, { ...opts.data, train: false });
    // building and loading the model copy and initialize large tensors in parallel: on the training thread too
    const { model, record } = torch.onTrainingThread(() => loadClassifier(c.dataset, { device }));
    try {
      const ref = torch.onTrainingThread(() => extract(model, device, batchesOf(test.images, test.length)));
      ref.logits.dispose();
      const id = { name: c.name, dataset: c.dataset, sha256: record.sha256, testAccuracy: record.testAccuracy };
      return new QualityEvaluator(model, id, ref.stats, device, opts.data ?? {});
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /**
   * Scores images given batch by batch: float in '[-1,1]' (or uint8 pixels), any shape with 784 values
   * per image; `labels` (int64, one per image) are the classes a conditional generator was asked for.
   */
  score(batches: Iterable<{ images: Tensor; labels?: Tensor }>): QualityScores {
    // all on the training thread: a process that trains with a GanStep keeps its one OpenMP team
    return torch.onTrainingThread(() => {
      const { stats, logits, labels } = extract(this.model, this.device, batches);
      try {
        const histogram = classHistogram(logits);
        return {
          n: stats.n,
          fid: frechetDistance(stats, this.reference),
          inceptionScore: inceptionScore(logits),
          histogram,
          coverage: coverage(histogram),
          labelAccuracy: labels ? labelAccuracy(logits, labels) : null,
        };
      } finally {
        logits.dispose();
        labels?.dispose();
      }
    });
  }

  /** The figures of n real training images of the dataset (every (60000/n)-th), the best a generator can do at this n. */
  async floor(n: number): Promise<QualityScores> {
    let f = this.floors.get(n);
    if (!f) {
      const train = await loadDataset(CLASSIFIERS[this.classifier.dataset].data, { ...this.data, train: true });
      const step = train.length / Math.min(n, train.length);
      const per = 28 * 28;
      const picked = new Uint8Array(Math.min(n, train.length) * per);
      for (let i = 0; i * per < picked.length; i++) picked.set(train.images.subarray(Math.floor(i * step) * per, (Math.floor(i * step) + 1) * per), i * per);
      f = this.score(batchesOf(picked, picked.length / per));
      this.floors.set(n, f);
    }
    return f;
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Features and logits of the images of `batches`, batch by batch through the classifier. */
function extract(
  model: Sequential,
  device: Device,
  batches: Iterable<{ images: Tensor; labels?: Tensor }>,
): { stats: FeatureStats; logits: Tensor; labels?: Tensor } {
  const feats: Tensor[] = [];
  const logits: Tensor[] = [];
  const labels: Tensor[] = [];
  let batchCount = 0;
  try {
    torch.noGrad(() => {
      for (const b of batches) {
        const x = asClassifierInput(b.images, device);
        // small chunks keep the conv activations in cache: 2x faster than 1000 at once on CPU
        for (let i = 0; i < x.shape[0]!; i += CLASSIFIER_CHUNK) {
          const out = torch.scope(() => featuresAndLogits(model, x.narrow(0, i, Math.min(CLASSIFIER_CHUNK, x.shape[0]! - i))));
          feats.push(out.features);
          logits.push(out.logits);
        }
        if (x !== b.images) x.dispose();
        if (b.labels) labels.push(b.labels.clone()); // the batch's own are its owner's to dispose
        batchCount++;
      }
    });
    if (labels.length && labels.length !== batchCount) throw new EvaluationError('score: some batches have labels and some do not');
    const all = torch.cat(feats);
    const stats = featureStats(all);
    all.dispose();
    return { stats, logits: torch.cat(logits), labels: labels.length ? torch.cat(labels) : undefined };
  } finally {
    for (const t of [...feats, ...logits, ...labels]) t.dispose();
  }
}

/** Float images in '[-1,1]' or uint8 pixels (converted by the pixel convention) as [N, 1, 28, 28] on `device`. */
function asClassifierInput(images: Tensor, device: Device): Tensor {
  const per = CLASSIFIER_INPUT.size * CLASSIFIER_INPUT.size;
  if (images.ndim < 2 || images.numel() !== images.shape[0]! * per)
    throw new EvaluationError(`images: expected ${per} values (1x28x28) per image, got shape [${images.shape.join(', ')}]`);
  return torch.scope(() =>
    toModelInput(images.ndim === 2 ? images.reshape([images.shape[0]!, 1, 28, 28]) : images, CLASSIFIER_INPUT.range, device, CLASSIFIER_INPUT),
  );
}

/** uint8 MNIST-layout images (n * 784 bytes; Fashion-MNIST's too) as batches of uint8 tensors. */
export function* batchesOf(images: Uint8Array, n: number): Generator<{ images: Tensor }> {
  const per = 28 * 28;
  for (let i = 0; i < n; i += BATCH) {
    const m = Math.min(BATCH, n - i);
    const x = torch.tensor(images.subarray(i * per, (i + m) * per), [m, 1, 28, 28]);
    try {
      yield { images: x };
    } finally {
      x.dispose();
    }
  }
}

/**
 * G's images for n seeded samples in batches, as the classifier reads them ('[0,1]' generators mapped
 * to '[-1,1]'). A conditional preset is asked for each class equally often (i % classes), so the
 * histogram, coverage and label accuracy read directly. `draw` runs G (a Module, or a GanStep).
 */
export function* generatedBatches(
  preset: Preset,
  n: number,
  seed: number,
  draw: (z: Tensor, y?: Tensor) => Float32Array,
): Generator<{ images: Tensor; labels?: Tensor }> {
  const classes = preset.step.conditioning?.classes ?? 0;
  const { z, y } = seededInputs(preset, n, seed, classes ? Array.from({ length: n }, (_, i) => i % classes) : undefined);
  const per = CLASSIFIER_INPUT.size * CLASSIFIER_INPUT.size;
  try {
    for (let i = 0; i < n; i += BATCH) {
      const m = Math.min(BATCH, n - i);
      const pixels = torch.scope(() => draw(z.narrow(0, i, m), y?.narrow(0, i, m)));
      const x = torch.scope(() => {
        const t = torch.tensor(pixels, [m, per]);
        return preset.normalize === '[0,1]' ? t.mul(2).sub(1) : t;
      });
      const labels = y?.narrow(0, i, m).clone();
      try {
        yield { images: x, labels };
      } finally {
        x.dispose();
        labels?.dispose();
      }
    }
  } finally {
    z.dispose();
    y?.dispose();
  }
}

export interface EvaluateOptions {
  /** Samples to generate (default 10000, as many as the test set). */
  n?: number;
  /** Noise seed (default 0, so that two evaluations of a run agree). */
  seed?: number;
  /** Device to run G and the classifier on (default 'cpu'). */
  device?: Device;
  /**
   * Where the run's dataset (MNIST or Fashion-MNIST) is read from, as MNIST()'s options; default: the
   * usual places, downloading when the run's config allows it (data.download).
   */
  data?: DatasetOptions;
  /** An evaluator to reuse, made for the run's dataset (its device wins); default: one made for this call. */
  evaluator?: QualityEvaluator;
}

/** evaluate()'s result: the generator's figures, the real-data floor at the same n, and what produced them. */
export interface EvaluationReport extends QualityScores {
  run: string;
  /** The epoch of the checkpoint evaluated (trainer.json), null for a run folder without one. */
  epoch: number | null;
  seed: number;
  preset: string;
  conditional: boolean;
  /** Which weights were scored: the EMA of G where the run keeps one (step spec ema), else G's. */
  generator: 'ema' | 'generator';
  /** Training images of the dataset (n of them) scored the same way: what a perfect generator would reach. */
  floor: QualityScores;
  /** The classifier that produced these figures (its name and dataset: compare figures of one classifier only). */
  classifier: ClassifierId;
  seconds: number;
}

const EVAL_KEYS = ['n', 'seed', 'device', 'data', 'evaluator'] as const;

/** Scores the latest checkpoint of a run folder's generator (see the file comment for what is measured). */
export async function evaluate(runDir: string, opts: EvaluateOptions = {}): Promise<EvaluationReport> {
  const t0 = performance.now();
  if (typeof runDir !== 'string' || runDir === '') throw new TypeError(`evaluate: expected the path of a run folder, got ${describeValue(runDir)}`);
  const o = readOptions('evaluate', opts, EVAL_KEYS, { form: `options { ${EVAL_KEYS.join(', ')} }` });
  const n = checkEvalN(o.get('n') ?? 10000, o.label('n'));
  const seed = o.seedOr('seed', 0);
  const evaluator = o.get('evaluator') as QualityEvaluator | undefined;
  if (evaluator !== undefined && !(evaluator instanceof QualityEvaluator)) throw o.error('evaluator', 'a QualityEvaluator (QualityEvaluator.create())');
  const device = evaluator ? evaluator.device : o.deviceOr('device', 'cpu');
  const info = readRunInfo(runDir);
  const preset = info.config.preset;
  const dataset = info.config.data.dataset;
  const c = checkClassifiable(preset, dataset);
  if (evaluator && evaluator.classifier.dataset !== c.dataset)
    throw new EvaluationError(
      `evaluator: it scores with the ${evaluator.classifier.name}; this ${dataset} run needs the ${c.name} (QualityEvaluator.create({ dataset: '${c.dataset}' }))`,
    );
  const classes = preset.step.conditioning?.classes ?? 0;
  const G = loadGeneratorModule(runDir, preset, device);
  const data = opts.data ?? { download: info.config.data.download };
  const ev = evaluator ?? (await QualityEvaluator.create({ device, data, dataset: c.dataset }));
  try {
    const scores = ev.score(generatedBatches(preset, n, seed, (z, y) => generate(G, z, device, y && { y, classes })));
    return {
      run: runDir,
      epoch: hasCheckpoint(runDir) ? readTrainerState(runDir).epoch : null,
      seed,
      preset: preset.name,
      conditional: classes > 0,
      generator: usesEmaGenerator(runDir, preset) ? 'ema' : 'generator',
      ...scores,
      floor: await ev.floor(n),
      classifier: ev.classifier,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    G.dispose();
    if (!evaluator) ev.dispose();
  }
}
