#!/usr/bin/env node
/**
 * The `libtorch-gan` command. `main(argv, io)` runs one command and resolves to its exit code
 * (0 ok, 1 runtime failure, 2 usage error, 130 interrupted); only the bin entry at the bottom
 * touches the process (SIGINT handler, exit).
 */
import { BUILD_HELP, buildCommand } from './commands/build';
import { evalCommand, EVAL_HELP } from './commands/eval';
import { infoCommand, INFO_HELP } from './commands/info';
import { presetsCommand, PRESETS_HELP } from './commands/presets';
import { EXPORT_HELP, exportCommand } from './commands/export';
import { reportCommand, REPORT_HELP } from './commands/report';
import { sampleCommand, SAMPLE_HELP } from './commands/sample';
import { serveCommand, SERVE_HELP } from './commands/serve';
import { trainCommand, TRAIN_HELP } from './commands/train';
import { BIN, EXIT, packageVersion, UsageError, writeLine, type CliIO } from './commands/common';
import { suggest } from '../util/suggest';

type Command = { run: (args: string[], io: CliIO) => Promise<number>; help: string; summary: string };

export const COMMANDS: Readonly<Record<string, Command>> = {
  train: { run: trainCommand, help: TRAIN_HELP, summary: 'train a GAN (preset, config file, flags); resumable' },
  sample: { run: sampleCommand, help: SAMPLE_HELP, summary: "write a PNG grid of a trained run's samples" },
  serve: { run: serveCommand, help: SERVE_HELP, summary: "serve a run's generator over HTTP (PNG, JSON, metrics)" },
  eval: { run: evalCommand, help: EVAL_HELP, summary: 'measure an MNIST or Fashion-MNIST run: classifier-FID, IS, coverage' },
  presets: { run: presetsCommand, help: PRESETS_HELP, summary: 'list the training presets' },
  info: { run: infoCommand, help: INFO_HELP, summary: 'show versions, LibTorch, CUDA, threads and BLAS' },
  report: { run: reportCommand, help: REPORT_HELP, summary: "write a run folder's report.html" },
  export: { run: exportCommand, help: EXPORT_HELP, summary: "write a run's generator as ONNX (onnxruntime anywhere)" },
  build: { run: buildCommand, help: BUILD_HELP, summary: 'compile the native addon for the LibTorch found (needs g++, cmake)' },
};

export const MAIN_HELP = `Usage: ${BIN} <command> [options]

Train GANs on MNIST from the command line at native LibTorch speed (CPU and CUDA).

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`)
  .join('\n')}
  help CMD  show a command's help (as '${BIN} CMD --help')

Options:
  -h, --help     show this help
  -V, --version  print the version

Examples:
  ${BIN} train --preset vanilla --epochs 20 --seed 1
  ${BIN} train --resume runs/run-1 --epochs 40
  ${BIN} sample --checkpoint runs/run-1 --count 64 --out samples.png
  ${BIN} eval runs/run-1

Exit codes: 0 ok, 1 failure, 2 usage error, 130 interrupted. LTG_DEBUG=1 (or train's --verbose 3) shows
stack traces and LibTorch's C++ frames.`;

function usageFailure(io: CliIO, err: UsageError): number {
  const prefix = err.command ? `${BIN} ${err.command}` : BIN;
  writeLine(io.stderr, `${prefix}: ${err.message.split('\n').join(`\n${prefix}: `)}`);
  writeLine(io.stderr, `Run '${err.command ? `${BIN} ${err.command} --help` : `${BIN} --help`}' for usage.`);
  return EXIT.USAGE;
}

/** Runs the command line `argv` (without node and the script). Resolves to the exit code; never throws. */
export async function main(argv: string[], io: CliIO): Promise<number> {
  const debug = Boolean(io.env.LTG_DEBUG) || verboseLevel(argv) >= 3;
  // C++ frames only when asked for: the addon then keeps a c10::Error's backtrace on the JS error
  // (TORCH_SHOW_CPP_STACKTRACES, as PyTorch's) and lets LibTorch's own log lines through (c10d's connect
  // retries; TORCH_CPP_LOG_LEVEL). --nproc's ranks inherit both.
  if (debug) {
    io.env.TORCH_SHOW_CPP_STACKTRACES ??= '1';
    io.env.TORCH_CPP_LOG_LEVEL ??= 'WARNING';
  }
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      writeLine(io.stderr, MAIN_HELP);
      return EXIT.USAGE;
    }
    if (first === '-h' || first === '--help') {
      writeLine(io.stdout, MAIN_HELP);
      return EXIT.OK;
    }
    if (first === '-V' || first === '--version') {
      writeLine(io.stdout, packageVersion());
      return EXIT.OK;
    }
    if (first === 'help') {
      const c = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
      if (rest[0] !== undefined && !c) throw unknownCommand(rest[0]);
      writeLine(io.stdout, c ? c.help : MAIN_HELP);
      return EXIT.OK;
    }
    if (first.startsWith('-')) throw new UsageError(`unknown option ${first} (options go after the command, e.g. '${BIN} train ${first}')`);
    const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
    if (!command) throw unknownCommand(first);
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) return usageFailure(io, e);
    const err = withoutNativeBacktrace(e instanceof Error ? e : new Error(String(e)));
    writeLine(io.stderr, `${BIN}: error: ${err.message}`);
    if (debug && err.nativeBacktrace) writeLine(io.stderr, err.nativeBacktrace);
    if (debug && err.stack) writeLine(io.stderr, err.stack);
    return EXIT.FAILURE;
  }
}

/** The `--verbose N` of argv (the last one), or 0. */
function verboseLevel(argv: string[]): number {
  let level = 0;
  argv.forEach((a, i) => {
    const v = a === '--verbose' ? argv[i + 1] : a.startsWith('--verbose=') ? a.slice('--verbose='.length) : undefined;
    if (v !== undefined && /^\d+$/.test(v)) level = Number(v);
  });
  return level;
}

// Where LibTorch's C++ backtrace starts in a c10::Error's text ("Exception raised from f at file:line
// (most recent call first):", then "frame #0: ..." lines).
const NATIVE_BACKTRACE = /\n?(Exception raised from |frame #\d+: )/;

/**
 * `err` with any C++ backtrace moved out of its message onto `nativeBacktrace` (printed only at
 * --verbose 3 or LTG_DEBUG): the error line names what failed, the frames are for a debugger.
 */
export function withoutNativeBacktrace(err: Error): Error & { nativeBacktrace?: string } {
  const m = NATIVE_BACKTRACE.exec(err.message);
  if (!m) return err;
  const out = err as Error & { nativeBacktrace?: string };
  out.nativeBacktrace = err.message.slice(m.index).replace(/^\n/, '');
  out.message = err.message.slice(0, m.index).trimEnd();
  return out;
}

function unknownCommand(name: string): UsageError {
  const hint = suggest(name, Object.keys(COMMANDS));
  return new UsageError(`unknown command ${JSON.stringify(name)}${hint ? ` (did you mean ${hint}?)` : ''}; commands: ${Object.keys(COMMANDS).join(', ')}`);
}

/** The process's streams, environment, SIGINT and exit. */
export function processIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      return () => process.off('SIGINT', handler);
    },
    exit: (code) => process.exit(code),
  };
}

if (require.main === module) {
  main(process.argv.slice(2), processIO()).then(
    (code) => process.exit(code),
    () => process.exit(EXIT.FAILURE),
  );
}
