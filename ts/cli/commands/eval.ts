/** `libtorch-gan eval`: the quality of a trained run's images (classifier-FID, IS, coverage). */
import { CLASSIFIERS } from '../../quality/classifier';
import { evaluate, type EvaluationReport, type QualityScores } from '../../quality/evaluate';
import { BIN, deviceFlag, EXIT, intFlag, parseCommandArgs, UsageError, writeLine, type CliIO } from './common';

const NAME = 'eval';

export const EVAL_OPTIONS = {
  n: { type: 'string' },
  seed: { type: 'string' },
  device: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const EVAL_HELP = `Usage: ${BIN} eval RUN_DIR [options]

Measures the images of a trained MNIST or Fashion-MNIST run's generator (its latest checkpoint)
with the package's classifier of that dataset (mnist-classifier, fashion-mnist-classifier; the
report names it): classifier-FID against the dataset's test set (lower is better), an
Inception-style score (1..10, higher is better), how often each class is drawn and the rarest
class's share (coverage: 1 = even, 0 = a class never drawn), and for conditional runs how often
the requested class is drawn. Beside them: the same figures for n real training images, the
floor. Classifier-FID is not comparable with the Inception-FID of papers, nor between the two
classifiers. Folder runs have no classifier and are refused.

Options:
  --n N            samples to generate (default 10000)
  --seed N         noise seed (default 0)
  --device DEVICE  auto | cpu | cuda (default cpu)
  --json           print the report as JSON
  -h, --help       show this help`;

const fmt = (v: number, d: number) => v.toFixed(d);

function rows(r: EvaluationReport): string[] {
  const line = (name: string, g: string, f: string) => `  ${name.padEnd(16)} ${g.padStart(10)} ${f.padStart(10)}`;
  const hist = (s: QualityScores) => s.histogram.join(' ');
  return [
    `${r.run}: ${r.preset}${r.generator === 'ema' ? ' (its EMA generator)' : ''}, epoch ${r.epoch ?? '?'}, n ${r.n}, seed ${r.seed}`,
    line('', 'generator', 'real data'),
    line('classifier-FID', fmt(r.fid, 2), fmt(r.floor.fid, 2)),
    line('IS (max 10)', fmt(r.inceptionScore, 3), fmt(r.floor.inceptionScore, 3)),
    line('coverage', fmt(r.coverage, 3), fmt(r.floor.coverage, 3)),
    ...(r.labelAccuracy === null ? [] : [line('label accuracy', fmt(r.labelAccuracy, 4), '')]),
    `  ${r.classifier.dataset === 'mnist' ? 'digits' : 'classes'} 0-9: ${hist(r)}`,
    `  real 0-9:${r.classifier.dataset === 'mnist' ? '   ' : '    '}${hist(r.floor)}`,
    `  classifier ${r.classifier.name} ${r.classifier.sha256.slice(0, 12)} (${(r.classifier.testAccuracy * 100).toFixed(2)}% on ${CLASSIFIERS[r.classifier.dataset].title} test); ${r.seconds.toFixed(1)} s`,
  ];
}

export async function evalCommand(args: string[], io: CliIO): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(NAME, args, EVAL_OPTIONS, { positionals: 1 });
  if (v.help) {
    writeLine(io.stdout, EVAL_HELP);
    return EXIT.OK;
  }
  const runDir = positionals[0];
  if (!runDir) throw new UsageError('missing RUN_DIR (the run folder to evaluate, e.g. runs/run-1)', NAME);
  const n = intFlag(NAME, 'n', v.n, 2) ?? 10000;
  const seed = intFlag(NAME, 'seed', v.seed, 0) ?? 0;
  const report = await evaluate(runDir, { n, seed, device: deviceFlag(NAME, v.device, io, 'cpu') });
  if (v.json) writeLine(io.stdout, JSON.stringify(report, null, 2));
  else for (const l of rows(report)) writeLine(io.stdout, l);
  return EXIT.OK;
}
