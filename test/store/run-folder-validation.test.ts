/**
 * Run folders read back: trainer.json and config.json with fields of the wrong type, a wrong RNG
 * state and diverged (NaN) weights are errors naming the file, the key and the value (never a
 * TypeError or a silently wrong resume); temporary files orphaned by a writer killed during a
 * checkpoint are removed when the run is resumed and before each checkpoint.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MNIST, type ImageDataset } from '../../ts/data/mnist';
import * as safetensors from '../../ts/tensor/safetensors';
import * as torch from '../../ts/tensor/torch';
import { CheckpointError, checkFiniteWeights, loadCheckpoint, readTrainerState } from '../../ts/store/checkpoint';
import { readRunInfo } from '../../ts/store/run-dir';
import { sample } from '../../ts/store/generator';
import { Trainer } from '../../ts/run/trainer';

const repo = path.resolve(__dirname, '..', '..');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-run-validation-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let mnist: ImageDataset;
let base: string; // a finished 1-epoch run: 200 images, 2 steps
beforeAll(async () => {
  mnist = await MNIST();
  const t = await Trainer.create(
    { preset: 'vanilla', epochs: 1, seed: 3, device: 'cpu', saveDir: path.join(root, 'runs'), verbose: 0 },
    { dataset: mnist, limit: 200 },
  );
  await t.train();
  base = t.runDir;
  t.dispose();
});

let copies = 0;
function copyRun(): string {
  const d = path.join(root, `copy-${++copies}`);
  fs.cpSync(base, d, { recursive: true });
  return d;
}
function editJson(dir: string, name: string, edit: (j: Record<string, unknown>) => unknown): string {
  const file = path.join(dir, name);
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  const replaced = edit(j);
  fs.writeFileSync(file, JSON.stringify(replaced === undefined ? j : replaced));
  return file;
}
/** Replaces a checkpoint file and records its new size and digest in trainer.json (a consistent, but bad, checkpoint). */
function replaceCheckpointFile(dir: string, name: string, bytes: Buffer): string {
  fs.writeFileSync(path.join(dir, name), bytes);
  editJson(dir, 'trainer.json', (j) => {
    (j.files as Record<string, unknown>)[name] = { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  });
  return path.join(dir, name);
}
const resume = (dir: string) => Trainer.create({ resume: dir, epochs: 2 }, { dataset: mnist, limit: 200 });

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

type Edit = (j: Record<string, unknown>) => unknown;
const at =
  (keys: (string | number)[], value: unknown): Edit =>
  (j) => {
    let cur = j as Record<string | number, unknown>;
    for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
    cur[keys[keys.length - 1]] = value;
  };

describe('trainer.json: wrong fields are CheckpointErrors naming the file, the key and the value', () => {
  const cases: [string, Edit, string][] = [
    ['interrupted "yes"', at(['interrupted'], 'yes'), 'interrupted: expected null or an object { epoch, steps }, got "yes"'],
    ['interrupted.steps -1', at(['interrupted'], { epoch: 2, steps: -1 }), 'interrupted.steps: expected an integer >= 0, got -1'],
    ['shuffleSeed "abc"', at(['shuffleSeed'], 'abc'), 'shuffleSeed: expected an integer >= 0, got "abc"'],
    ['seed {}', at(['seed'], {}), 'seed: expected null or an integer >= 0, got an object'],
    ['files null', at(['files'], null), 'files: expected an object { <file name>: { bytes, sha256 } }, got null'],
    ['a file size "x"', at(['files', 'generator.safetensors', 'bytes'], 'x'), 'files["generator.safetensors"].bytes: expected an integer >= 0, got "x"'],
    ['format "zzz"', at(['format'], 'zzz'), 'not a libtorch-gan checkpoint (expected an object with format "libtorch-gan-checkpoint/1", got format "zzz")'],
    ['the whole file null', () => null, 'not a libtorch-gan checkpoint (expected an object with format "libtorch-gan-checkpoint/1", got null)'],
    [
      'epoch missing',
      (j) => {
        delete j.epoch;
      },
      'the file: missing required key "epoch" (expected an integer >= 0)',
    ],
    ['device "tpu"', at(['device'], 'tpu'), 'device: expected "cpu", "cuda" or "cuda:N", got "tpu"'],
  ];

  it.each(cases)('%s', async (_name, edit, message) => {
    const dir = copyRun();
    const file = editJson(dir, 'trainer.json', edit);
    expect(() => readTrainerState(dir)).toThrow(new CheckpointError(`${file}: ${message}`));
    const err = await rejection(resume(dir));
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toBe(`${file}: ${message}`);
  });

  it('lists every wrong field, one line each', () => {
    const dir = copyRun();
    const file = editJson(dir, 'trainer.json', (j) => {
      j.globalStep = 1.5;
      j.images = 0;
    });
    expect(() => readTrainerState(dir)).toThrow(`${file}: globalStep: expected an integer >= 0, got 1.5\n${file}: images: expected an integer >= 1, got 0`);
  });
});

describe('config.json: wrong fields are CheckpointErrors naming the file, the key and the value (resume and sample)', () => {
  const cases: [string, Edit, string][] = [
    ['format "zzz"', at(['format'], 'zzz'), 'not a libtorch-gan run config (expected an object with format "libtorch-gan-run/1", got format "zzz")'],
    ['shuffleSeed "abc"', at(['shuffleSeed'], 'abc'), 'shuffleSeed: expected an integer >= 0, got "abc"'],
    ['seed {}', at(['seed'], {}), 'seed: expected null or an integer >= 0, got an object'],
    ['limit "x"', at(['limit'], 'x'), 'limit: expected null or an integer >= 1, got "x"'],
    [
      'generator children null',
      at(['config', 'preset', 'generator', 'children'], null),
      'config.preset.generator.children: expected an array of module specs, got null',
    ],
    [
      'an unknown layer type',
      at(['config', 'preset', 'discriminator', 'children', 0, 'type'], 'Conv9'),
      'config.preset.discriminator.children[0].type: expected one of BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Embedding, Flatten, LeakyReLU, Linear, ReLU, Sigmoid, Tanh, Unflatten, Sequential, got "Conv9"',
    ],
    [
      'a layer size "256"',
      at(['config', 'preset', 'generator', 'children', 0, 'outFeatures'], '256'),
      'config.preset.generator.children[0].outFeatures: expected an integer >= 1, got "256"',
    ],
    ['betas [2, 0]', at(['config', 'preset', 'optimizer', 'betas'], [2, 0]), 'config.preset.optimizer.betas[0]: expected a number in [0, 1), got 2'],
    ['noise dist', at(['config', 'preset', 'step', 'noise', 'dist'], 'cauchy'), 'config.preset.step.noise.dist: expected "uniform" or "normal", got "cauchy"'],
    ['data.dataset', at(['config', 'data', 'dataset'], 'cifar'), 'config.data.dataset: expected "mnist", "fashion-mnist" or "folder", got "cifar"'],
    ['dataset null', at(['dataset'], null), 'dataset: expected an object { name, images, source? }, got null'],
    [
      'the preset missing',
      at(['config', 'preset'], undefined),
      'config: missing required key "preset" (expected a preset object { name, generator, discriminator, step, optimizer, ... })',
    ],
  ];

  it.each(cases)('%s', async (_name, edit, message) => {
    const dir = copyRun();
    const file = editJson(dir, 'config.json', edit);
    const want = `${file}: ${message}`;
    expect(() => readRunInfo(dir)).toThrow(new CheckpointError(want));
    const err = await rejection(resume(dir));
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toBe(want);
    expect(() => sample({ checkpoint: dir, count: 2, seed: 1 })).toThrow(new CheckpointError(want));
  });
});

describe('checkpoint contents', () => {
  it('a wrong RNG state names its file', async () => {
    for (const [state, message] of [
      [torch.zeros([4]), 'rng.cpu: expected a generator state (a 1-D uint8 tensor), got float32 [4]'],
      [torch.zeros([10], { dtype: 'uint8' }), 'rng.cpu is not a usable cpu generator state (Expected a CPUGeneratorImplState of size'],
    ] as const) {
      const dir = copyRun();
      const rng = safetensors.loadFileWithMetadata(path.join(dir, 'rng.safetensors'));
      const file = replaceCheckpointFile(dir, 'rng.safetensors', safetensors.save({ ...rng.tensors, 'rng.cpu': state }, rng.metadata));
      const err = await rejection(resume(dir));
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message.startsWith(`${file}: ${message}`)).toBe(true);
    }
  });

  it('NaN or infinite generator weights are reported at resume, naming the file and the tensor', async () => {
    const dir = copyRun();
    const g = safetensors.loadFileWithMetadata(path.join(dir, 'generator.safetensors'));
    const w = Float32Array.from(g.tensors['0.weight'].toFloat32Array()); // a Float32Array of this realm (jest's vm context)
    w[5] = NaN;
    w[7] = -Infinity;
    const bad = { ...g.tensors, '0.weight': torch.tensor(w, g.tensors['0.weight'].shape) };
    const file = replaceCheckpointFile(dir, 'generator.safetensors', safetensors.save(bad, g.metadata));
    const err = await rejection(resume(dir));
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toBe(
      `${file}: tensor "0.weight" has 2 of 25600 values NaN or infinite: the run diverged before this checkpoint was written (train again, e.g. with a lower lr)`,
    );
    // sample() refuses them too, with the same message
    expect(() => sample({ checkpoint: dir, count: 2, seed: 1 })).toThrow(err.message);
    expect(() => checkFiniteWeights(bad, file)).toThrow(err.message);
    expect(() => checkFiniteWeights(g.tensors, file)).not.toThrow();
    expect(() => checkFiniteWeights({ big: torch.tensor([1e300], { dtype: 'float64' }), n: torch.tensor([5], { dtype: 'int64' }) }, 'f')).not.toThrow();
    expect(() => checkFiniteWeights({ h: torch.tensor([NaN, 1]).to('float16') }, 'f')).toThrow('f: tensor "h" has 1 of 2 values NaN or infinite');
  });
});

describe('temporary files of a writer killed during a checkpoint', () => {
  /** A writer killed (SIGKILL) right after writing the temporary file of `target`, as during a checkpoint. */
  function killedWriter(target: string, bytes: number): void {
    const script = `
      const ts = require(${JSON.stringify(path.join(repo, 'node_modules', 'typescript'))});
      const src = require('node:fs').readFileSync(${JSON.stringify(path.join(repo, 'ts', 'util', 'fs.ts'))}, 'utf8');
      const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
      const m = { exports: {} };
      new Function('require', 'module', 'exports', out)(require, m, m.exports);
      m.exports.writeTempFile(${JSON.stringify(target)}, Buffer.alloc(${bytes}, 7));
      process.kill(process.pid, 'SIGKILL');`;
    const r = spawnSync(process.execPath, ['-e', script], { timeout: 30000 });
    expect(r.signal).toBe('SIGKILL');
  }
  const temps = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'));

  it('are removed when the run is resumed; other files stay, the checkpoint loads and training continues', async () => {
    const dir = copyRun();
    killedWriter(path.join(dir, 'generator.safetensors'), 1 << 20);
    killedWriter(path.join(dir, 'trainer.json'), 100);
    // the same names as a killed writer whose pid this process now has (pids are reused), and other run files
    fs.writeFileSync(path.join(dir, `.rng.safetensors.${process.pid}.99.tmp`), 'partial');
    fs.writeFileSync(path.join(dir, '.losses.csv.4190001.1.tmp'), 'partial');
    fs.writeFileSync(path.join(dir, 'samples', '.epoch-001.png.4190001.2.tmp'), 'partial');
    fs.writeFileSync(path.join(dir, 'notes.tmp'), 'mine'); // not a name writeTempFile makes
    fs.writeFileSync(path.join(dir, '.generator.safetensors.tmp'), 'mine');
    expect(temps(dir)).toHaveLength(6);

    const t = await resume(dir);
    try {
      expect(temps(dir).sort()).toEqual(['.generator.safetensors.tmp', 'notes.tmp']);
      expect(fs.readdirSync(path.join(dir, 'samples'))).toEqual(['epoch-001.png']);
      expect(loadCheckpoint(dir).state).toMatchObject({ epoch: 1, globalStep: 2 });

      // and saveCheckpoint removes the checkpoint's own leftovers before it writes (only those)
      fs.writeFileSync(path.join(dir, '.optimizer_d.safetensors.4190001.3.tmp'), 'partial');
      fs.writeFileSync(path.join(dir, '.report.html.4190001.4.tmp'), 'partial');
      t.checkpoint();
      expect(temps(dir).sort()).toEqual(['.generator.safetensors.tmp', '.report.html.4190001.4.tmp', 'notes.tmp']);

      const r = await t.train();
      expect(r).toMatchObject({ epoch: 2, globalStep: 4 });
      expect(loadCheckpoint(dir).state).toMatchObject({ epoch: 2, globalStep: 4, interrupted: null });
    } finally {
      t.dispose();
    }
  });
});
