/** `libtorch-gan sample`: images from a trained run's generator, as a PNG grid. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkExportTargets, ExportTargetError } from '../../export/index';
import { saveSamples } from '../../gan/sample';
import { sample } from '../../store/generator';
import { printable } from '../../util/printable';
import { BIN, deviceFlag, EXIT, intFlag, parseCommandArgs, positiveNumberFlag, stringFlag, UsageError, writeLine, type CliIO } from './common';

const NAME = 'sample';
const DEFAULT_OUT = 'samples.png';

export const SAMPLE_OPTIONS = {
  checkpoint: { type: 'string' },
  count: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  nrow: { type: 'string' },
  device: { type: 'string' },
  label: { type: 'string' },
  preset: { type: 'string' },
  truncation: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const SAMPLE_HELP = `Usage: ${BIN} sample --checkpoint RUN_DIR [options]

Generates images with a trained run's generator (rebuilt from RUN_DIR/config.json, weights from
RUN_DIR/generator.safetensors) and writes them as a PNG grid.

Options:
  --checkpoint RUN_DIR  the run folder (e.g. runs/run-1); may also be given as the only argument;
                        or a PyTorch file of G's state_dict (torch.save(G.state_dict(), 'G.pth'))
                        with --preset: its keys may follow your script's own module names
  --preset NAME         with a PyTorch file: the preset whose generator it holds
  --count N             number of images (default 64; with --label all: per class, default 8)
  --label N|all         conditional runs (cgan): draw class N (a digit for MNIST), or 'all': one
                        row of --count images per class
  --out FILE            PNG file to write (default samples.png); a folder (one that exists, or a
                        name ending in /) gets samples.png inside it
  --seed N              noise seed (default: random; printed)
  --truncation T        normal noise truncated to [-T, T] (the truncation trick; T > 0, e.g. 0.5)
  --nrow N              images per grid row (default 8)
  --device DEVICE       auto | cpu | cuda (default cpu)
  -h, --help            show this help`;

/** --out as a file: a folder (existing, or written with a trailing slash) gets DEFAULT_OUT inside it. */
function outFile(out: string): string {
  const isDir = /[\\/]$/.test(out) || (fs.existsSync(out) && fs.statSync(out).isDirectory());
  return isDir ? path.join(out, DEFAULT_OUT) : out;
}

export async function sampleCommand(args: string[], io: CliIO): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(NAME, args, SAMPLE_OPTIONS, { positionals: 1 });
  if (v.help) {
    writeLine(io.stdout, SAMPLE_HELP);
    return EXIT.OK;
  }
  if (v.checkpoint !== undefined && positionals.length) throw new UsageError(`give the run folder once (--checkpoint or as an argument), got both`, NAME);
  const runDir = stringFlag(NAME, 'checkpoint', v.checkpoint, 'a run folder') ?? positionals[0];
  if (!runDir) throw new UsageError('missing --checkpoint RUN_DIR (the run folder to sample from, e.g. runs/run-1)', NAME);
  if (v.label !== undefined && v.label !== 'all' && !/^\d+$/.test(String(v.label).trim()))
    throw new UsageError(`--label: expected a class index (an integer >= 0) or 'all', got ${JSON.stringify(v.label)}`, NAME);
  const label = v.label === undefined || v.label === 'all' ? v.label : intFlag(NAME, 'label', v.label, 0);
  const count = intFlag(NAME, 'count', v.count, 1) ?? (label === 'all' ? 8 : 64);
  const seed = intFlag(NAME, 'seed', v.seed, 0);
  const nrow = intFlag(NAME, 'nrow', v.nrow, 1) ?? (label === 'all' ? count : 8);
  const out = outFile(stringFlag(NAME, 'out', v.out, 'a file name') ?? 'samples.png');
  const device = deviceFlag(NAME, v.device, io, 'cpu');
  const preset = stringFlag(NAME, 'preset', v.preset, 'a preset name');
  const truncation = positiveNumberFlag(NAME, 'truncation', v.truncation);
  try {
    // the grid never replaces a run's own file (`--out RUN/generator.safetensors`) nor a folder
    checkExportTargets([{ path: out, label: '--out' }], { replaceOthers: true });
  } catch (e) {
    if (e instanceof ExportTargetError) throw new UsageError(e.message, NAME);
    throw e;
  }
  const s = sample({ checkpoint: runDir, count, seed, device, labels: label, preset, truncation });
  saveSamples(out, s, { nrow });
  const what = label === undefined ? '' : label === 'all' ? `, one row per class` : ` of class ${label}`;
  writeLine(
    io.stdout,
    `Wrote ${s.shape[0]} samples${what}${s.ema ? ' from the EMA generator' : ''} (seed ${s.seed}${truncation === undefined ? '' : `, truncation ${truncation}`}) to ${printable(path.relative(process.cwd(), path.resolve(out)) || out)}`,
  );
  return EXIT.OK;
}
