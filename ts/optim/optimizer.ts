/** optim.Adam and optim.SGD over the native optimizers (which follow PyTorch's update rules exactly). */
import {
  loadAddon,
  type NativeAdamOptions,
  type NativeAdamState,
  type NativeOptimizer,
  type NativeSGDOptions,
  type NativeSGDState,
  type NativeTensor,
} from '../native/addon';
import { Tensor } from '../tensor/tensor';
import { checkNumber, readOptions } from '../util/options';

export interface ParamGroup {
  lr: number;
  [k: string]: unknown;
}

/** Serialized like PyTorch's optimizer.state_dict(): per-parameter state and one param group. */
export interface OptimizerStateDict {
  state: Record<number, Record<string, Tensor | number>>;
  param_groups: (Record<string, unknown> & { params: number[] })[];
}

function checkParams(params: unknown, who: string): Tensor[] {
  if (!Array.isArray(params) || params.length === 0) throw new TypeError(`${who}: params must be a non-empty array of Tensors (e.g. model.parameters())`);
  params.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new TypeError(`${who}: params[${i}] is not a Tensor`);
  });
  return params as Tensor[];
}

const SNAKE: Record<string, string> = { expAvg: 'exp_avg', expAvgSq: 'exp_avg_sq', maxExpAvgSq: 'max_exp_avg_sq', momentumBuffer: 'momentum_buffer' };

type StateEntry = Record<string, Tensor | number>;

/**
 * A state-dict value as the native setState reads it: a Tensor's handle, anything else as it is. The
 * native reader checks each field's type and names a wrong one ("Adam.setState: expAvg: expected a
 * Tensor, got 3"), so the cast only defers that check to the one place that does it.
 */
function handle(v: Tensor | number | undefined): NativeTensor {
  return (v instanceof Tensor ? v._native : v) as NativeTensor;
}

export abstract class Optimizer<S extends NativeAdamState | NativeSGDState = NativeAdamState | NativeSGDState> {
  /** @internal */ readonly _native: NativeOptimizer<S>;
  readonly params: Tensor[];
  protected abstract readonly hyper: Record<string, unknown>;
  /** One state_dict()['state'] entry (snake_case, as PyTorch's) in the native setState's form. */
  protected abstract nativeState(entry: StateEntry): S;

  protected constructor(params: Tensor[], native: NativeOptimizer<S>) {
    this.params = params;
    this._native = native;
  }
  /** One group, as most scripts use; setting `paramGroups[0].lr` changes the learning rate. */
  get paramGroups(): ParamGroup[] {
    const native = this._native;
    const hyper = this.hyper;
    return [
      new Proxy({ ...hyper, lr: native.getLr() } as ParamGroup, {
        set(target, key, value) {
          if (key === 'lr') native.setLr(value);
          (target as unknown as Record<string | symbol, unknown>)[key] = value;
          return true;
        },
      }),
    ];
  }
  step(): void {
    this._native.step();
  }
  /** Sets every gradient to null (PyTorch's default set_to_none=True). */
  zeroGrad(): void {
    this._native.zeroGrad();
  }
  stateDict(): OptimizerStateDict {
    const state: OptimizerStateDict['state'] = {};
    this._native.getState().forEach((s, i) => {
      if (!s) return;
      const entry: StateEntry = {};
      for (const [k, v] of Object.entries(s) as [string, NativeTensor | number | null | undefined][]) {
        if (v === null || v === undefined) continue;
        entry[SNAKE[k] ?? k] = typeof v === 'number' ? v : new Tensor(v);
      }
      state[i] = entry;
    });
    return { state, param_groups: [{ ...this.hyper, lr: this._native.getLr(), params: this.params.map((_, i) => i) }] };
  }
  loadStateDict(sd: OptimizerStateDict): void {
    const group = sd?.param_groups?.[0];
    if (!group || !Array.isArray(group.params)) throw new Error('optimizer loadStateDict: missing param_groups[0].params');
    if (group.params.length !== this.params.length) {
      throw new Error(`optimizer loadStateDict: the state has ${group.params.length} parameters, this optimizer has ${this.params.length}`);
    }
    // Hyperparameters other than lr live in the native optimizer: they must already agree.
    for (const [k, v] of Object.entries(this.hyper)) {
      if (k in group && JSON.stringify(group[k]) !== JSON.stringify(v)) {
        throw new Error(
          `optimizer loadStateDict: ${k}: the state has ${JSON.stringify(group[k])}, this optimizer ${JSON.stringify(v)}; construct the optimizer with the checkpoint's hyperparameters`,
        );
      }
    }
    if (typeof group.lr === 'number') this._native.setLr(group.lr);
    for (let i = 0; i < this.params.length; i++) {
      const s = sd.state[i];
      if (!s) {
        this._native.setState(i, null);
        continue;
      }
      this._native.setState(i, this.nativeState(s));
    }
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
  /**
   * As PyTorch's fused=True: one native pass per parameter (float32 on CPU) instead of the
   * single-tensor update's ~8 tensor ops. Same arithmetic; equal to the default up to rounding.
   */
  fused?: boolean;
}

const ADAM_KEYS = ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad', 'maximize', 'fused'] as const satisfies readonly (keyof AdamOptions)[];

export class Adam extends Optimizer<NativeAdamState> {
  protected readonly hyper: Record<string, unknown>;
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    const ps = checkParams(params, 'Adam');
    // types here; ranges (lr >= 0, 0 <= beta < 1, ...) in the native constructor, worded as PyTorch's
    const r = readOptions('Adam', opts, ADAM_KEYS, { optional: true });
    const betas = r.get('betas') ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) throw r.error('betas', 'two numbers [beta1, beta2]');
    const o: Required<NativeAdamOptions> = {
      lr: r.numberOr('lr', 1e-3),
      beta1: checkNumber(betas[0], 'Adam: betas[0]'),
      beta2: checkNumber(betas[1], 'Adam: betas[1]'),
      eps: r.numberOr('eps', 1e-8),
      weightDecay: r.numberOr('weightDecay', 0),
      amsgrad: r.booleanOr('amsgrad', false),
      maximize: r.booleanOr('maximize', false),
      fused: r.booleanOr('fused', false),
    };
    super(
      ps,
      new (loadAddon().NativeAdam)(
        ps.map((p) => p._native),
        o,
      ),
    );
    this.hyper = { betas: [o.beta1, o.beta2], eps: o.eps, weight_decay: o.weightDecay, amsgrad: o.amsgrad, maximize: o.maximize, fused: o.fused };
  }
  protected nativeState(e: StateEntry): NativeAdamState {
    const st: NativeAdamState = { step: e.step as number, expAvg: handle(e.exp_avg), expAvgSq: handle(e.exp_avg_sq) };
    if (e.max_exp_avg_sq !== undefined) st.maxExpAvgSq = handle(e.max_exp_avg_sq);
    return st;
  }
}

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
}

const SGD_KEYS = ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov', 'maximize'] as const satisfies readonly (keyof SGDOptions)[];

export class SGD extends Optimizer<NativeSGDState> {
  protected readonly hyper: Record<string, unknown>;
  constructor(params: Tensor[], opts: SGDOptions = {}) {
    const ps = checkParams(params, 'SGD');
    const r = readOptions('SGD', opts, SGD_KEYS, { optional: true });
    const o: Required<NativeSGDOptions> = {
      lr: r.numberOr('lr', 1e-3),
      momentum: r.numberOr('momentum', 0),
      dampening: r.numberOr('dampening', 0),
      weightDecay: r.numberOr('weightDecay', 0),
      nesterov: r.booleanOr('nesterov', false),
      maximize: r.booleanOr('maximize', false),
    };
    super(
      ps,
      new (loadAddon().NativeSGD)(
        ps.map((p) => p._native),
        o,
      ),
    );
    this.hyper = { momentum: o.momentum, dampening: o.dampening, weight_decay: o.weightDecay, nesterov: o.nesterov, maximize: o.maximize };
  }
  protected nativeState(e: StateEntry): NativeSGDState {
    return e.momentum_buffer === undefined ? {} : { momentumBuffer: handle(e.momentum_buffer) };
  }
}
