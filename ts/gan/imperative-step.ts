/**
 * The GAN step written imperatively on the facade, op for op as a PyTorch script would (and in the
 * same order as the fused native step). It is the reference the fused step is tested against, the
 * "imperative loop" of the benchmark, and a readable port of the seeds' training loops.
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
import { type GanStepSpec, LOSSES } from './step-spec';

export function imperativeStep(
  G: Module,
  D: Module,
  optG: Optimizer,
  optD: Optimizer,
  spec: GanStepSpec,
  real: Tensor,
  noise: { labels?: Tensor; zD?: Tensor; yD?: Tensor; zG?: Tensor; yG?: Tensor } = {},
): StepResult {
  return scope(() => {
    const n = real.shape[0];
    const device = real.device;
    const classes = spec.conditioning?.classes ?? 0;
    if (classes && !noise.labels) throw new Error(`imperativeStep: this conditional GAN (${classes} classes) needs the real batch's labels`);
    // Conditional models see [input, one-hot label] (step-spec.ts's ConditioningSpec).
    const cond = (x: Tensor, y: Tensor | undefined) => (classes ? withOneHot(x, y!, classes) : x);
    const fakeLabels = (given?: Tensor) => (classes ? (given ?? drawLabels(classes, n, device)) : undefined);
    const lossFn = Object.hasOwn(LOSSES, spec.loss) ? LOSSES[spec.loss] : undefined;
    if (!lossFn) throw new TypeError(`imperativeStep: spec.loss: expected one of ${Object.keys(LOSSES).join(', ')}, got ${describeValue(spec.loss)}`);
    const loss = (out: Tensor, label: number) => lossFn.loss(out, torch.fullLike(out, label));
    const prob = (out: Tensor) => torch.noGrad(() => lossFn.prob(out).item());
    const reuse = spec.gNoise === 'reuse';
    const retain = reuse && !spec.detachFakeForD;

    // Discriminator: real batch -> realLabel, fake batch -> fakeLabel.
    optD.zeroGrad();
    const zD = noise.zD ?? drawNoise(spec.noise, n, { device });
    const yD = fakeLabels(noise.yD);
    const fake = spec.detachFakeForD && !reuse ? torch.noGrad(() => G.forward(cond(zD, yD))) : G.forward(cond(zD, yD));
    const dRealOut = D.forward(cond(real, noise.labels));
    const lossReal = loss(dRealOut, spec.realLabel);
    const fakeIn = cond(spec.detachFakeForD ? fake.detach() : fake, yD);
    let dLoss: number;
    let dFakeOut: Tensor;
    if (spec.separateDBackward) {
      lossReal.backward();
      dFakeOut = D.forward(fakeIn);
      const lossFake = loss(dFakeOut, spec.fakeLabel);
      lossFake.backward(null, { retainGraph: retain });
      dLoss = lossReal.add(lossFake).item();
    } else {
      dFakeOut = D.forward(fakeIn);
      const lossFake = loss(dFakeOut, spec.fakeLabel);
      const sum = lossReal.add(lossFake);
      const total = spec.dLossReduction === 'mean' ? sum.div(2) : sum;
      total.backward(null, { retainGraph: retain });
      dLoss = total.item();
    }
    const dReal = prob(dRealOut);
    const dFake = prob(dFakeOut);
    optD.step();

    // Generator: flipped labels, on D's fake batch or on fresh noise.
    let fakeG = fake;
    let yG = yD;
    if (!reuse) {
      const zG = noise.zG ?? drawNoise(spec.noise, n, { device });
      yG = fakeLabels(noise.yG);
      fakeG = G.forward(cond(zG, yG));
    }
    optG.zeroGrad();
    const gLoss = loss(D.forward(cond(fakeG, yG)), 1.0);
    gLoss.backward();
    optG.step();
    return { dLoss, gLoss: gLoss.item(), dReal, dFake };
  });
}
