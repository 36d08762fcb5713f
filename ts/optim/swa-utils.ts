/**
 * torch.optim.swa_utils (PyTorch 2.15): `AveragedModel`, a copy of a module whose parameters (and, with
 * useBuffers, buffers) hold a running average of another's, for SWA and for an EMA of G's weights; and
 * the averaging functions `getEmaMultiAvgFn`, `getEmaAvgFn`, `getSwaMultiAvgFn`, `getSwaAvgFn`.
 * AveragedModel is a Module (its state dict, modes, `to` and `dispose` are Module's): optim/ sits above
 * nn/, as PyTorch's torch.optim.swa_utils imports torch.nn.
 */
import { type Device, isFloatingDtype } from '../tensor/dtype';
import { scope } from '../tensor/scope';
import { callOp, type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { rangeError, readOptions, typeError } from '../util/options';
import { deepCopyModule } from '../nn/deep-copy';
import { Module } from '../nn/module';

/** An averaging function of one tensor: the new average of `averaged` and `current`, `numAveraged` models averaged so far (an int64 scalar tensor). */
export type AvgFn = (averaged: Tensor, current: Tensor, numAveraged: Tensor) => Tensor;
/** An averaging function of a group of tensors (one device and dtype), updating `averaged` in place. */
export type MultiAvgFn = (averaged: Tensor[], current: Tensor[], numAveraged: Tensor) => void;

export interface AveragedModelOptions {
  /** Where the averaged copy lives (default: where the model's tensors are). */
  device?: Device;
  avgFn?: AvgFn;
  multiAvgFn?: MultiAvgFn;
  /** Average the buffers too (BatchNorm's running statistics); otherwise they are copied from the model at each update. */
  useBuffers?: boolean;
}

const OPTION_KEYS = ['device', 'avgFn', 'multiAvgFn', 'useBuffers'] as const;

/** An EMA decay: a number strictly between 0 and 1 (0 would copy, 1 never move; PyTorch takes both). */
function checkDecay(decay: unknown, label: string): number {
  const form = 'a number between 0 and 1, exclusive (such as 0.999)';
  if (typeof decay !== 'number') throw typeError(label, form, decay);
  if (!(decay > 0 && decay < 1)) throw rangeError(label, form, decay);
  return decay;
}

/**
 * The EMA of a group of tensors, in place: ema = decay * ema + (1 - decay) * current. Floating tensors by
 * torch._foreach_lerp_ (weight 1 - decay), others (BatchNorm's num_batches_tracked) by the formula, cast
 * back to their dtype, as PyTorch's get_ema_multi_avg_fn.
 */
export function getEmaMultiAvgFn(decay = 0.999): MultiAvgFn {
  const d = checkDecay(decay, 'getEmaMultiAvgFn: decay');
  return (ema, current) =>
    torch.noGrad(() =>
      scope(() => {
        if (ema.length === 0) return;
        if (isFloatingDtype(ema[0].dtype)) callOp('aten::_foreach_lerp_', 'Scalar', [ema, current, 1 - d]);
        else for (const [i, e] of ema.entries()) e.copy_(e.mul(d).add(current[i].mul(1 - d)));
      }),
    );
}

/** The EMA of one tensor: decay * averaged + (1 - decay) * current, as PyTorch's get_ema_avg_fn. */
export function getEmaAvgFn(decay = 0.999): AvgFn {
  const d = checkDecay(decay, 'getEmaAvgFn: decay');
  return (averaged, current) => torch.noGrad(() => scope(() => averaged.mul(d).add(current.mul(1 - d))));
}

/**
 * The equal-weight average of a group of tensors, in place, as PyTorch's get_swa_multi_avg_fn: floating
 * tensors by torch._foreach_lerp_ with weight 1 / (n + 1) (a float32 value, as PyTorch computes it),
 * others by torch._foreach_addcdiv_ (which LibTorch refuses for integer tensors, as in PyTorch).
 */
export function getSwaMultiAvgFn(): MultiAvgFn {
  return (averaged, current, numAveraged) =>
    torch.noGrad(() =>
      scope(() => {
        if (averaged.length === 0) return;
        const n1 = numAveraged.add(1);
        if (isFloatingDtype(averaged[0].dtype)) {
          const weight = (callOp('aten::reciprocal', '', [n1]) as Tensor).item();
          callOp('aten::_foreach_lerp_', 'Scalar', [averaged, current, weight]);
        } else {
          const diffs = callOp('aten::_foreach_sub', 'List', [current, averaged]) as Tensor[];
          callOp('aten::_foreach_addcdiv_', 'Scalar', [averaged, diffs, averaged.map(() => n1), 1]);
        }
      }),
    );
}

/** The equal-weight average of one tensor: averaged + (current - averaged) / (n + 1), as PyTorch's get_swa_avg_fn. */
export function getSwaAvgFn(): AvgFn {
  return (averaged, current, numAveraged) => torch.noGrad(() => scope(() => averaged.add(current.sub(averaged).div(numAveraged.add(1)))));
}

/** Each tensor once, in order (PyTorch's parameters() and buffers() skip a tensor seen before). */
const unique = (ts: Tensor[]) => [...new Set(ts)];

/**
 * torch.optim.swa_utils.AveragedModel: a deep copy of `model` (on `device` if given) whose parameters
 * `updateParameters(model)` averages with the model's: the first call copies them, later ones apply
 * `multiAvgFn` (per group of one device and dtype) or `avgFn` (per tensor), by default the equal-weight
 * average (SWA); `getEmaMultiAvgFn(decay)` makes it an EMA. With `useBuffers` the buffers are averaged
 * the same way, otherwise copied from the model at each update. `n_averaged` (an int64 buffer) counts
 * the updates. Its state dict is PyTorch's: `n_averaged`, then `module.<name>`. Its tensors are its own:
 * `dispose()` frees them; an update frees every temporary it makes.
 */
export class AveragedModel<M extends Module = Module> extends Module {
  readonly module: M;
  readonly avgFn: AvgFn | null;
  readonly multiAvgFn: MultiAvgFn | null;
  readonly useBuffers: boolean;

  constructor(model: M, options: AveragedModelOptions = {}) {
    super();
    const who = 'AveragedModel';
    if (!(model instanceof Module)) throw typeError(`${who}: model`, 'an nn.Module', model);
    const r = readOptions(who, options, OPTION_KEYS, { optional: true });
    const fnOption = <F>(key: 'avgFn' | 'multiAvgFn', form: string): F | null => {
      const f = r.get(key);
      if (f !== undefined && f !== null && typeof f !== 'function') throw r.error(key, form);
      return (f ?? null) as F | null;
    };
    this.avgFn = fnOption<AvgFn>('avgFn', 'a function (averaged, current, numAveraged) => Tensor');
    this.multiAvgFn = fnOption<MultiAvgFn>('multiAvgFn', 'a function (averaged[], current[], numAveraged) => void');
    if (this.avgFn && this.multiAvgFn) throw new TypeError(`${who}: give avgFn or multiAvgFn, not both`);
    this.useBuffers = r.booleanOr('useBuffers', false);
    const device = r.deviceOr('device', undefined);
    const copy = deepCopyModule(model, who);
    try {
      if (device !== undefined) copy.to(device);
      this.module = copy;
      this.registerModule('module', copy);
      this.registerBuffer('n_averaged', torch.tensor(0, { dtype: 'int64', device }));
    } catch (e) {
      copy.dispose();
      throw e;
    }
  }

  /** The number of models averaged so far (the `n_averaged` buffer, an int64 scalar tensor). */
  get nAveraged(): Tensor {
    return this._buffers.get('n_averaged')!;
  }

  forward(input: Tensor): Tensor {
    return this.module.call(input);
  }

  /** Averages `model`'s parameters (and buffers, with useBuffers) into this copy's; see the class. */
  updateParameters(model: Module): void {
    const who = 'AveragedModel.updateParameters';
    if (!(model instanceof Module)) throw typeError(`${who}: model`, 'an nn.Module', model);
    const names = new Map([...model.namedParameters(), ...model.namedBuffers()].map(([n, t]) => [t, n]));
    const params = (m: Module) => unique(m.namedParameters().map(([, t]) => t));
    const buffers = (m: Module) => unique(m.namedBuffers().map(([, t]) => t));
    const [myParams, myBuffers, theirParams, theirBuffers] = [params(this.module), buffers(this.module), params(model), buffers(model)];
    // PyTorch zips the lists and copies whatever pairs up (broadcasting, too); another model is a mistake worth naming
    if (myParams.length !== theirParams.length || myBuffers.length !== theirBuffers.length)
      throw new Error(
        `${who}: the model has ${theirParams.length} parameters and ${theirBuffers.length} buffers, ` +
          `the averaged copy ${myParams.length} and ${myBuffers.length}: pass the model it was made from`,
      );
    const mineAll = [...myParams, ...myBuffers];
    for (const [i, theirs] of [...theirParams, ...theirBuffers].entries()) {
      if (theirs.isDisposed) throw new Error(`${who}: the model's tensor ${names.get(theirs)} was disposed`);
      if (mineAll[i].shape.join() !== theirs.shape.join())
        throw new Error(`${who}: ${names.get(theirs)} has shape [${theirs.shape.join(', ')}], the averaged copy's [${mineAll[i].shape.join(', ')}]`);
    }
    // parameters, then (with useBuffers) buffers: PyTorch's chain(parameters(), buffers())
    const mine = this.useBuffers ? mineAll : myParams;
    const theirs = this.useBuffers ? [...theirParams, ...theirBuffers] : theirParams;
    torch.noGrad(() =>
      scope(() => {
        const n = this.nAveraged;
        const averaged = mine.map((t) => t.detach());
        const current = theirs.map((t, i) => t.detach().to(mine[i].device));
        const first = n.item() === 0;
        if (first) for (const [i, a] of averaged.entries()) a.copy_(current[i]);
        else if (this.avgFn === null) {
          // per device and dtype, as PyTorch's _group_tensors_by_device_and_dtype
          const groups = new Map<string, number[]>();
          averaged.forEach((a, i) => {
            const key = `${a.device} ${a.dtype}`;
            groups.set(key, [...(groups.get(key) ?? []), i]);
          });
          for (const idx of groups.values()) {
            const device = averaged[idx[0]].device;
            const a = idx.map((i) => averaged[i]);
            const c = idx.map((i) => current[i]);
            if (this.multiAvgFn) this.multiAvgFn(a, c, n.to(device));
            // PyTorch's default: the foreach kernels where it has them (CUDA), else tensor by tensor
            else if (device.startsWith('cuda')) getSwaMultiAvgFn()(a, c, n.to(device));
            else {
              const swa = getSwaAvgFn();
              const nOn = n.to(device);
              for (const [j, t] of a.entries()) t.copy_(swa(t, c[j], nOn));
            }
          }
        } else {
          const avgFn = this.avgFn;
          for (const [i, a] of averaged.entries()) a.copy_(avgFn(a.detach(), current[i], n.to(a.device)));
        }
        if (!this.useBuffers) for (const [i, b] of myBuffers.entries()) b.detach().copy_(theirBuffers[i].detach().to(b.device));
        n.add_(1);
      }),
    );
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  override extraRepr(): string {
    return `useBuffers=${this.useBuffers}`;
  }
}
