/**
 * `libtorch-gan build`: compiles the addon from source for the LibTorch found, as the package's install
 * script does when npm lets it run (npm 11 blocks dependencies' install scripts by default). It runs
 * scripts/install.js with LIBTORCH_GAN_BUILD_FROM_SOURCE=1 in the package's own folder, and never loads
 * the addon itself: it is what a user runs when no binary here fits their LibTorch.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { packageRoot } from '../../util/package';
import { BIN, EXIT, parseCommandArgs, writeLine, type CliIO } from './common';

const NAME = 'build';

export const BUILD_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
} as const;

export const BUILD_HELP = `Usage: ${BIN} build

Builds the native addon from source against the LibTorch found (the one '${BIN} info' would use:
LIBTORCH, else Python's torch from PYTHON, the project's .venv or python3), into the package's
build/Release, where the loader takes it before any prebuilt binary. Needs cmake and a C++ compiler
(g++ or clang++) on PATH; takes a few minutes. Use it when no prebuilt binary fits your LibTorch, or
when npm did not run the package's install script.

Options:
  -h, --help   show this help`;

export async function buildCommand(args: string[], io: CliIO): Promise<number> {
  const { values: v } = parseCommandArgs(NAME, args, BUILD_OPTIONS);
  if (v.help) {
    writeLine(io.stdout, BUILD_HELP);
    return EXIT.OK;
  }
  const script = path.join(packageRoot, 'scripts', 'install.js');
  const child = spawn(process.execPath, [script], {
    cwd: packageRoot,
    env: { ...io.env, LIBTORCH_GAN_BUILD_FROM_SOURCE: '1', LIBTORCH_GAN_SKIP_INSTALL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => io.stdout.write(d));
  child.stderr.on('data', (d: Buffer) => io.stderr.write(d));
  const code = await new Promise<number>((resolve) => {
    child.on('error', (e) => {
      writeLine(io.stderr, `${BIN} build: could not run ${script}: ${e.message}`);
      resolve(EXIT.FAILURE);
    });
    child.on('close', (c, signal) => resolve(c ?? (signal === 'SIGINT' ? EXIT.INTERRUPTED : EXIT.FAILURE)));
  });
  return code === 0 ? EXIT.OK : code === EXIT.INTERRUPTED ? EXIT.INTERRUPTED : EXIT.FAILURE;
}
