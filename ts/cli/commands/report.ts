/** `libtorch-gan report RUN_DIR`: (re)writes a run folder's report.html. */
import * as fs from 'node:fs';
import { writeReport } from '../../logging/report';
import { BIN, EXIT, parseCommandArgs, UsageError, writeLine, type CliIO } from './common';

const NAME = 'report';

export const REPORT_OPTIONS = {
  embed: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const REPORT_HELP = `Usage: ${BIN} report RUN_DIR [--embed]

Writes RUN_DIR/report.html: the loss plot, the real images, the sample grids and the config.

Options:
  --embed      embed the images in the page (one self-contained file)
  -h, --help   show this help`;

export async function reportCommand(args: string[], io: CliIO): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(NAME, args, REPORT_OPTIONS, { positionals: 1 });
  if (v.help) {
    writeLine(io.stdout, REPORT_HELP);
    return EXIT.OK;
  }
  const runDir = positionals[0];
  if (!runDir) throw new UsageError('missing RUN_DIR (the run folder, e.g. runs/run-1)', NAME);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(runDir);
  } catch {
    throw new Error(`run folder ${runDir} does not exist`);
  }
  if (!stat.isDirectory()) throw new Error(`${runDir} is not a folder`);
  const r = writeReport(runDir, { embed: !!v.embed });
  writeLine(io.stdout, `Wrote ${r.path} (${r.samples.length} sample grid${r.samples.length === 1 ? '' : 's'}${r.lossPlot ? ', loss plot' : ''})`);
  return EXIT.OK;
}
