/**
 * The GAN step written imperatively on the facade, op for op as a PyTorch script would (and in the
 * same order as the fused native step, recipes included: test/parity/README.md). It is the reference the
 * fused step is tested against, the "imperative loop" of the benchmark, and a readable port of the seeds'
 * training loops.
 */
import { type Module } from '../nn/module';
import { type Optimizer } from '../optim/optimizer';
import { describeValue } from '../tensor/dtype';
import { scope } from '../tensor/scope';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { drawLabels, withOneHot } from './condition';
import { type StepResult } from './gan-step';
import { noise as drawNoise } from './noise';
import { diffAugment } from './recipes/diff-augment';
import { r1Penalty, wganGpPenalty } from './recipes/losses';
import { type GanStepSpec, LOSSES } from './step-spec';

/** What imperativeStep may be given besides the real batch: labels, noise, and the batch's index in the epoch. */
export interface ImperativeInputs {
  labels?: Tensor;
  zD?: Tensor;
  yD?: Tensor;
  zG?: Tensor;
  yG?: Tensor;
  /** Which updates are due (spec.dSteps, a lazy penalty's every); default 0: all of them. */
  batchIndex?: number;
}

/**
 * One D update and, where spec.dSteps makes it due, one G update (else gLoss is NaN: G did not update).
 * spec.ema is GanStep's (here an optim.swaUtils.AveragedModel does that job).
 */
export function imperativeStep(
  G: Module,
  D: Module,
  optG: Optimizer,
  optD: Optimizer,
  spec: GanStepSpec,
  real: Tensor,
  noise: ImperativeInputs = {},
): StepResult {
  return scope(() => {
    const n = real.shape[0];
    const device = real.device;
    const classes = spec.conditioning?.classes ?? 0;
    if (classes && !noise.labels) throw new Error(`imperativeStep: this conditional GAN (${classes} classes) needs the real batch's labels`);
    if (spec.ema) throw new Error('imperativeStep: spec.ema is kept by GanStep; on the facade, update an optim.swaUtils.AveragedModel after optG.step()');
    // Conditional models see [input, one-hot label] (step-spec.ts's ConditioningSpec).
    const cond = (x: Tensor, y: Tensor | undefined) => (classes ? withOneHot(x, y!, classes) : x);
    const fakeLabels = (given?: Tensor) => (classes ? (given ?? drawLabels(classes, n, device)) : undefined);
    const lossFn = Object.hasOwn(LOSSES, spec.loss) ? LOSSES[spec.loss] : undefined;
    if (!lossFn) throw new TypeError(`imperativeStep: spec.loss: expected one of ${Object.keys(LOSSES).join(', ')}, got ${describeValue(spec.loss)}`);
    const prob = (out: Tensor) => torch.noGrad(() => lossFn.prob(out).item());
    const augment = (x: Tensor) => (spec.augment ? diffAugment(x, spec.augment) : x);
    const reuse = spec.gNoise === 'reuse';
    const retain = reuse && !spec.detachFakeForD;
    const i = noise.batchIndex ?? 0;
    const pen = spec.penalty && i % (spec.penalty.every ?? 1) === 0 ? spec.penalty : undefined;

    // Discriminator: real batch -> realLabel, fake batch -> fakeLabel; then the penalty, if due.
    optD.zeroGrad();
    const zD = noise.zD ?? drawNoise(spec.noise, n, { device });
    const yD = fakeLabels(noise.yD);
    const fake = spec.detachFakeForD && !reuse ? torch.noGrad(() => G.forward(cond(zD, yD))) : G.forward(cond(zD, yD));
    const realIn = pen?.type === 'r1' ? real.detach().requiresGrad_() : real;
    const dRealOut = D.forward(cond(augment(realIn), noise.labels));
    const lossReal = lossFn.real(dRealOut, spec.realLabel);
    const fakeIn = cond(augment(spec.detachFakeForD ? fake.detach() : fake), yD);
    const penalty = () => {
      if (!pen) return null;
      const every = pen.every ?? 1;
      if (pen.type === 'r1') return r1Penalty(dRealOut, realIn).mul((pen.weight / 2) * every);
      return wganGpPenalty((x) => D.forward(cond(x, noise.labels)), real, fake).mul(pen.weight * every);
    };
    let dLoss: number;
    let dFakeOut: Tensor;
    if (spec.separateDBackward) {
      lossReal.backward(null, { retainGraph: pen?.type === 'r1' });
      dFakeOut = D.forward(fakeIn);
      const p = penalty();
      const lossFake = p ? lossFn.fake(dFakeOut, spec.fakeLabel).add(p) : lossFn.fake(dFakeOut, spec.fakeLabel);
      lossFake.backward(null, { retainGraph: retain });
      dLoss = lossReal.add(lossFake).item();
    } else {
      dFakeOut = D.forward(fakeIn);
      const lossFake = lossFn.fake(dFakeOut, spec.fakeLabel);
      const sum = lossReal.add(lossFake);
      const reduced = spec.dLossReduction === 'mean' ? sum.div(2) : sum;
      const p = penalty();
      const total = p ? reduced.add(p) : reduced;
      total.backward(null, { retainGraph: retain });
      dLoss = total.item();
    }
    const dReal = prob(dRealOut);
    const dFake = prob(dFakeOut);
    optD.step();
    if (i % (spec.dSteps ?? 1) !== 0) return { dLoss, gLoss: Number.NaN, dReal, dFake };

    // Generator: flipped labels, on D's fake batch or on fresh noise.
    let fakeG = fake;
    let yG = yD;
    if (!reuse) {
      const zG = noise.zG ?? drawNoise(spec.noise, n, { device });
      yG = fakeLabels(noise.yG);
      fakeG = G.forward(cond(zG, yG));
    }
    optG.zeroGrad();
    const gLoss = lossFn.g(D.forward(cond(augment(fakeG), yG)));
    gLoss.backward();
    optG.step();
    return { dLoss, gLoss: gLoss.item(), dReal, dFake };
  });
}
