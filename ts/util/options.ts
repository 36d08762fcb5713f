/**
 * The one reader of the public API's arguments and options objects, the TypeScript side of
 * native/js_args.h. A value of the wrong type is a TypeError, a number out of range a RangeError, each
 * naming the function, the key, what was expected and what was given:
 *   sample: count: expected an integer >= 1, got 0
 *   noise: dist: expected 'uniform' or 'normal', got "gaussian"
 *   sample: unknown option "cout": did you mean count? (options: checkpoint, count, seed, ...)
 * "Missing" means undefined, as in js_args: the ...Or readers give their default only then.
 */
import { describeValue, isPlainObject } from './describe';
import { suggest } from './suggest';

export { describeValue } from './describe';

/** A device name as the addon takes it (the same type as native/addon.ts's Device). */
export type DeviceName = 'cpu' | 'cuda' | `cuda:${number}`;

/** Inclusive bounds of an integer. */
export interface IntRange {
  min?: number;
  max?: number;
}

/** Bounds of a number; `gt` is an exclusive lower bound. */
export interface NumberRange {
  min?: number;
  max?: number;
  gt?: number;
}

/** A seed: an integer JavaScript holds exactly, 0 to 2^53 - 1. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/** TypeError "<label>: expected <expected>, got <value>". */
export function typeError(label: string, expected: string, value: unknown, tail = ''): TypeError {
  return new TypeError(`${label}: expected ${expected}, got ${describeValue(value)}${tail}`);
}

/** RangeError "<label>: expected <expected>, got <value>": the type was right, the value is not. */
export function rangeError(label: string, expected: string, value: unknown, tail = ''): RangeError {
  return new RangeError(`${label}: expected ${expected}, got ${describeValue(value)}${tail}`);
}

/** 'an integer >= 1', 'an integer from 0 to 3', 'an integer <= 9'. */
export function integerForm(r: IntRange = {}): string {
  if (r.min !== undefined && r.max !== undefined) return `an integer from ${r.min} to ${r.max}`;
  if (r.min !== undefined) return `an integer >= ${r.min}`;
  if (r.max !== undefined) return `an integer <= ${r.max}`;
  return 'an integer';
}

/** 'a finite number', 'a number > 0', 'a number from 0 to 1'. */
export function numberForm(r: NumberRange = {}): string {
  const lo = r.gt !== undefined ? `> ${r.gt}` : r.min !== undefined ? `>= ${r.min}` : undefined;
  if (r.max !== undefined)
    return r.min !== undefined && r.gt === undefined ? `a number from ${r.min} to ${r.max}` : `a number ${lo ? `${lo} and ` : ''}<= ${r.max}`;
  return lo ? `a number ${lo}` : 'a finite number';
}

/** "'a', 'b' or 'c'" (numbers unquoted), as TypeScript writes the union. */
export function choicesForm(choices: readonly (string | number)[]): string {
  const shown = choices.map((c) => (typeof c === 'string' ? `'${c}'` : String(c)));
  return shown.length < 2 ? (shown[0] ?? 'nothing') : `${shown.slice(0, -1).join(', ')} or ${shown[shown.length - 1]}`;
}

/** A safe integer within `r`; TypeError for a non-number, RangeError for a fraction or a value out of range. */
export function checkInteger(value: unknown, label: string, r: IntRange = {}): number {
  if (typeof value !== 'number') throw typeError(label, integerForm(r), value);
  if (!Number.isSafeInteger(value) || (r.min !== undefined && value < r.min) || (r.max !== undefined && value > r.max))
    throw rangeError(label, integerForm(r), value);
  return value;
}

/** A finite number within `r`. */
export function checkNumber(value: unknown, label: string, r: NumberRange = {}): number {
  if (typeof value !== 'number') throw typeError(label, numberForm(r), value);
  if (!Number.isFinite(value) || (r.min !== undefined && value < r.min) || (r.gt !== undefined && value <= r.gt) || (r.max !== undefined && value > r.max))
    throw rangeError(label, numberForm(r), value);
  return value;
}

/** The one seed check: an integer from 0 to 2^53 - 1 (what a JS number holds exactly; the addon takes it as uint64). */
export function checkSeed(value: unknown, label = 'seed'): number {
  return checkInteger(value, label, { min: 0 });
}

export function checkBoolean(value: unknown, label: string): boolean {
  if (typeof value !== 'boolean') throw typeError(label, 'a boolean', value);
  return value;
}

/** A string (by default a non-empty one); `form` says what it names ('the path of a run folder'). */
export function checkString(value: unknown, label: string, form = 'a non-empty string', allowEmpty = false): string {
  if (typeof value !== 'string' || (!allowEmpty && value === '')) throw typeError(label, form, value);
  return value;
}

/**
 * One of `choices`. A string outside them is a TypeError (as js_args' oneOf) with the closest choice
 * suggested; a number outside numeric choices is a RangeError.
 */
export function checkOneOf<T extends string | number>(value: unknown, label: string, choices: readonly T[]): T {
  if ((choices as readonly unknown[]).includes(value)) return value as T;
  const names = choices.filter((c): c is T & string => typeof c === 'string');
  const hint = typeof value === 'string' ? suggest(value, names) : undefined;
  const tail = hint ? ` (did you mean '${hint}'?)` : '';
  if (typeof value === 'number' && choices.some((c) => typeof c === 'number')) throw rangeError(label, choicesForm(choices), value);
  throw typeError(label, choicesForm(choices), value, tail);
}

const DEVICE_RE = /^(cpu|cuda(:\d+)?)$/;

/** Whether `value` is a device name: 'cpu', 'cuda' or 'cuda:N'. */
export function isDeviceName(value: unknown): value is DeviceName {
  return typeof value === 'string' && DEVICE_RE.test(value);
}

/** A device name, 'cpu', 'cuda' or 'cuda:N' (whether it is usable here is the addon's to say). */
export function checkDevice(value: unknown, label = 'device'): DeviceName {
  if (!isDeviceName(value)) throw typeError(label, "'cpu', 'cuda' or 'cuda:N'", value);
  return value;
}

/** How readOptions reads the object itself. */
export interface ReadOptionsHow {
  /** The expected form in the error for a non-object (default: an object { key?, ... }). */
  form?: string;
  /** Whom the error for a non-object names (default: the function). */
  label?: string;
  /** undefined and null read as an object without fields (an optional options argument). */
  optional?: boolean;
}

/**
 * The options object `value` of `fn`, refused unless it is a plain object (not an array or a class
 * instance) whose keys are all in `keys`; its fields are then read by the returned reader, each labelled "<fn>: <key>".
 */
export function readOptions<K extends string>(fn: string, value: unknown, keys: readonly K[], how: ReadOptionsHow = {}): OptionsReader<K> {
  if (how.optional && (value === undefined || value === null)) return new OptionsReader(fn, {});
  // a class instance (a Tensor given where options go) is refused by name, not read for unknown keys
  if (!isPlainObject(value)) throw typeError(how.label ?? fn, how.form ?? `an object { ${keys.map((k) => `${k}?`).join(', ')} }`, value);
  for (const k of Object.keys(value)) {
    if (!(keys as readonly string[]).includes(k)) {
      const hint = suggest(k, keys);
      throw new TypeError(`${fn}: unknown option ${JSON.stringify(k)}${hint ? `: did you mean ${hint}?` : ''} (options: ${keys.join(', ')})`);
    }
  }
  return new OptionsReader(fn, value as Record<string, unknown>);
}

/** The fields of one options object (see readOptions). Each reader names the field "<fn>: <key>". */
export class OptionsReader<K extends string> {
  constructor(
    readonly fn: string,
    private readonly o: Readonly<Record<string, unknown>>,
  ) {}

  /** "<fn>: <key>", the label of a field's errors. */
  label(key: K): string {
    return `${this.fn}: ${key}`;
  }

  /** The field as given, for a check of its own (see error). */
  get(key: K): unknown {
    return this.o[key];
  }

  has(key: K): boolean {
    return this.o[key] !== undefined;
  }

  /** TypeError "<fn>: <key>: expected <expected>, got <value>", for a check of the caller's own (`throw o.error(...)`). */
  error(key: K, expected: string): TypeError {
    return typeError(this.label(key), expected, this.o[key]);
  }

  integer(key: K, r?: IntRange): number {
    return checkInteger(this.o[key], this.label(key), r);
  }
  integerOr<D extends number | undefined>(key: K, dflt: D, r?: IntRange): number | D {
    return this.has(key) ? this.integer(key, r) : dflt;
  }

  number(key: K, r?: NumberRange): number {
    return checkNumber(this.o[key], this.label(key), r);
  }
  numberOr<D extends number | undefined>(key: K, dflt: D, r?: NumberRange): number | D {
    return this.has(key) ? this.number(key, r) : dflt;
  }

  boolean(key: K): boolean {
    return checkBoolean(this.o[key], this.label(key));
  }
  booleanOr<D extends boolean | undefined>(key: K, dflt: D): boolean | D {
    return this.has(key) ? this.boolean(key) : dflt;
  }

  /** A non-empty string (or any with allowEmpty); `form` names what it is in the error. */
  string(key: K, form?: string, allowEmpty?: boolean): string {
    return checkString(this.o[key], this.label(key), form, allowEmpty);
  }
  stringOr<D extends string | undefined>(key: K, dflt: D, form?: string, allowEmpty?: boolean): string | D {
    return this.has(key) ? this.string(key, form, allowEmpty) : dflt;
  }

  oneOf<T extends string | number>(key: K, choices: readonly T[]): T {
    return checkOneOf(this.o[key], this.label(key), choices);
  }
  oneOfOr<T extends string | number, D extends T | undefined>(key: K, choices: readonly T[], dflt: D): T | D {
    return this.has(key) ? this.oneOf(key, choices) : dflt;
  }

  seed(key: K): number {
    return checkSeed(this.o[key], this.label(key));
  }
  seedOr<D extends number | undefined>(key: K, dflt: D): number | D {
    return this.has(key) ? this.seed(key) : dflt;
  }

  device(key: K): DeviceName {
    return checkDevice(this.o[key], this.label(key));
  }
  deviceOr<D extends DeviceName | undefined>(key: K, dflt: D): DeviceName | D {
    return this.has(key) ? this.device(key) : dflt;
  }
}
