import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fromSpec } from '../../ts/nn/from-spec';
import { type Module } from '../../ts/nn/module';
import { type ModuleSpec } from '../../ts/nn/spec';
import { Adam, SGD, type Optimizer } from '../../ts/optim/optimizer';
import * as safetensors from '../../ts/tensor/safetensors';
import * as torch from '../../ts/tensor/torch';
import {
  CheckpointError,
  checkpointFs,
  loadCheckpoint,
  optimizerFromSafetensors,
  optimizerToSafetensors,
  readTrainerState,
  saveCheckpoint,
  type CheckpointParts,
} from '../../ts/store/checkpoint';
import { restoreCheckpoint } from '../../ts/store/checkpoint-restore';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-ckpt-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const newDir = () => path.join(root, `d${++dirCount}`);

const SPEC: ModuleSpec = {
  type: 'Sequential',
  children: [
    { type: 'Linear', inFeatures: 4, outFeatures: 3 },
    { type: 'BatchNorm1d', numFeatures: 3 },
    { type: 'Linear', inFeatures: 3, outFeatures: 2 },
  ],
};

/** A tiny model pair with optimizers that have taken `steps` steps. */
function setup(seed: number, steps = 2, kind: 'adam' | 'sgd' = 'adam') {
  torch.manualSeed(seed);
  const g = fromSpec(SPEC);
  const d = fromSpec(SPEC);
  const mk = (m: Module): Optimizer =>
    kind === 'adam' ? new Adam(m.parameters(), { lr: 0.01, betas: [0.5, 0.999] }) : new SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
  const optG = mk(g);
  const optD = mk(d);
  for (let i = 0; i < steps; i++) {
    trainStep(g, optG);
    trainStep(d, optD);
  }
  return { g, d, optG, optD };
}

function trainStep(m: Module, opt: Optimizer): void {
  torch.scope(() => {
    opt.zeroGrad();
    const loss = m
      .forward(torch.randn([5, 4]))
      .pow(2)
      .mean();
    loss.backward();
    opt.step();
  });
}

function parts(s: ReturnType<typeof setup>, epoch: number): CheckpointParts {
  return {
    generator: s.g,
    discriminator: s.d,
    optimizerG: s.optG,
    optimizerD: s.optD,
    fixedNoise: torch.zeros([2, 4]),
    state: { epoch, globalStep: epoch * 10, preset: 'test', device: 'cpu', seed: 1, shuffleSeed: 1, images: 5, interrupted: null },
  };
}

const values = (m: Module) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, v]) => [k, Array.from(v.toFloat32Array())]));

describe('optimizer state as safetensors', () => {
  it.each(['adam', 'sgd'] as const)('%s: round trip, then identical updates', (kind) => {
    const a = setup(1, 3, kind);
    const { tensors, metadata } = optimizerToSafetensors(a.optG.stateDict(), { type: kind, paramNames: a.g.namedParameters().map(([n]) => n) });
    const names = kind === 'adam' ? ['exp_avg', 'exp_avg_sq'] : ['momentum_buffer'];
    expect(Object.keys(tensors).sort()).toEqual([0, 1, 2, 3, 4, 5].flatMap((i) => names.map((n) => `state.${i}.${n}`)).sort());
    expect(JSON.parse(metadata.param_groups)[0]).toMatchObject(kind === 'adam' ? { lr: 0.01, betas: [0.5, 0.999] } : { lr: 0.1, momentum: 0.9 });
    if (kind === 'adam') expect(JSON.parse(metadata.state)['5']).toEqual({ step: 3 });
    expect(JSON.parse(metadata.param_names)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias']);

    // through bytes, into a fresh optimizer over a copy of the weights
    const bytes = safetensors.save(tensors, metadata);
    const sd = optimizerFromSafetensors(safetensors.loadWithMetadata(bytes));
    const b = setup(99, 0, kind);
    b.g.loadStateDict(a.g.stateDict());
    b.optG.loadStateDict(sd);
    torch.manualSeed(5);
    trainStep(a.g, a.optG);
    torch.manualSeed(5);
    trainStep(b.g, b.optG);
    expect(values(b.g)).toEqual(values(a.g));
  });

  it('rejects files that are not optimizer checkpoints', () => {
    const bytes = safetensors.save({ x: torch.zeros([1]) }, { format: 'pt' });
    expect(() => optimizerFromSafetensors(safetensors.loadWithMetadata(bytes), 'x.safetensors')).toThrow(/x\.safetensors: not an optimizer checkpoint/);
  });
});

describe('saveCheckpoint / loadCheckpoint', () => {
  it('restores weights, buffers, optimizer state and the RNG state exactly', () => {
    const dir = newDir();
    const a = setup(2);
    saveCheckpoint(dir, parts(a, 3));
    const expectedNext = torch.randn([4]).toFloat32Array(); // what the global generator gives after the save
    const st = readTrainerState(dir);
    expect(st).toMatchObject({ format: 'libtorch-gan-checkpoint/1', epoch: 3, globalStep: 30, preset: 'test', interrupted: null });
    expect(st.files['generator.safetensors'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(safetensors.loadFile(path.join(dir, 'generator.safetensors')))).toEqual(
      expect.arrayContaining(['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked', '2.weight', '2.bias']),
    );

    const b = setup(3, 0);
    torch.randn([100]); // move the generator elsewhere
    const ckpt = loadCheckpoint(dir);
    restoreCheckpoint(ckpt, { generator: b.g, discriminator: b.d, optimizerG: b.optG, optimizerD: b.optD });
    expect(values(b.g)).toEqual(values(a.g));
    expect(values(b.d)).toEqual(values(a.d));
    expect(Array.from(torch.randn([4]).toFloat32Array())).toEqual(Array.from(expectedNext));
    expect(ckpt.fixedNoise?.shape).toEqual([2, 4]);
    // and training continues identically
    torch.manualSeed(8);
    trainStep(a.d, a.optD);
    torch.manualSeed(8);
    trainStep(b.d, b.optD);
    expect(values(b.d)).toEqual(values(a.d));
  });

  // The protocol: 5 temporary files + trainer.json, '.prev' links, 6 renames (trainer.json last).
  it.each([0, 1, 2, 3, 4, 5])('a crash after %i of the 6 renames keeps the previous checkpoint', (okRenames) => {
    const dir = newDir();
    const s = setup(4);
    saveCheckpoint(dir, parts(s, 1));
    const first = values(s.g);
    const firstD = values(s.d);
    trainStep(s.g, s.optG);
    trainStep(s.d, s.optD);
    const real = checkpointFs.rename;
    let n = 0;
    checkpointFs.rename = (from, to) => {
      if (n++ === okRenames) throw new Error('simulated crash');
      real(from, to);
    };
    try {
      expect(() => saveCheckpoint(dir, parts(s, 2))).toThrow('simulated crash');
    } finally {
      checkpointFs.rename = real;
    }
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const ckpt = loadCheckpoint(dir);
    expect(ckpt.state.epoch).toBe(1);
    const b = setup(5, 0);
    restoreCheckpoint(ckpt, { generator: b.g, discriminator: b.d, optimizerG: b.optG, optimizerD: b.optD });
    expect(values(b.g)).toEqual(first);
    expect(values(b.d)).toEqual(firstD);

    // the next save after the crash succeeds, and a crash right after it still finds a consistent checkpoint
    saveCheckpoint(dir, parts(s, 2));
    expect(loadCheckpoint(dir).state.epoch).toBe(2);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.prev') || f.endsWith('.tmp'))).toEqual([]);
  });

  it('two crashed saves in a row still leave the last committed checkpoint', () => {
    const dir = newDir();
    const s = setup(6);
    saveCheckpoint(dir, parts(s, 1));
    const first = values(s.g);
    const real = checkpointFs.rename;
    for (const ok of [3, 1]) {
      trainStep(s.g, s.optG);
      let n = 0;
      checkpointFs.rename = (from, to) => {
        if (n++ === ok) throw new Error('simulated crash');
        real(from, to);
      };
      try {
        expect(() => saveCheckpoint(dir, parts(s, 2))).toThrow('simulated crash');
      } finally {
        checkpointFs.rename = real;
      }
    }
    const b = setup(7, 0);
    restoreCheckpoint(loadCheckpoint(dir), { generator: b.g, discriminator: b.d, optimizerG: b.optG, optimizerD: b.optD });
    expect(values(b.g)).toEqual(first);
  });

  it('names what is wrong with a folder that holds no usable checkpoint', () => {
    expect(() => loadCheckpoint(path.join(root, 'absent'))).toThrow(/absent does not exist/);
    const empty = newDir();
    fs.mkdirSync(empty);
    expect(() => loadCheckpoint(empty)).toThrow(CheckpointError);
    expect(() => loadCheckpoint(empty)).toThrow(/has no checkpoint \(trainer\.json is missing\)/);
    fs.writeFileSync(path.join(empty, 'trainer.json'), '{"format":"other"}');
    expect(() => loadCheckpoint(empty)).toThrow(/not a libtorch-gan checkpoint/);
    const dir = newDir();
    saveCheckpoint(dir, parts(setup(8, 1), 1));
    fs.rmSync(path.join(dir, 'rng.safetensors'));
    expect(() => loadCheckpoint(dir)).toThrow(/rng\.safetensors is missing: the checkpoint is incomplete/);
  });
});

describe('a data-parallel checkpoint: every rank RNG state', () => {
  it("stores each rank's CPU and GPU generator states by rank and loads them back in rank order", () => {
    const dir = newDir();
    // generator states are opaque bytes to the checkpoint: distinct ones per rank and device
    const state = (k: number) =>
      torch.tensor(
        Uint8Array.from({ length: 16 }, (_, i) => k * 16 + i),
        [16],
      );
    const cpu = [state(0), state(1), state(2)];
    const cuda = [state(3), state(4), state(5)];
    saveCheckpoint(dir, { ...parts(setup(9, 1), 1), rng: { cpu: cpu[0], ranks: cpu, cuda: cuda[0], cudaRanks: cuda } });
    const stored = safetensors.load(fs.readFileSync(path.join(dir, 'rng.safetensors')));
    expect(Object.keys(stored).sort()).toEqual(['fixed_noise', 'rng.cpu', 'rng.cpu.rank1', 'rng.cpu.rank2', 'rng.cuda', 'rng.cuda.rank1', 'rng.cuda.rank2']);
    const ckpt = loadCheckpoint(dir);
    const bytes = (ts: { toTypedArray(): unknown }[] | undefined) => ts?.map((t) => Array.from(t.toTypedArray() as Uint8Array));
    expect(bytes(ckpt.rng.ranks)).toEqual(bytes(cpu));
    expect(bytes(ckpt.rng.cudaRanks)).toEqual(bytes(cuda));
    expect(bytes(ckpt.rng.cuda && [ckpt.rng.cuda])).toEqual(bytes([cuda[0]]));
  });

  it('a one-process checkpoint has no per-rank GPU states', () => {
    const dir = newDir();
    saveCheckpoint(dir, parts(setup(10, 1), 1));
    expect(loadCheckpoint(dir).rng.cudaRanks).toBeUndefined();
  });
});
