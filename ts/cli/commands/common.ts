/**
 * What the CLI commands share: the I/O they write to, usage errors (exit 2) and argument parsing
 * with messages that name the flag and the expected form.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolveDevice, type DeviceOption } from '../../config/config';
import { cudaEnv } from '../../config/device';
import { suggest } from '../../util/suggest';

export { packageVersion } from '../../util/package';

export const BIN = 'libtorch-gan';

/** Exit codes. */
export const EXIT = Object.freeze({ OK: 0, FAILURE: 1, USAGE: 2, INTERRUPTED: 130 });

export type OutStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** Where a command writes and how it hears about Ctrl-C. main.ts passes the process's. */
export interface CliIO {
  stdout: OutStream;
  stderr: OutStream;
  env: NodeJS.ProcessEnv;
  /**
   * Calls `handler` on each interrupt (SIGINT) until the returned function is called. Absent:
   * the command cannot be interrupted gracefully.
   */
  onInterrupt?: (handler: () => void) => () => void;
  /** Ends the process now (a second Ctrl-C). */
  exit?: (code: number) => never | void;
}

/** A command-line mistake: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

export function writeLine(stream: OutStream, text = ''): void {
  stream.write(`${text}\n`);
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/**
 * parseArgs in strict mode, with its errors turned into UsageErrors that name the flag ("unknown
 * option --epoch (did you mean --epochs?)", "option --epochs needs a value").
 */
export function parseCommandArgs<O extends OptionSpec>(
  command: string,
  args: string[],
  options: O,
  opts: { positionals?: number } = {},
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: (opts.positionals ?? 0) > 0 }) as typeof parsed;
  } catch (e) {
    const err = e as Error & { code?: string };
    const flag = /'(?:-\w, )?(--?[^' <]+)/.exec(err.message)?.[1];
    const known = Object.keys(options).map((k) => `--${k}`);
    switch (err.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
        const hint = flag ? suggest(flag.replace(/^-+/, '--'), known) : undefined;
        throw new UsageError(`unknown option ${flag ?? ''}${hint ? ` (did you mean ${hint}?)` : ''}`.trim(), command);
      }
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
        const name = flag ?? 'an option';
        if (/does not take an argument/.test(err.message)) throw new UsageError(`option ${name} takes no value`, command);
        if (/ambiguous/.test(err.message)) {
          throw new UsageError(`option ${name} needs a value (write ${name}=VALUE for a value starting with '-')`, command);
        }
        throw new UsageError(`option ${name} needs a value`, command);
      }
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
        const arg = /argument '([^']*)'/.exec(err.message)?.[1];
        throw new UsageError(`unexpected argument ${JSON.stringify(arg ?? '')}`, command);
      }
      default:
        throw new UsageError(err.message, command);
    }
  }
  const max = opts.positionals ?? 0;
  if (parsed.positionals.length > max) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[max])}`, command);
  }
  return parsed as { values: Record<string, string | boolean | undefined>; positionals: string[] };
}

/** An integer flag value: digits only (a leading '-' only when min < 0), within [min, max]. */
export function intFlag(command: string, flag: string, value: string | boolean | undefined, min: number, max?: number): number | undefined {
  if (value === undefined) return undefined;
  const form = max !== undefined ? `an integer from ${min} to ${max}` : `an integer >= ${min}`;
  const s = String(value).trim();
  const n = /^-?\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
    throw new UsageError(`--${flag}: expected ${form}, got ${JSON.stringify(String(value))}`, command);
  }
  return n;
}

/** A positive number flag value. */
export function positiveNumberFlag(command: string, flag: string, value: string | boolean | undefined): number | undefined {
  if (value === undefined) return undefined;
  const s = String(value).trim();
  const n = /^(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s) ? Number(s) : NaN;
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${flag}: expected a number > 0, got ${JSON.stringify(String(value))}`, command);
  return n;
}

/** One of `choices`. */
export function choiceFlag<T extends string>(command: string, flag: string, value: string | boolean | undefined, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  const s = String(value);
  if ((choices as readonly string[]).includes(s)) return s as T;
  const hint = suggest(s, choices);
  throw new UsageError(`--${flag}: expected one of ${choices.join(', ')}, got ${JSON.stringify(s)}${hint ? ` (did you mean ${hint}?)` : ''}`, command);
}

/** A non-empty string flag value. */
export function stringFlag(command: string, flag: string, value: string | boolean | undefined, what = 'a value'): string | undefined {
  if (value === undefined) return undefined;
  const s = String(value);
  if (!s) throw new UsageError(`--${flag}: expected ${what}, got an empty string`, command);
  return s;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function formatTable(rows: string[][], opts: { rightAlign?: number[] } = {}): string {
  const widths: number[] = [];
  for (const r of rows) for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 && !opts.rightAlign?.includes(i) ? c : opts.rightAlign?.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Quotes a path for a shell command line when it needs it. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * --device auto|cpu|cuda of the commands besides train (sample, eval), through the one device resolution:
 * cuda where CUDA is unusable is a usage error naming why; auto on the CPU says why on stderr.
 */
export function deviceFlag(command: string, value: string | boolean | undefined, io: CliIO, dflt: DeviceOption): 'cpu' | 'cuda' {
  const requested = choiceFlag(command, 'device', value, ['auto', 'cpu', 'cuda'] as const) ?? dflt;
  const choice = resolveDevice(requested, cudaEnv());
  if ('unusable' in choice) throw new UsageError(`--device cuda: ${choice.unusable}; use auto or cpu`, command);
  if (choice.fallback) writeLine(io.stderr, `note: device auto runs on the CPU: ${choice.fallback}`);
  return choice.device;
}
