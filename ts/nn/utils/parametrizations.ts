/**
 * torch.nn.utils.parametrizations: spectralNorm. The same ops in the same order as PyTorch's
 * _SpectralNorm, so that after the same manualSeed u, v and the normalized weight are PyTorch's.
 */
import { callOp, type Tensor } from '../../tensor/tensor';
import * as torch from '../../tensor/torch';
import { describeValue, readOptions } from '../../util/options';
import { ConvTranspose2d } from '../conv';
import * as F from '../functional';
import { Module } from '../module';
import { type Parametrized, registerParametrization, tensorToParametrize } from './parametrize';

const mv = (m: Tensor, v: Tensor) => callOp('aten::mv', '', [m, v]) as Tensor;

/**
 * weight / sigma, sigma the largest singular value of the weight seen as a matrix (`dim` first, the rest
 * flattened), estimated by power iteration on the buffers `_u` and `_v` (PyTorch's _SpectralNorm). A 1-D
 * weight is normalized exactly and has no buffers.
 */
export class SpectralNorm extends Module {
  readonly dim: number;
  readonly eps: number;
  readonly nPowerIterations: number;

  /** Draws u and v from the default generator (N(0, 1), u first), normalizes them and runs 15 power iterations. */
  constructor(weight: Tensor, nPowerIterations: number, dim: number, eps: number) {
    super();
    const ndim = weight.ndim;
    this.dim = dim < 0 ? dim + ndim : dim;
    this.eps = eps;
    this.nPowerIterations = nPowerIterations;
    if (ndim > 1) {
      torch.scope(() =>
        torch.noGrad(() => {
          const mat = this.toMatrix(weight);
          const [h, w] = mat.shape;
          const o = { dtype: weight.dtype, device: weight.device };
          const u = torch.empty([h], o).normal_(0, 1);
          const v = torch.empty([w], o).normal_(0, 1);
          this.registerBuffer('_u', F.normalize(u, { dim: 0, eps }));
          this.registerBuffer('_v', F.normalize(v, { dim: 0, eps }));
          this.powerMethod(mat, 15);
        }),
      );
    }
  }
  get _u(): Tensor | undefined {
    return this._buffers.get('_u') ?? undefined;
  }
  get _v(): Tensor | undefined {
    return this._buffers.get('_v') ?? undefined;
  }

  /** The weight with `dim` moved first, flattened to [size(dim), rest]. */
  private toMatrix(weight: Tensor): Tensor {
    const w = this.dim === 0 ? weight : weight.permute(this.dim, ...[...Array(weight.ndim).keys()].filter((d) => d !== this.dim));
    return w.flatten(1);
  }

  /** u = normalize(W v), v = normalize(W^T u), n times, in place (in the buffers' own storage) and without grad. */
  private powerMethod(mat: Tensor, n: number): void {
    const [u, v] = [this._u!, this._v!];
    torch.scope(() =>
      torch.noGrad(() => {
        for (let i = 0; i < n; i++) {
          u.copy_(F.normalize(mv(mat, v), { dim: 0, eps: this.eps }));
          v.copy_(F.normalize(mv(mat.t(), u), { dim: 0, eps: this.eps }));
        }
      }),
    );
  }

  forward(weight: Tensor): Tensor {
    if (weight.ndim === 1) return F.normalize(weight, { dim: 0, eps: this.eps });
    return torch.scope(() => {
      const mat = this.toMatrix(weight);
      if (this.training) this.powerMethod(mat, this.nPowerIterations);
      // clones, so that a graph built by an earlier forward (D(real) before D(fake)) keeps the u and v it used
      const u = this._u!.clone();
      const v = this._v!.clone();
      const sigma = callOp('aten::vdot', '', [u, mv(mat, v)]) as Tensor;
      return weight.div(sigma);
    });
  }

  /** @internal What native/sequential.h's Layer::SpectralNorm reads (given by a spectral-normed Linear's or convolution's nativeFields()). */
  nativeFields() {
    return { u: this._u?._native ?? null, v: this._v?._native ?? null, nPowerIterations: this.nPowerIterations, eps: this.eps, dim: this.dim };
  }

  /** The weight is its own original: spectral norm keeps no inverse. */
  rightInverse(value: Tensor): Tensor {
    return value;
  }
}

export interface SpectralNormOptions {
  /** The tensor to normalize (default 'weight'). */
  name?: string;
  /** Power iterations per forward in training mode (default 1). */
  nPowerIterations?: number;
  /** Added stability in the normalizations (default 1e-12). */
  eps?: number;
  /** The weight's output dimension (default 0; 1 for ConvTranspose2d). */
  dim?: number;
}

const KEYS = ['name', 'nPowerIterations', 'eps', 'dim'] as const satisfies readonly (keyof SpectralNormOptions)[];

/**
 * Spectral normalization (Miyato et al. 2018) of `module[name]`, as
 * torch.nn.utils.parametrizations.spectral_norm: the tensor becomes `original / sigma`, recomputed at each
 * read; in training mode each read first runs `nPowerIterations` power iterations on `_u` and `_v`.
 * State-dict keys: `parametrizations.<name>.original`, `parametrizations.<name>.0._u` and `._v`.
 */
export function spectralNorm<M extends Module>(module: M, opts: SpectralNormOptions = {}): Parametrized<M> {
  const fn = 'spectralNorm';
  if (!(module instanceof Module)) throw new TypeError(`${fn}: expected an nn.Module, got ${describeValue(module)}`);
  const o = readOptions(fn, opts, KEYS, { optional: true });
  const name = o.stringOr('name', 'weight', 'the name of a parameter or buffer');
  const nPowerIterations = o.integerOr('nPowerIterations', 1, { min: 1 });
  const eps = o.numberOr('eps', 1e-12, { gt: 0 });
  const current = tensorToParametrize(fn, module, name);
  const ndim = current.ndim;
  if (ndim === 0) throw new RangeError(`${fn}: ${module.constructor.name}'s ${describeValue(name)} is a scalar; expected a tensor of 1 or more dimensions`);
  const dim = o.integerOr('dim', module instanceof ConvTranspose2d ? 1 : 0, { min: -ndim, max: ndim - 1 });
  return registerParametrization(module, name, new SpectralNorm(current, nPowerIterations, dim, eps));
}
