import { describeValue } from '../../ts/util/describe';
import { checkDevice, checkInteger, checkNumber, checkOneOf, checkSeed, readOptions } from '../../ts/util/options';

describe('describeValue: one rendering of an offending value', () => {
  it('primitives, strings in JSON quotes, short arrays as JSON, objects by kind', () => {
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(Number.NaN)).toBe('NaN');
    expect(describeValue(true)).toBe('true');
    expect(describeValue(5n)).toBe('5n');
    expect(describeValue('tpu')).toBe('"tpu"');
    expect(describeValue('a\nb')).toBe('"a\\nb"');
    expect(describeValue('x'.repeat(100))).toBe(`"${'x'.repeat(57)}..."`);
    expect(describeValue([0.5])).toBe('[0.5]');
    expect(describeValue(Array.from({ length: 50 }, (_, i) => i))).toBe('an array of 50 items');
    expect(describeValue({ a: 1 })).toBe('an object');
    expect(describeValue(Object.create(null))).toBe('an object');
    expect(describeValue(new Float32Array(2))).toBe('a Float32Array');
    expect(describeValue(new AbortController())).toBe('an AbortController');
    expect(describeValue(function named() {})).toBe('a function (named)');
    expect(describeValue(Symbol('s'))).toBe('Symbol(s)');
  });
});

describe('readOptions', () => {
  const KEYS = ['count', 'seed', 'device', 'mode'] as const;

  it('refuses what is not a plain object, naming the expected form', () => {
    expect(() => readOptions('fn', 'x', KEYS)).toThrow(new TypeError('fn: expected an object { count?, seed?, device?, mode? }, got "x"'));
    expect(() => readOptions('fn', null, KEYS)).toThrow('fn: expected an object { count?, seed?, device?, mode? }, got null');
    expect(() => readOptions('fn', [1], KEYS, { form: 'options { count }' })).toThrow('fn: expected options { count }, got [1]');
    expect(() => readOptions('fn', new AbortController(), KEYS, { label: 'fn(options)' })).toThrow(
      'fn(options): expected an object { count?, seed?, device?, mode? }, got an AbortController',
    );
    expect(() => readOptions('fn', undefined, KEYS)).toThrow(TypeError);
    // an optional options argument: undefined and null have no fields
    expect(readOptions('fn', undefined, KEYS, { optional: true }).integerOr('count', 3)).toBe(3);
    expect(readOptions('fn', null, KEYS, { optional: true }).has('count')).toBe(false);
  });

  it('an unknown key is a TypeError naming it, the closest known key and all of them', () => {
    expect(() => readOptions('sample', { cout: 1 }, KEYS)).toThrow(
      new TypeError('sample: unknown option "cout": did you mean count? (options: count, seed, device, mode)'),
    );
    expect(() => readOptions('sample', { Seed: 1 }, KEYS)).toThrow('sample: unknown option "Seed": did you mean seed?');
    // nothing close: no suggestion
    expect(() => readOptions('sample', { zzzzzzzz: 1 }, KEYS)).toThrow(new TypeError('sample: unknown option "zzzzzzzz" (options: count, seed, device, mode)'));
  });

  it('typed readers: TypeError for a wrong type, RangeError out of range, defaults only for undefined', () => {
    const o = readOptions('fn', { count: 0, seed: 2.5, mode: 'fast', device: 'cuda:1' }, KEYS);
    expect(() => o.integer('count', { min: 1 })).toThrow(new RangeError('fn: count: expected an integer >= 1, got 0'));
    expect(() => o.integer('count', { min: 1 })).toThrow(RangeError);
    expect(() => o.seed('seed')).toThrow(new RangeError('fn: seed: expected an integer >= 0, got 2.5'));
    expect(() => o.integer('mode')).toThrow(new TypeError('fn: mode: expected an integer, got "fast"'));
    expect(() => o.integer('mode')).toThrow(TypeError);
    expect(() => o.boolean('mode')).toThrow(new TypeError('fn: mode: expected a boolean, got "fast"'));
    expect(() => o.number('mode')).toThrow(new TypeError('fn: mode: expected a finite number, got "fast"'));
    expect(o.integer('count', { min: 0, max: 3 })).toBe(0);
    expect(o.device('device')).toBe('cuda:1');
    expect(o.string('mode')).toBe('fast');
    expect(o.label('count')).toBe('fn: count');
    expect(o.error('mode', 'a mode')).toEqual(new TypeError('fn: mode: expected a mode, got "fast"'));

    const empty = readOptions('fn', { count: undefined }, KEYS);
    expect(empty.integerOr('count', 64, { min: 1 })).toBe(64);
    expect(empty.seedOr('seed', undefined)).toBeUndefined();
    expect(empty.deviceOr('device', 'cpu')).toBe('cpu');
    expect(empty.booleanOr('mode', true)).toBe(true);
    expect(empty.oneOfOr('mode', ['a', 'b'] as const, 'a')).toBe('a');
    expect(() => empty.integer('count')).toThrow(new TypeError('fn: count: expected an integer, got undefined'));
    // null is a value, not a missing field (as js_args reads it)
    expect(() => readOptions('fn', { count: null }, KEYS).integerOr('count', 1)).toThrow('fn: count: expected an integer, got null');
  });

  it('enums list the choices and suggest the closest for a misspelt string', () => {
    const o = readOptions('noise', { mode: 'unifrom' }, KEYS);
    expect(() => o.oneOf('mode', ['uniform', 'normal'])).toThrow(
      new TypeError(`noise: mode: expected 'uniform' or 'normal', got "unifrom" (did you mean 'uniform'?)`),
    );
    expect(() => checkOneOf('gaussian', 'noise.dist', ['uniform', 'normal'])).toThrow(
      new TypeError(`noise.dist: expected 'uniform' or 'normal', got "gaussian"`),
    );
    // numeric choices: a number outside them is out of range
    expect(() => checkOneOf(2, 'channels', [1, 3, 'auto'])).toThrow(new RangeError("channels: expected 1, 3 or 'auto', got 2"));
    expect(() => checkOneOf(2, 'channels', [1, 3, 'auto'])).toThrow(RangeError);
    expect(() => checkOneOf('rgb', 'channels', [1, 3, 'auto'])).toThrow(TypeError);
    expect(checkOneOf(3, 'channels', [1, 3, 'auto'])).toBe(3);
  });
});

describe('the value checks', () => {
  it('integers: safe, within the range, the form saying which', () => {
    expect(checkInteger(5, 'n', { min: 1, max: 5 })).toBe(5);
    expect(() => checkInteger(6, 'n', { min: 1, max: 5 })).toThrow(new RangeError('n: expected an integer from 1 to 5, got 6'));
    expect(() => checkInteger(-1, 'n', { max: 5, min: undefined })).not.toThrow();
    expect(() => checkInteger(9, 'n', { max: 5 })).toThrow('n: expected an integer <= 5, got 9');
    expect(() => checkInteger(2 ** 53, 'n')).toThrow(RangeError);
    expect(() => checkInteger(1n, 'n')).toThrow(new TypeError('n: expected an integer, got 1n'));
  });

  it('numbers: finite, with inclusive or exclusive bounds', () => {
    expect(checkNumber(0.5, 'lr', { gt: 0 })).toBe(0.5);
    expect(() => checkNumber(0, 'lr', { gt: 0 })).toThrow(new RangeError('lr: expected a number > 0, got 0'));
    expect(() => checkNumber(2, 'p', { min: 0, max: 1 })).toThrow(new RangeError('p: expected a number from 0 to 1, got 2'));
    expect(() => checkNumber(Number.POSITIVE_INFINITY, 'x')).toThrow(new RangeError('x: expected a finite number, got Infinity'));
  });

  it('seeds: the one check, 0 to 2^53 - 1', () => {
    expect(checkSeed(0)).toBe(0);
    expect(checkSeed(Number.MAX_SAFE_INTEGER, 'sample: seed')).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => checkSeed(-1, 'sample: seed')).toThrow(new RangeError('sample: seed: expected an integer >= 0, got -1'));
    expect(() => checkSeed(2 ** 53)).toThrow(new RangeError('seed: expected an integer >= 0, got 9007199254740992'));
    expect(() => checkSeed(Number.NaN)).toThrow(RangeError);
    expect(() => checkSeed('7')).toThrow(new TypeError('seed: expected an integer >= 0, got "7"'));
  });

  it("devices: 'cpu', 'cuda' or 'cuda:N'", () => {
    for (const d of ['cpu', 'cuda', 'cuda:0', 'cuda:12']) expect(checkDevice(d)).toBe(d);
    for (const d of ['gpu', 'cuda:', 'cuda:x', 'CPU', 'mps', 3]) expect(() => checkDevice(d, 'f: device')).toThrow(TypeError);
    expect(() => checkDevice('tpu', 'f: device')).toThrow(new TypeError(`f: device: expected 'cpu', 'cuda' or 'cuda:N', got "tpu"`));
  });
});
