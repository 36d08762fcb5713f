/**
 * Quality during training (config `evalEvery`, `evalN`): after every evalEvery-th epoch (and the
 * last), G's images are scored with the classifier of the run's dataset (MNIST or Fashion-MNIST;
 * evaluate.ts) from the same seeded noise
 * every time, so the curve compares like with like. The figures go to TensorBoard (quality/*),
 * metrics.csv in the run folder (rewritten atomically, earlier rows kept on resume) and quality.png.
 * Everything runs on the training thread (torch.onTrainingThread), so that the fused step keeps the
 * process's one OpenMP team.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type GanStep } from '../gan/gan-step';
import { type Preset } from '../gan/presets';
import { writeQualityPlot } from '../logging/quality-plot';
import { type Device } from '../tensor/dtype';
import { type ResolvedConfig } from '../config/config';
import * as torch from '../tensor/torch';
import { writeFileAtomic } from '../util/fs';
import { checkClassifiable, generatedBatches, QualityEvaluator } from './evaluate';

/** The noise seed of every evaluation during training. */
export const EVAL_SEED = 0;
export const METRICS_FILE = 'metrics.csv';
const COLUMNS = ['epoch', 'fid', 'inception_score', 'coverage', 'label_accuracy', 'floor_fid', 'n', 'seconds'] as const;

/** One line of metrics.csv. */
export interface QualityRow {
  epoch: number;
  fid: number;
  inceptionScore: number;
  coverage: number;
  /** Conditional runs; null otherwise. */
  labelAccuracy: number | null;
  /** Real training images of the dataset at the same n (the floor). */
  floorFid: number;
  n: number;
  seconds: number;
}

/** metrics.csv's rows (none when the file is missing); a malformed line is an error naming the file and line. */
export function readMetrics(runDir: string): QualityRow[] {
  const file = path.join(runDir, METRICS_FILE);
  if (!fs.existsSync(file)) return [];
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  if (lines[0] !== COLUMNS.join(',')) throw new Error(`${file}: expected the header ${COLUMNS.join(',')}, got ${JSON.stringify(lines[0])}`);
  return lines.slice(1).map((l, i) => {
    const v = l.split(',');
    const num = (k: number) => (v[k] === '' ? null : Number(v[k]));
    const row = { epoch: num(0), fid: num(1), inceptionScore: num(2), coverage: num(3), labelAccuracy: num(4), floorFid: num(5), n: num(6), seconds: num(7) };
    if (v.length !== COLUMNS.length || Object.entries(row).some(([k, x]) => (x === null ? k !== 'labelAccuracy' : !Number.isFinite(x))))
      throw new Error(`${file}:${i + 2}: expected ${COLUMNS.length} numbers (${COLUMNS.join(',')}), got ${JSON.stringify(l)}`);
    return row as QualityRow;
  });
}

function writeMetrics(runDir: string, rows: readonly QualityRow[]): void {
  const line = (r: QualityRow) => [r.epoch, r.fid, r.inceptionScore, r.coverage, r.labelAccuracy ?? '', r.floorFid, r.n, r.seconds].join(',');
  writeFileAtomic(path.join(runDir, METRICS_FILE), `${[COLUMNS.join(','), ...rows.map(line)].join('\n')}\n`);
}

export class EpochQuality {
  private constructor(
    private readonly runDir: string,
    private readonly evaluator: QualityEvaluator,
    private readonly n: number,
    private readonly every: number,
    private rows: QualityRow[],
  ) {}

  /** For a run with `config` (null when its evalEvery is 0) that has trained `epochsDone` epochs. */
  static forRun(runDir: string, config: ResolvedConfig, epochsDone: number): Promise<EpochQuality | null> {
    if (config.evalEvery === 0) return Promise.resolve(null);
    const { preset, device, evalN: n, evalEvery: every } = config;
    return EpochQuality.create(runDir, { preset, dataset: config.data.dataset, download: config.data.download, n, every, device, epochsDone });
  }

  /**
   * For a run of `preset` on `dataset` in `runDir` that has trained `epochsDone` epochs (rows of
   * later epochs in metrics.csv, from before a resume at an earlier checkpoint, are dropped);
   * `download` as the run's config allows it, for the test split the classifier's reference needs.
   */
  static async create(
    runDir: string,
    opts: { preset: Preset; dataset: string; download?: boolean; n: number; every: number; device: Device; epochsDone: number },
  ): Promise<EpochQuality> {
    const c = checkClassifiable(opts.preset, opts.dataset);
    const rows = readMetrics(runDir).filter((r) => r.epoch <= opts.epochsDone);
    const evaluator = await QualityEvaluator.create({ device: opts.device, dataset: c.dataset, data: { download: opts.download ?? false } });
    await evaluator.floor(opts.n);
    return new EpochQuality(runDir, evaluator, opts.n, opts.every, rows);
  }

  get history(): readonly QualityRow[] {
    return this.rows;
  }

  /** measure() after every `every`-th epoch and the last; undefined after the others. */
  async after(epoch: number, isLast: boolean, gan: GanStep, preset: Preset, onWarning: (e: Error) => void): Promise<QualityRow | undefined> {
    return epoch % this.every === 0 || isLast ? this.measure(epoch, gan, preset, onWarning) : undefined;
  }

  /** Scores G of `gan` after `epoch`, records the row (metrics.csv, plot) and returns it. */
  async measure(epoch: number, gan: GanStep, preset: Preset, onWarning: (e: Error) => void): Promise<QualityRow> {
    const t0 = performance.now();
    const scores = torch.onTrainingThread(() =>
      this.evaluator.score(generatedBatches(preset, this.n, EVAL_SEED, (z, y) => gan.generate(z, y).to('cpu').toFloat32Array())),
    );
    const floor = await this.evaluator.floor(this.n);
    const row: QualityRow = {
      epoch,
      fid: scores.fid,
      inceptionScore: scores.inceptionScore,
      coverage: scores.coverage,
      labelAccuracy: scores.labelAccuracy,
      floorFid: floor.fid,
      n: this.n,
      seconds: Math.round(performance.now() - t0) / 1000,
    };
    this.rows = [...this.rows.filter((r) => r.epoch < epoch), row];
    writeMetrics(this.runDir, this.rows);
    try {
      await writeQualityPlot(this.runDir, this.rows);
    } catch (e) {
      onWarning(new Error(`could not render the quality plot: ${(e as Error).message}`));
    }
    return row;
  }

  dispose(): void {
    this.evaluator.dispose();
  }
}
