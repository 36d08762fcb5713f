/** What `libtorch-gan train` prints about a run: the start table (verbose 1-3) and the end summary. */
import * as path from 'node:path';
import { type ResolvedConfig } from '../../config/config';
import type * as dist from '../../distributed/index';
import { countParameters, type OptimizerSpec } from '../../gan/presets';
import { type GanStepSpec, isPlainStep, LOSSES } from '../../gan/step-spec';
import { METRICS_FILE } from '../../quality/epoch-quality';
import { type Trainer, type TrainDevice, type TrainResult } from '../../run/trainer';
import * as torch from '../../tensor/torch';
import { printable } from '../../util/printable';
import { formatRunSummary } from '../summary';
import { formatTable, shellQuote } from './common';

/** "mnist train, 60000 of 60000 images" or "folder, 600 of 600 images in 2 classes (circles, squares), 3 x 32 x 32". */
function dataLine(t: Trainer): string {
  const ds = t.dataset;
  const [, c, h, w] = t.data.shape;
  let line = `${ds.name}${ds.split === 'all' ? '' : ` ${ds.split}`}, ${t.data.shape[0]} of ${ds.length} images`;
  if (ds.name === 'folder') {
    const cls = ds.classes.length
      ? ` in ${ds.classes.length} classes (${ds.classes.slice(0, 5).map(printable).join(', ')}${ds.classes.length > 5 ? ', ...' : ''})`
      : ' (no classes)';
    line += `${cls}, ${c} x ${h} x ${w}`;
  }
  return line;
}

function describeOptimizer(o: OptimizerSpec): string {
  const py = (b: boolean) => (b ? 'True' : 'False');
  if (o.type === 'adam') {
    return `Adam(lr=${o.lr}, betas=(${o.betas[0]}, ${o.betas[1]}), eps=${o.eps}, weight_decay=${o.weightDecay}, amsgrad=${py(o.amsgrad)})`;
  }
  return `SGD(lr=${o.lr}, momentum=${o.momentum}, dampening=${o.dampening}, weight_decay=${o.weightDecay}, nesterov=${py(o.nesterov)})`;
}

const thousands = (n: number) => n.toLocaleString('en-US');

function parameterTable(title: string, spec: ResolvedConfig['preset']['generator']): string {
  const counts = countParameters(spec);
  const rows = counts.layers.map((l) => [`  ${l.path}`, l.type, l.tensors.map((t) => `${t.name} [${t.shape.join(', ')}]`).join(', '), thousands(l.count)]);
  rows.push(['  total', '', '', thousands(counts.total)]);
  return `${title} parameters:\n${formatTable(rows, { rightAlign: [3] })}`;
}

/** "cpu", "cuda:0", or "cpu (device auto fell back to the CPU: <why>)": the start table's and the summary's Device. */
export function describeDevice(d: TrainDevice): string {
  return d.fallback ? `${d.name} (device auto fell back to the CPU: ${d.fallback})` : d.name;
}

/** "; data-parallel over 2 ranks (NCCL, picked for device cuda), ...": the backend, and whether --dist-backend left it to the device. */
function ranksLine(t: Trainer, backend: { name: dist.Backend; picked: boolean }): string {
  if (t.worldSize <= 1) return '';
  const name = backend.name === 'nccl' ? 'NCCL' : 'Gloo';
  const how = backend.picked ? `${name}, picked for device ${t.config.device}` : name;
  return `; data-parallel over ${t.worldSize} ranks (${how}), batch ${t.preset.batchSize} per rank, ${torch.getNumThreads()} thread(s) each`;
}

/** The step's recipes in one line (loss, penalty, D steps, EMA, DiffAugment) and the path that runs them. */
export function describeRecipes(s: GanStepSpec, path: string): string {
  const parts = [LOSSES[s.loss].torchName];
  if (s.penalty) {
    const w = s.penalty.type === 'r1' ? `gamma ${s.penalty.weight} (x 1/2)` : `lambda ${s.penalty.weight}`;
    parts.push(`${s.penalty.type} penalty, ${w}${(s.penalty.every ?? 1) > 1 ? `, every ${s.penalty.every} D updates (lazy)` : ''}`);
  }
  if ((s.dSteps ?? 1) > 1) parts.push(`${s.dSteps} D updates per G update`);
  if (s.ema) parts.push(`EMA of G, decay ${s.ema.decay}${s.ema.start ? ` from G update ${s.ema.start}` : ''} (samples, eval and exports use it)`);
  if (s.augment) parts.push(`DiffAugment ${s.augment}`);
  return `${parts.join('; ')} [${path}]`;
}

/** What verbose levels 1-3 print before training (seed 000's levels). `backend`: a data-parallel run's, and whether it was picked from the device. */
export function describeRun(trainer: Trainer, backend: { name: dist.Backend; picked: boolean } = { name: 'gloo', picked: false }): string {
  const cfg = trainer.config;
  const p = cfg.preset;
  const v = cfg.verbose;
  if (v < 1) return '';
  const lines: string[] = [];
  const resumed = trainer.resumedFrom;
  lines.push(
    formatTable([
      ['Run folder', trainer.runDir + (resumed ? ` (resumed after epoch ${trainer.epoch}, step ${trainer.globalStep})` : '')],
      [
        'Preset',
        `${p.name} (${p.seed ? `seed ${p.seed}` : `${p.image.channels}x${p.image.size}x${p.image.size}`}): ${p.epochs} epochs, batch ${p.batchSize}, z dim ${p.zDim}, images in ${p.normalize}`,
      ],
      ['Device', `${describeDevice(trainer.deviceInfo)}${cfg.threads ? `, ${cfg.threads} threads` : ''}${ranksLine(trainer, backend)}`],
      ['CUDA graph', trainer.gan.cudaGraph],
      // shown when it is not the default fp32: asked for, or what 'auto' picked and why
      ...(trainer.gan.precision === 'fp32' && trainer.gan.precisionReason === 'asked'
        ? []
        : [['Precision', `${trainer.gan.precision}${trainer.gan.precisionReason === 'asked' ? '' : ` (${trainer.gan.precisionReason})`}`]]),
      ...(isPlainStep(p.step) ? [] : [['Recipes', describeRecipes(p.step, trainer.gan.path)]]),
      ['Data', `${dataLine(trainer)} (${trainer.dataset.sourceKind}: ${printable(trainer.dataset.source)})`],
      ['Seed', cfg.seed === undefined ? 'none (not seeded)' : String(cfg.seed)],
    ]),
  );
  lines.push('', 'Generator:', trainer.generator.toString(), '', 'Discriminator:', trainer.discriminator.toString());
  if (v >= 2) {
    lines.push('', `Optimizer (G and D): ${describeOptimizer(p.optimizer)}`);
    const s = p.step;
    const noise = s.noise.dist === 'uniform' ? `U[${s.noise.low ?? -1}, ${s.noise.high ?? 1}) dim ${s.noise.dim}` : `N(0, 1) dim ${s.noise.dim}`;
    lines.push(
      `Training step: ${LOSSES[s.loss].torchName}, real label ${s.realLabel}, D loss ${s.dLossReduction === 'sum' ? 'real + fake' : '(real + fake) / 2'}, ` +
        `fake ${s.detachFakeForD ? 'detached' : 'not detached'} for D, ${s.gNoise === 'fresh' ? 'fresh noise' : "D's fake batch"} for G, z ~ ${noise}`,
    );
  }
  if (v >= 3) lines.push('', parameterTable('Generator', p.generator), '', parameterTable('Discriminator', p.discriminator));
  return lines.join('\n');
}

/** The end-of-run summary: figures and the files written. */
export function summaryOf(r: TrainResult): string {
  const files: [string, string][] = [['Run folder', r.runDir]];
  if (r.files.checkpoint) files.push(['Checkpoint', r.files.checkpoint]);
  if (r.files.samples) files.push(['Samples', r.files.samples]);
  if (r.files.lossPlot) files.push(['Loss plot', r.files.lossPlot]);
  if (r.quality) files.push(['Metrics', path.join(r.runDir, METRICS_FILE)], ['Quality plot', path.join(r.runDir, 'quality.png')]);
  if (r.files.report) files.push(['Report', r.files.report]);
  files.push(['TensorBoard', `tensorboard --logdir ${shellQuote(r.runDir)}`]);
  return formatRunSummary({
    epochs: r.epoch,
    steps: r.globalStep,
    seconds: r.seconds,
    imagesPerSec: r.imagesPerSec,
    finalDLoss: r.finalDLoss,
    finalGLoss: r.finalGLoss,
    quality: r.quality,
    device: describeDevice(r.device),
    cudaGraph: r.cudaGraph,
    files,
  });
}
