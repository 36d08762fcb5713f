import { BCELoss } from '../../ts/nn/loss';
import { fromSpec } from '../../ts/nn/from-spec';
import { Adam, SGD } from '../../ts/optim/optimizer';
import * as torch from '../../ts/tensor/torch';
import { type Tensor } from '../../ts/tensor/tensor';
import { GanStep, type EpochAbortError } from '../../ts/gan/gan-step';
import { imperativeStep } from '../../ts/gan/imperative-step';
import { presets } from '../../ts/gan/presets';

function vanilla(seed = 1) {
  torch.manualSeed(seed);
  const p = presets.vanilla;
  const G = fromSpec(p.generator);
  const D = fromSpec(p.discriminator);
  const optG = new Adam(G.parameters(), { lr: 2e-4 });
  const optD = new Adam(D.parameters(), { lr: 2e-4 });
  return { p, G, D, optG, optD, gan: new GanStep(G, D, optG, optD, p.step) };
}

describe('GanStep', () => {
  it('step returns finite losses and D outputs in (0, 1), and changes the weights', () => {
    const { gan, G } = vanilla();
    const before = G.parameters()[0].clone();
    const r = gan.step(torch.rand([32, 784]).mul(2).sub(1));
    expect(r.dLoss).toBeGreaterThan(0);
    expect(r.gLoss).toBeGreaterThan(0);
    expect(r.dReal).toBeGreaterThan(0);
    expect(r.dReal).toBeLessThan(1);
    expect(r.dFake).toBeGreaterThan(0);
    expect(G.parameters()[0].allclose(before, 0, 0)).toBe(false);
  });

  it('trainDiscriminator + trainGenerator equal one step (exactly on the autograd path, to rounding on the MLP path)', () => {
    const x = torch.rand([16, 784]);
    const b = vanilla(5);
    torch.manualSeed(9);
    const d = b.gan.trainDiscriminator(x);
    const g = b.gan.trainGenerator(16);
    for (const fastPath of [false, true]) {
      const a = vanilla(5);
      const gan = new GanStep(a.G, a.D, a.optG, a.optD, a.p.step, { fastPath });
      torch.manualSeed(9);
      const s = gan.step(x);
      expect(d.dLoss).toBe(s.dLoss); // D's batched product still gives D's loss bit for bit
      if (fastPath) expect(Math.abs(g.gLoss - s.gLoss) / g.gLoss).toBeLessThan(1e-6);
      else expect(g.gLoss).toBe(s.gLoss);
    }
  });

  it('bad batches: width, dtype, batch size 0 give clear errors', () => {
    const { gan } = vanilla();
    expect(() => gan.step(torch.rand([8, 100]))).toThrow('real batch: expected shape [batch, 784], got [8, 100]');
    expect(() => gan.step(torch.rand([8, 784], { dtype: 'float64' }))).toThrow(/expected dtype Float \(the models' dtype\), got Double/);
    expect(() => gan.step(torch.rand([0, 784]))).toThrow(/batch size must be at least 1, got 0/);
  });

  it('trainEpoch: bad options and datasets are rejected', async () => {
    const { gan } = vanilla();
    const data = torch.randint(0, 256, [50, 784], { dtype: 'uint8' });
    await expect(gan.trainEpoch(data, { batchSize: 0 })).rejects.toThrow(/batchSize must be a positive integer, got 0/);
    await expect(gan.trainEpoch(data, { batchSize: 51 })).rejects.toThrow(/batchSize 51 is larger than the dataset \(50 images\)/);
    await expect(gan.trainEpoch(torch.zeros([10, 100], { dtype: 'uint8' }), { batchSize: 5 })).rejects.toThrow(/100 values each.*expects 784/);
  });

  it('a NaN loss stops training with an error naming the step, weights untouched', () => {
    torch.manualSeed(1);
    const p = presets.udacity; // logits + BCEWithLogits: NaN flows into the loss
    const G = fromSpec(p.generator);
    const D = fromSpec(p.discriminator);
    const gan = new GanStep(G, D, new Adam(G.parameters()), new Adam(D.parameters()), p.step);
    gan.step(torch.rand([8, 784]));
    const before = D.parameters()[0].clone();
    expect(() => gan.step(torch.full([8, 784], NaN))).toThrow(/discriminator loss is -?nan at step 2; training stopped before this update/);
    expect(D.parameters()[0].allclose(before, 0, 0)).toBe(true);
    // With a sigmoid D (BCELoss), ATen itself refuses NaN probabilities, also before any update.
    expect(() => vanilla().gan.step(torch.full([8, 784], NaN))).toThrow(/between 0 and 1/);
  });

  // capturable is the CUDA default (no per-step host check); on CPU it runs the same code path.
  function udacity(capturable: boolean) {
    torch.manualSeed(1);
    const p = presets.udacity; // logits + BCEWithLogits: NaN flows into the loss
    const G = fromSpec(p.generator);
    const D = fromSpec(p.discriminator);
    const optG = new Adam(G.parameters());
    const optD = new Adam(D.parameters());
    return { G, D, optG, optD, gan: new GanStep(G, D, optG, optD, p.step, { capturable }) };
  }
  const weights = (m: { G: { parameters(): Tensor[] }; D: { parameters(): Tensor[] } }) => [...m.G.parameters(), ...m.D.parameters()].map((t) => t.clone());
  const same = (a: Tensor[], b: Tensor[]) => a.every((t, i) => t.allclose(b[i], 0, 0));

  it('capturable: a NaN loss skips its update on the device; the error names the step; training goes on after', () => {
    const m = udacity(true);
    expect(m.gan.capturable).toBe(true);
    m.gan.step(torch.rand([8, 784]));
    const before = weights(m);
    expect(() => m.gan.step(torch.full([8, 784], NaN))).toThrow(
      /non-finite loss \(D -?nan, G [^)]*\) at step 2; its update was skipped, weights are those of the last good step/,
    );
    expect(same(weights(m), before)).toBe(true);
    // The skipped step did not count: Adam's step count (kept on the device) is 1, then 2 after a good step.
    expect(m.optD.stateDict().state[0].step).toBe(1);
    const r = m.gan.step(torch.rand([8, 784]));
    expect(Number.isFinite(r.dLoss)).toBe(true);
    expect(same(weights(m), before)).toBe(false);
    expect(m.optD.stateDict().state[0].step).toBe(2);
    expect(m.optG.stateDict().state[0].step).toBe(2);
    // An imperative optimizer step afterwards continues the count (it moves back to the host).
    m.optD.step();
    expect(m.optD.stateDict().state[0].step).toBe(3);
  });

  it('capturable trainEpoch: a NaN batch stops the epoch at the next report, weights those of the last good step', async () => {
    const data = torch.rand([80, 784]).mul(2).sub(1);
    data.narrow(0, 50, 10).fill_(NaN); // batch 6 of 8 (batchSize 10)
    const a = udacity(true);
    torch.manualSeed(3);
    await expect(a.gan.trainEpoch(data, { batchSize: 10, shuffle: false, progressEvery: 4 })).rejects.toThrow(
      /non-finite loss \(D -?nan, G [^)]*\) at step 6 of 8; training stopped: that update and the 2 after it were skipped, so the weights are those of step 5/,
    );
    expect(a.gan.busy).toBe(false);
    // The same five good batches through a twin give the same weights.
    const b = udacity(true);
    torch.manualSeed(3);
    await b.gan.trainEpoch(data.narrow(0, 0, 50), { batchSize: 10, shuffle: false });
    expect(same(weights(a), weights(b))).toBe(true);
    expect(a.optD.stateDict().state[0].step).toBe(5);
    // Not sticky: the model trains on.
    const r = await a.gan.trainEpoch(data.narrow(0, 0, 50), { batchSize: 10 });
    expect(Number.isFinite(r.dLoss)).toBe(true);
    expect(a.optD.stateDict().state[0].step).toBe(10);
  });

  // Each pair differs in one hyperparameter: the capturable update must be far closer to the
  // single-tensor one than that hyperparameter's own effect, so a dropped option would show.
  it.each([
    ['Adam amsgrad', (ps: Tensor[]) => new Adam(ps, { lr: 1e-3, amsgrad: true }), (ps: Tensor[]) => new Adam(ps, { lr: 1e-3 })],
    ['Adam weight decay', (ps: Tensor[]) => new Adam(ps, { lr: 1e-3, weightDecay: 0.1 }), (ps: Tensor[]) => new Adam(ps, { lr: 1e-3 })],
    [
      'SGD Nesterov momentum',
      (ps: Tensor[]) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true }),
      (ps: Tensor[]) => new SGD(ps, { lr: 0.05, momentum: 0.9 }),
    ],
    ['SGD weight decay', (ps: Tensor[]) => new SGD(ps, { lr: 0.05, weightDecay: 0.1 }), (ps: Tensor[]) => new SGD(ps, { lr: 0.05 })],
  ])('capturable updates equal the single-tensor ones: %s', (_, mk, without) => {
    const run = (capturable: boolean, make: (ps: Tensor[]) => Adam | SGD) => {
      torch.manualSeed(4);
      const p = presets.vanilla;
      const G = fromSpec(p.generator);
      const D = fromSpec(p.discriminator);
      const gan = new GanStep(G, D, make(G.parameters()), make(D.parameters()), p.step, { capturable });
      torch.manualSeed(5);
      for (let i = 0; i < 12; i++) gan.step(torch.rand([16, 784]).mul(2).sub(1));
      return weights({ G, D });
    };
    const diff = (a: Tensor[], b: Tensor[]) => Math.max(...a.map((t, i) => t.sub(b[i]).abs().max().item()));
    const single = run(false, mk);
    const same = diff(single, run(true, mk));
    expect(same).toBeLessThan(1e-5);
    expect(same * 10).toBeLessThan(diff(single, run(false, without)));
  });

  it('trainEpoch runs off the event loop: a timer keeps firing on time', async () => {
    const { gan } = vanilla();
    const data = torch.randint(0, 256, [3000, 784], { dtype: 'uint8' });
    const gaps: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }, 10);
    const r = await gan.trainEpoch(data, { batchSize: 100 });
    clearInterval(timer);
    expect(r.steps).toBe(30);
    expect(r.seconds).toBeGreaterThan(0.2);
    // The epoch took r.seconds; a blocked loop would show one gap of about that length.
    expect(gaps.length).toBeGreaterThan((r.seconds * 1000) / 10 / 4);
    expect(Math.max(...gaps)).toBeLessThan(Math.max(250, (r.seconds * 1000) / 3));
  });

  it('two trainings of one model cannot run at once', async () => {
    const { gan } = vanilla();
    const data = torch.randint(0, 256, [2000, 784], { dtype: 'uint8' });
    const x = torch.rand([4, 784]); // before the epoch: its generator is the epoch's meanwhile
    const first = gan.trainEpoch(data, { batchSize: 100 });
    expect(gan.busy).toBe(true);
    await expect(gan.trainEpoch(data, { batchSize: 100 })).rejects.toThrow(/busy: an epoch is training on a worker thread/);
    expect(() => gan.step(x)).toThrow(/busy/);
    await first;
    expect(gan.busy).toBe(false);
  });

  it('an AbortSignal cancels at a step boundary; progress is reported', async () => {
    const { gan } = vanilla();
    const data = torch.randint(0, 256, [5000, 784], { dtype: 'uint8' });
    const ac = new AbortController();
    const seen: number[] = [];
    const p = gan.trainEpoch(data, {
      batchSize: 50,
      progressEvery: 2,
      onProgress: (e) => {
        seen.push(e.step);
        if (e.step >= 4) ac.abort();
      },
      signal: ac.signal,
    });
    await expect(p).rejects.toMatchObject({ name: 'AbortError', message: expect.stringMatching(/epoch cancelled at step \d+ of 100/) });
    expect(seen[0]).toBe(2);
    expect(seen[seen.length - 1]).toBeLessThan(100);
    expect(gan.busy).toBe(false);
  });

  it('an aborted epoch says how far it got; startStep resumes it exactly', async () => {
    const data = torch.randint(0, 256, [2000, 784], { dtype: 'uint8' });
    const opts = { batchSize: 100, seed: 3, recordSteps: true };
    const a = vanilla(8);
    torch.manualSeed(1);
    const straight = await a.gan.trainEpoch(data, opts);

    const b = vanilla(8);
    torch.manualSeed(1);
    const ac = new AbortController();
    const err = (await b.gan
      .trainEpoch(data, { ...opts, progressEvery: 1, signal: ac.signal, onProgress: (p) => p.step >= 3 && ac.abort() })
      .catch((e: unknown) => e)) as EpochAbortError;
    expect(err.name).toBe('AbortError');
    const k = err.completedSteps;
    expect(k).toBeGreaterThanOrEqual(3);
    expect(k).toBeLessThan(20);
    expect(err.message).toBe(`epoch cancelled at step ${k} of 20`);
    expect(Array.from(err.perStep!)).toEqual(Array.from(straight.perStep!.subarray(0, k * 4)));
    const seen: number[] = [];
    const rest = await b.gan.trainEpoch(data, { ...opts, startStep: k, progressEvery: 1, onProgress: (p) => seen.push(p.step) });
    expect(seen[0]).toBe(k + 1);
    expect(rest.steps).toBe(20 - k);
    expect(rest.images).toBe((20 - k) * 100);
    expect(Array.from(rest.perStep!)).toEqual(Array.from(straight.perStep!.subarray(k * 4)));
    expect(same(weights(b), weights(a))).toBe(true);
    await expect(b.gan.trainEpoch(data, { ...opts, startStep: 20 })).rejects.toThrow('startStep must be in [0, 20) (the epoch has 20 steps), got 20');
  });

  it('disposing the dataset handle mid-epoch cannot crash the epoch', async () => {
    const { gan } = vanilla();
    const data = torch.randint(0, 256, [1000, 784], { dtype: 'uint8' });
    const p = gan.trainEpoch(data, { batchSize: 100 });
    data.dispose();
    const r = await p;
    expect(r.steps).toBe(10);
  });

  it('imperative reference step and BCE loss agree with the fused step on a sigmoid D', () => {
    const a = vanilla(11);
    const x = torch.rand([8, 784]);
    const z = torch.randn([8, 100]);
    const zg = torch.randn([8, 100]);
    torch.manualSeed(2);
    const s = a.gan.step(x, { zD: z, zG: zg });
    const b = vanilla(11);
    torch.manualSeed(2);
    const t = imperativeStep(b.G, b.D, b.optG, b.optD, b.p.step, x, { zD: z, zG: zg });
    expect(t.dLoss).toBeCloseTo(s.dLoss, 6);
    expect(t.gLoss).toBeCloseTo(s.gLoss, 6);
    expect(new BCELoss().forward(torch.full([2, 1], 0.5), torch.ones([2, 1])).item()).toBeCloseTo(Math.log(2), 6);
  });
});
