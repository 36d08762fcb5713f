/** `libtorch-gan presets`: the training presets as a table (or JSON). */
import { DEFAULT_PRESET, presets, PRESET_NAMES } from '../../gan/presets';
import { BIN, EXIT, formatTable, parseCommandArgs, writeLine, type CliIO } from './common';

const NAME = 'presets';

export const PRESETS_OPTIONS = {
  long: { type: 'boolean', short: 'l' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const PRESETS_HELP = `Usage: ${BIN} presets [--long] [--json]

Lists the training presets (the five MNIST GAN seed scripts). Use one with
'${BIN} train --preset NAME'.

Options:
  -l, --long   full descriptions, and where each script differs from its README
  --json       the presets as JSON (architectures, step, optimizer, hyper-parameters)
  -h, --help   show this help`;

/** The description without its leading 'Seed 00N (name): ' / 'Seed 00N: '. */
function shortDescription(d: string): string {
  return d.replace(/^Seed \d+(?: \([^)]*\))?: /, '');
}

export function presetsTable(opts: { width?: number; long?: boolean } = {}): string {
  const rows = [['NAME', 'SEED', 'BATCH', 'LR', 'EPOCHS', 'DESCRIPTION']];
  for (const name of PRESET_NAMES) {
    const p = presets[name];
    rows.push([
      name + (name === DEFAULT_PRESET ? '*' : ''),
      p.seed ?? '-',
      String(p.batchSize),
      String(p.optimizer.lr),
      String(p.epochs),
      opts.long ? '' : shortDescription(p.description),
    ]);
  }
  let table = formatTable(rows);
  const width = opts.width ?? 0;
  if (!opts.long && width > 40) {
    table = table
      .split('\n')
      .map((l) => (l.length > width ? `${l.slice(0, width - 3)}...` : l))
      .join('\n');
  }
  const lines = [table.trimEnd(), '', `* default preset`];
  if (opts.long) {
    for (const name of PRESET_NAMES) {
      const p = presets[name];
      const origin = p.seed ? `seed ${p.seed}` : 'not a seed';
      lines.push('', `${name} (${origin})`, `  ${p.description}`, `  ${p.seed ? 'Differs from README' : 'Source'}: ${p.differsFromReadme}`);
    }
  }
  return lines.join('\n');
}

export async function presetsCommand(args: string[], io: CliIO): Promise<number> {
  const { values: v } = parseCommandArgs(NAME, args, PRESETS_OPTIONS);
  if (v.help) {
    writeLine(io.stdout, PRESETS_HELP);
    return EXIT.OK;
  }
  if (v.json) {
    writeLine(io.stdout, JSON.stringify(presets, null, 2));
    return EXIT.OK;
  }
  writeLine(io.stdout, presetsTable({ long: !!v.long, width: io.stdout.isTTY ? io.stdout.columns : undefined }));
  return EXIT.OK;
}
