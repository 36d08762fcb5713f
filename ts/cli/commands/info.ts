/** `libtorch-gan info`: package, LibTorch, CUDA, threads and BLAS. */
import { formatInfo, info } from '../../native/info';
import { BIN, EXIT, parseCommandArgs, writeLine, type CliIO } from './common';

const NAME = 'info';

export const INFO_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const INFO_HELP = `Usage: ${BIN} info [--json]

Shows the package and LibTorch versions, where LibTorch was found, whether CUDA is usable, and
the thread and BLAS settings.

Options:
  --json       the same as JSON
  -h, --help   show this help`;

export async function infoCommand(args: string[], io: CliIO): Promise<number> {
  const { values: v } = parseCommandArgs(NAME, args, INFO_OPTIONS);
  if (v.help) {
    writeLine(io.stdout, INFO_HELP);
    return EXIT.OK;
  }
  const i = info();
  writeLine(io.stdout, v.json ? JSON.stringify(i, null, 2) : formatInfo(i));
  return EXIT.OK;
}
