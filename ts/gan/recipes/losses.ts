/**
 * GAN losses and gradient penalties as functions, as the papers and PyTorch-StudioGAN write them. The D
 * losses take D's outputs (logits, or critic values) on a real and a fake batch, the G losses D's outputs
 * on fakes; each term is a mean over its batch (over every element of the output), so real and fake
 * batches may differ in size. Exported as `ganLosses`.
 *
 * The penalties return the unweighted term; the caller applies the weight, as the papers write it:
 * `lambda * wganGpPenalty(...)` (lambda = 10 in Gulrajani et al.) and `(gamma / 2) * r1Penalty(...)`
 * (StyleGAN2's r1_gamma).
 */
import * as F from '../../nn/functional';
import { Module } from '../../nn/module';
import { Tensor } from '../../tensor/tensor';
import * as torch from '../../tensor/torch';
import { typeError } from '../../util/options';

/** D as a penalty calls it: a module, or a function of the batch (a conditional D closing over its labels). */
export type Critic = Module | ((x: Tensor) => Tensor);

function checkTensor(fn: string, name: string, value: unknown): Tensor {
  if (!(value instanceof Tensor)) throw typeError(`${fn}: ${name}`, 'a Tensor', value);
  if (value.isDisposed) throw new Error(`${fn}: ${name} was disposed and cannot be used again`);
  return value;
}

/** Non-saturating loss of D on logits: softplus(-real).mean() + softplus(fake).mean() (BCE with logits, labels 1 and 0). */
export function nonSaturatingD(real: Tensor, fake: Tensor): Tensor {
  checkTensor('nonSaturatingD', 'real', real);
  checkTensor('nonSaturatingD', 'fake', fake);
  return F.softplus(real.neg()).mean().add(F.softplus(fake).mean());
}

/** Non-saturating loss of G on logits: softplus(-fake).mean(). */
export function nonSaturatingG(fake: Tensor): Tensor {
  checkTensor('nonSaturatingG', 'fake', fake);
  return F.softplus(fake.neg()).mean();
}

/** Hinge loss of D: relu(1 - real).mean() + relu(1 + fake).mean(). */
export function hingeD(real: Tensor, fake: Tensor): Tensor {
  checkTensor('hingeD', 'real', real);
  checkTensor('hingeD', 'fake', fake);
  return F.relu(real.neg().add(1))
    .mean()
    .add(F.relu(fake.add(1)).mean());
}

/** Hinge loss of G: -fake.mean(). */
export function hingeG(fake: Tensor): Tensor {
  checkTensor('hingeG', 'fake', fake);
  return fake.mean().neg();
}

/** Wasserstein loss of the critic: fake.mean() - real.mean(). */
export function wassersteinD(real: Tensor, fake: Tensor): Tensor {
  checkTensor('wassersteinD', 'real', real);
  checkTensor('wassersteinD', 'fake', fake);
  return fake.mean().sub(real.mean());
}

/** Wasserstein loss of G: -fake.mean(). */
export function wassersteinG(fake: Tensor): Tensor {
  checkTensor('wassersteinG', 'fake', fake);
  return fake.mean().neg();
}

/** Least-squares loss of D (LSGAN, targets 1 and 0): 0.5 * ((real - 1)^2).mean() + 0.5 * (fake^2).mean(). */
export function leastSquaresD(real: Tensor, fake: Tensor): Tensor {
  checkTensor('leastSquaresD', 'real', real);
  checkTensor('leastSquaresD', 'fake', fake);
  return real.sub(1).pow(2).mean().mul(0.5).add(fake.pow(2).mean().mul(0.5));
}

/** Least-squares loss of G: 0.5 * ((fake - 1)^2).mean(). */
export function leastSquaresG(fake: Tensor): Tensor {
  checkTensor('leastSquaresG', 'fake', fake);
  return fake.sub(1).pow(2).mean().mul(0.5);
}

/** d(x), and a clear error where its result cannot be differentiated with respect to x. */
function critique(fn: string, d: Critic, x: Tensor): Tensor {
  const out = d instanceof Module ? d.call(x) : d(x);
  if (!(out instanceof Tensor)) throw typeError(`${fn}: d(x)`, 'a Tensor', out);
  if (!out.requiresGrad)
    throw new Error(`${fn}: D's output does not require grad, so it has no gradient with respect to its input (was D called under noGrad?)`);
  return out;
}

/**
 * The WGAN-GP penalty (Gulrajani et al. 2017; StudioGAN's cal_grad_penalty): interpolates
 * x = eps * real + (1 - eps) * fake with eps ~ U[0, 1) per sample (`torch.rand([N, 1, ...])` from the
 * global generator of real's device: after the same manualSeed, PyTorch's draws), then
 * ((||d D(x) / d x||_2 - 1)^2).mean(), the norm over all non-batch dims. real and fake are detached (the
 * interpolates are a leaf), so the penalty's gradient reaches D's parameters only. Unweighted.
 */
export function wganGpPenalty(d: Critic, real: Tensor, fake: Tensor): Tensor {
  const fn = 'wganGpPenalty';
  if (!(d instanceof Module) && typeof d !== 'function') throw typeError(`${fn}: d`, 'a Module or a function (x: Tensor) => Tensor', d);
  checkTensor(fn, 'real', real);
  checkTensor(fn, 'fake', fake);
  const shape = real.shape;
  if (shape.length < 2) throw new Error(`${fn}: real must be a batch [N, ...] of at least 2 dims, got shape [${shape.join(', ')}]`);
  if (fake.shape.join() !== shape.join())
    throw new Error(`${fn}: real and fake must have the same shape, got [${shape.join(', ')}] and [${fake.shape.join(', ')}]`);
  const n = shape[0];
  const eps = torch.rand([n, ...shape.slice(1).map(() => 1)], { dtype: real.dtype, device: real.device });
  const x = eps.mul(real.detach()).add(eps.neg().add(1).mul(fake.detach())).requiresGrad_();
  const out = critique(fn, d, x);
  const [g] = torch.autograd.grad(out, x, { gradOutputs: torch.onesLike(out), createGraph: true });
  return g.reshape([n, -1]).norm(2, 1).sub(1).pow(2).mean();
}

/**
 * The R1 penalty (Mescheder et al. 2018; StyleGAN2's loss_Dr1 before its gamma / 2): the squared gradient
 * of D's output on reals with respect to the reals, summed per sample and averaged over the batch.
 * `realInput` is the batch D was called on, requiring grad (`real.detach().requiresGrad_()`), and
 * `realOutput` D's output on it, so that one forward serves both the D loss and the penalty. Unweighted.
 */
export function r1Penalty(realOutput: Tensor, realInput: Tensor): Tensor {
  const fn = 'r1Penalty';
  checkTensor(fn, 'realOutput', realOutput);
  checkTensor(fn, 'realInput', realInput);
  if (!realInput.requiresGrad)
    throw new Error(`${fn}: realInput does not require grad: call D on real.detach().requiresGrad_() and pass that tensor with D's output on it`);
  if (!realOutput.requiresGrad) throw new Error(`${fn}: realOutput does not require grad (was D called under noGrad?)`);
  if (realInput.ndim < 2) throw new Error(`${fn}: realInput must be a batch [N, ...] of at least 2 dims, got shape [${realInput.shape.join(', ')}]`);
  const [g] = torch.autograd.grad(realOutput.sum(), realInput, { createGraph: true, allowUnused: true });
  if (g === null) throw new Error(`${fn}: realOutput does not depend on realInput: pass D's output on that very tensor`);
  const dims = realInput.shape.slice(1).map((_, i) => i + 1);
  return g.pow(2).sum(dims).mean();
}
