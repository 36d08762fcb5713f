import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONFIG_DEFAULTS, ConfigError, loadConfigFile, parseConfig, resolveConfig, VERBOSE_LEVELS, type RunConfig } from '../../ts/config/config';
import { countParameters, presets } from '../../ts/gan/presets';

/** The ConfigError thrown by fn (fails the test if none or another kind is thrown). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
const messages = (fn: () => unknown) => configError(fn).issues.map((i) => i.message);

describe('parseConfig', () => {
  test('accepts a full config and returns it unchanged (no defaults applied)', () => {
    const full: RunConfig = {
      preset: 'udacity',
      epochs: 3,
      batchSize: 32,
      lr: 1e-3,
      betas: [0.5, 0.999],
      zDim: 64,
      device: 'cpu',
      seed: 0,
      saveDir: 'out',
      saveEvery: 0,
      sampleEvery: 5,
      verbose: 3,
      threads: 4,
      resume: 'out/ckpt.pt',
      data: { dataset: 'fashion-mnist', root: '/data', download: false },
    };
    expect(parseConfig(full)).toEqual(full);
    expect(parseConfig({})).toEqual({});
  });

  test('unknown keys, with a suggestion when one is close', () => {
    expect(messages(() => parseConfig({ epoch: 5 }))).toEqual(['config: unknown key "epoch" (did you mean "epochs"?)']);
    expect(messages(() => parseConfig({ batch_size: 5 }))).toEqual(['config: unknown key "batch_size" (did you mean "batchSize"?)']);
    expect(messages(() => parseConfig({ foo: 1 }))).toEqual([
      'config: unknown key "foo"; valid keys: preset, epochs, batchSize, lr, betas, zDim, device, seed, saveDir, ' +
        'saveEvery, sampleEvery, evalEvery, evalN, verbose, threads, flushDenormal, cudaGraphs, precision, resume, data, loss, penalty, dSteps, ema, augment, conditional',
    ]);
    expect(messages(() => parseConfig({ data: { dataset: 'mnist', rot: 'x' } }))).toEqual(['config.data: unknown key "rot" (did you mean "root"?)']);
    const e = configError(() => parseConfig({ epoch: 5 }));
    expect(e.issues[0].path).toEqual(['epoch']);
  });

  test('wrong types', () => {
    expect(messages(() => parseConfig({ batchSize: '64' }))).toEqual(['config.batchSize: expected an integer >= 1, got "64"']);
    expect(messages(() => parseConfig({ lr: '1e-3' }))).toEqual(['config.lr: expected a number > 0, got "1e-3"']);
    expect(messages(() => parseConfig({ betas: 0.5 }))).toEqual(['config.betas: expected an array of two numbers [beta1, beta2], each in [0, 1), got 0.5']);
    expect(messages(() => parseConfig({ device: 'gpu' }))).toEqual(['config.device: expected "auto", "cpu" or "cuda", got "gpu"']);
    expect(messages(() => parseConfig({ data: 'mnist' }))).toEqual([
      'config.data: expected an object { dataset, root?, download?, imageSize?, channels? }, got "mnist"',
    ]);
    expect(messages(() => parseConfig({ data: { dataset: 'mnist', download: 'yes' } }))).toEqual(['config.data.download: expected a boolean, got "yes"']);
    expect(messages(() => parseConfig({ saveDir: null }))).toEqual(['config.saveDir: expected a non-empty string, got null']);
    expect(messages(() => parseConfig([]))).toEqual(['config: expected a JSON object, got []']);
    expect(messages(() => parseConfig('vanilla'))).toEqual(['config: expected a JSON object, got "vanilla"']);
  });

  test('out-of-range values', () => {
    expect(messages(() => parseConfig({ batchSize: 0 }))).toEqual(['config.batchSize: expected an integer >= 1, got 0']);
    expect(configError(() => parseConfig({ batchSize: 0 })).message).toBe('config.batchSize: expected an integer >= 1, got 0');
    expect(messages(() => parseConfig({ epochs: 2.5 }))).toEqual(['config.epochs: expected an integer >= 1, got 2.5']);
    expect(messages(() => parseConfig({ lr: 0 }))).toEqual(['config.lr: expected a number > 0, got 0']);
    expect(messages(() => parseConfig({ lr: Infinity }))).toEqual(['config.lr: expected a number > 0, got Infinity']);
    expect(messages(() => parseConfig({ betas: [0.5, 1] }))).toEqual(['config.betas[1]: expected a number in [0, 1), got 1']);
    expect(messages(() => parseConfig({ betas: [0.5] }))).toEqual(['config.betas: expected an array of two numbers [beta1, beta2], each in [0, 1), got [0.5]']);
    expect(messages(() => parseConfig({ verbose: 4 }))).toEqual(['config.verbose: expected an integer from 0 to 3, got 4']);
    expect(messages(() => parseConfig({ seed: -1 }))).toEqual(['config.seed: expected an integer >= 0, got -1']);
    expect(messages(() => parseConfig({ threads: 0 }))).toEqual(['config.threads: expected an integer >= 1, got 0']);
    expect(messages(() => parseConfig({ saveEvery: -2 }))).toEqual(['config.saveEvery: expected an integer >= 0, got -2']);
    expect(messages(() => parseConfig({ resume: '' }))).toEqual(['config.resume: expected a non-empty string, got ""']);
    expect(messages(() => parseConfig({ data: {} }))).toEqual(['config.data: missing required key "dataset" (expected "mnist", "fashion-mnist" or "folder")']);
  });

  test('unknown preset', () => {
    expect(messages(() => parseConfig({ preset: 'vanila' }))).toEqual([
      'config.preset: unknown preset "vanila" (did you mean "vanilla"?); valid presets: seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan, sngan, wgan-gp',
    ]);
    expect(messages(() => parseConfig({ preset: 'wgan' }))).toEqual([
      'config.preset: unknown preset "wgan" (did you mean "cgan"?); valid presets: seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan, sngan, wgan-gp',
    ]);
    expect(messages(() => parseConfig({ preset: 4 }))).toEqual([
      'config.preset: expected one of seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan, sngan, wgan-gp, got 4',
    ]);
  });

  test('reports every issue, one per line, prefixed with the source', () => {
    const e = configError(() => parseConfig({ lr: 0, device: 'gpu', verbose: 9, epoch: 1 }, 'run.json'));
    expect(e.name).toBe('ConfigError');
    expect(e.source).toBe('run.json');
    expect(e.issues.map((i) => i.path)).toEqual(expect.arrayContaining([['lr'], ['device'], ['verbose'], ['epoch']]));
    expect(e.message.split('\n').sort()).toEqual(
      [
        'run.json: config.lr: expected a number > 0, got 0',
        'run.json: config.device: expected "auto", "cpu" or "cuda", got "gpu"',
        'run.json: config.verbose: expected an integer from 0 to 3, got 9',
        'run.json: config: unknown key "epoch" (did you mean "epochs"?)',
      ].sort(),
    );
  });
});

describe('loadConfigFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gan-config-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };

  test('reads a valid file (BOM tolerated)', () => {
    const p = write('ok.json', '\ufeff{ "preset": "ganist", "epochs": 2 }\n');
    expect(loadConfigFile(p)).toEqual({ preset: 'ganist', epochs: 2 });
  });

  test('missing file', () => {
    const p = path.join(dir, 'nope.json');
    const e = configError(() => loadConfigFile(p));
    expect(e.message).toBe(`${p}: config file not found`);
    expect(e.source).toBe(p);
  });

  test('a directory', () => {
    expect(configError(() => loadConfigFile(dir)).message).toBe(`${dir}: is a directory, not a config file`);
  });

  test('invalid JSON names the file and the place', () => {
    const p = write('bad.json', '{\n  "epochs": 3,\n}\n');
    const e = configError(() => loadConfigFile(p));
    expect(e.message.startsWith(`${p}: invalid JSON: `)).toBe(true);
    expect(e.message).toMatch(/line 3, column 1\)?$/);
    expect(configError(() => loadConfigFile(write('empty.json', ''))).message).toBe(
      `${path.join(dir, 'empty.json')}: invalid JSON: Unexpected end of JSON input`,
    );
  });

  test('validation errors carry the file name', () => {
    const p = write('range.json', '{ "batchSize": 0 }');
    expect(configError(() => loadConfigFile(p)).message).toBe(`${p}: config.batchSize: expected an integer >= 1, got 0`);
    const q = write('preset.json', '{ "preset": "gan" }');
    expect(configError(() => loadConfigFile(q)).message).toBe(
      `${q}: config.preset: unknown preset "gan" (did you mean "cgan"?); valid presets: seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan, sngan, wgan-gp`,
    );
  });
});

describe('resolveConfig', () => {
  test('defaults: cgan, auto device, documented run options', () => {
    const r = resolveConfig({}, { cudaAvailable: false });
    expect(r).toEqual({
      preset: presets.cgan,
      device: 'cpu',
      seed: undefined,
      saveDir: 'runs',
      saveEvery: 10,
      sampleEvery: 1,
      evalEvery: 0,
      evalN: 10000,
      verbose: 1,
      threads: undefined,
      flushDenormal: true,
      cudaGraphs: true,
      precision: 'fp32',
      resume: undefined,
      data: { dataset: 'mnist', root: undefined, download: true },
    });
    expect(CONFIG_DEFAULTS).toMatchObject({ preset: 'cgan', device: 'auto', saveDir: 'runs', saveEvery: 10, verbose: 1 });
    // the result is a copy: mutating it leaves the preset table alone
    r.preset.optimizer.lr = 5;
    expect(presets.cgan.optimizer.lr).toBe(2e-4);
  });

  test('auto device both ways; explicit cpu and cuda', () => {
    expect(resolveConfig({ device: 'auto' }, { cudaAvailable: true }).device).toBe('cuda');
    expect(resolveConfig({ device: 'auto' }, { cudaAvailable: false }).device).toBe('cpu');
    expect(resolveConfig({}, { cudaAvailable: true }).device).toBe('cuda');
    expect(resolveConfig({ device: 'cpu' }, { cudaAvailable: true }).device).toBe('cpu');
    expect(resolveConfig({ device: 'cuda' }, { cudaAvailable: true }).device).toBe('cuda');
  });

  test('cuda requested without CUDA is a ConfigError', () => {
    const e = configError(() => resolveConfig({ device: 'cuda' }, { cudaAvailable: false }, 'run.json'));
    expect(e.issues).toEqual([
      {
        path: ['device'],
        message: 'config.device: "cuda" was requested but CUDA is not available (no CUDA build of LibTorch or no usable GPU); use "auto" or "cpu"',
      },
    ]);
    expect(e.message.startsWith('run.json: config.device: "cuda" was requested')).toBe(true);
  });

  test('overrides merge into the preset', () => {
    const r = resolveConfig(
      { preset: 'tensorboard', epochs: 3, batchSize: 8, lr: 1e-3, betas: [0.5, 0.99], seed: 42, verbose: 3, threads: 2 },
      { cudaAvailable: false },
    );
    expect(r.preset.name).toBe('tensorboard');
    expect(r.preset.epochs).toBe(3);
    expect(r.preset.batchSize).toBe(8);
    expect(r.preset.optimizer).toEqual({ type: 'adam', lr: 1e-3, betas: [0.5, 0.99], eps: 1e-8, weightDecay: 0, amsgrad: false });
    expect(r.preset.step).toEqual(presets.tensorboard.step);
    expect(r.preset.generator).toEqual(presets.tensorboard.generator);
    expect([r.seed, r.verbose, r.threads]).toEqual([42, 3, 2]);
  });

  test('zDim rewrites the generator input and the noise together', () => {
    const r = resolveConfig({ preset: 'ganist', zDim: 64 }, { cudaAvailable: false });
    expect(r.preset.zDim).toBe(64);
    expect(r.preset.step.noise).toEqual({ dist: 'normal', dim: 64 });
    const first = countParameters(r.preset.generator).layers[0];
    expect(first.tensors[0]).toEqual({ name: '0.0.weight', shape: [128, 64] });
    expect(r.preset.discriminator).toEqual(presets.ganist.discriminator);
    expect(presets.ganist.zDim).toBe(10);
  });

  test('run options and data pass through', () => {
    const r = resolveConfig(
      {
        preset: 'seed000',
        saveDir: 'out',
        saveEvery: 0,
        sampleEvery: 2,
        resume: 'out/last.ckpt',
        data: { dataset: 'fashion-mnist', root: '/d' },
      },
      { cudaAvailable: true },
    );
    expect(r).toMatchObject({
      device: 'cuda',
      saveDir: 'out',
      saveEvery: 0,
      sampleEvery: 2,
      resume: 'out/last.ckpt',
      data: { dataset: 'fashion-mnist', root: '/d', download: true },
    });
    expect(r.preset.step.noise).toEqual({ dist: 'uniform', dim: 128, low: -1, high: 1 });
  });

  test('re-validates what it is given', () => {
    expect(messages(() => resolveConfig({ batchSize: 0 } as RunConfig, { cudaAvailable: false }))).toEqual([
      'config.batchSize: expected an integer >= 1, got 0',
    ]);
    expect(messages(() => resolveConfig({ preset: 'x' } as unknown as RunConfig, { cudaAvailable: false }))).toEqual([
      'config.preset: unknown preset "x"; valid presets: seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan, sngan, wgan-gp',
    ]);
  });

  test('verbose levels are documented', () => {
    expect(Object.keys(VERBOSE_LEVELS)).toEqual(['0', '1', '2', '3']);
    expect(VERBOSE_LEVELS[0]).toBe('nothing');
    expect(VERBOSE_LEVELS[3]).toMatch(/parameter counts per layer/);
  });
});
