/**
 * The arithmetic of the quality metrics, on a classifier's features and logits, in float64:
 * Frechet distance (FID), Inception-style score, class histogram and coverage.
 *
 * Frechet distance of N(m1, S1) and N(m2, S2): |m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).
 * tr((S1 S2)^(1/2)) equals tr((R S2 R)^(1/2)) with R = S1^(1/2), and R S2 R is symmetric positive
 * semi-definite, so both square roots come from symmetric eigendecompositions (LibTorch's
 * linalg_eigh) with rounding-negative eigenvalues clamped to 0: no complex parts and no iteration that
 * can fail to converge, unlike scipy.linalg.sqrtm on the nonsymmetric product.
 */
import * as F from '../nn/functional';
import { callOp, type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';

/** Mean and covariance (unbiased, as numpy.cov) of features, as float64 arrays. */
export interface FeatureStats {
  n: number;
  dim: number;
  mean: Float64Array;
  /** dim x dim, row-major. */
  cov: Float64Array;
}

/** The mean and covariance of `features` ([n, dim], n >= 2), computed in float64. */
export function featureStats(features: Tensor): FeatureStats {
  if (features.ndim !== 2) throw new RangeError(`featureStats: expected features of shape [n, dim], got [${features.shape.join(', ')}]`);
  const [n, dim] = features.shape as [number, number];
  if (n < 2) throw new RangeError(`featureStats: a covariance needs n >= 2 samples, got ${n}`);
  return torch.scope(() => {
    const x = features.to('float64');
    const mean = x.mean(0);
    const xc = x.sub(mean);
    const cov = xc
      .t()
      .matmul(xc)
      .div(n - 1);
    return {
      n,
      dim,
      mean: mean.cpu().toTypedArray() as Float64Array,
      cov: cov.cpu().contiguous().toTypedArray() as Float64Array,
    };
  });
}

/** The Frechet distance between two Gaussians fitted to features (see the file comment). */
export function frechetDistance(a: FeatureStats, b: FeatureStats): number {
  if (a.dim !== b.dim) throw new RangeError(`frechetDistance: feature widths differ (${a.dim} vs ${b.dim})`);
  const d = a.dim;
  return torch.scope(() => {
    const m1 = torch.tensor(a.mean, [d]);
    const m2 = torch.tensor(b.mean, [d]);
    const s1 = torch.tensor(a.cov, [d, d]);
    const s2 = torch.tensor(b.cov, [d, d]);
    const [w, v] = callOp('aten::linalg_eigh', '', [s1, 'L']) as Tensor[];
    const root1 = v!.mul(w!.clamp(0).sqrt().unsqueeze(0)).matmul(v!.t());
    const m = root1.matmul(s2).matmul(root1);
    const sym = m.add(m.t()).div(2); // exactly symmetric for eigvalsh
    const ev = callOp('aten::linalg_eigvalsh', '', [sym, 'L']) as Tensor;
    const trSqrt = ev.clamp(0).sqrt().sum().item();
    const diff = m1.sub(m2);
    const dist = diff.mul(diff).sum().item() + trace(s1) + trace(s2) - 2 * trSqrt;
    return Math.max(0, dist); // rounding can leave -1e-12 for identical inputs
  });
}

function trace(m: Tensor): number {
  return (callOp('aten::trace', '', [m]) as Tensor).item();
}

/**
 * The Inception-style score exp(E_x KL(p(y|x) || p(y))) of class logits ([n, classes]), over all n
 * samples as one split: 1 for constant predictions, `classes` for confident, evenly spread ones.
 */
export function inceptionScore(logits: Tensor): number {
  return torch.scope(() => {
    const p = F.softmax(logits.to('float64'), 1);
    const py = p.mean(0).unsqueeze(0);
    // xlogy: 0 log 0 = 0 for probabilities that underflow
    const plogp = callOp('aten::xlogy', 'Tensor', [p, p]) as Tensor;
    const kl = plogp.sub(p.mul(py.log())).sum(1).mean().item();
    return Math.exp(kl);
  });
}

/** How many of the logits' rows predict each class (argmax). */
export function classHistogram(logits: Tensor): number[] {
  const classes = logits.shape[1]!;
  return torch.scope(() => {
    const counts = callOp('aten::bincount', '', [logits.argmax(1), null, classes]) as Tensor;
    return Array.from(counts.toTypedArray() as BigInt64Array, Number);
  });
}

/**
 * The rarest class's share of the samples relative to an even share: 1 when every class is drawn
 * equally often, 0 when one is never drawn (a collapsed generator).
 */
export function coverage(histogram: readonly number[]): number {
  const n = histogram.reduce((a, b) => a + b, 0);
  if (n === 0) return 0;
  return (Math.min(...histogram) * histogram.length) / n;
}

/** The share of rows of `logits` whose argmax equals `labels` (int64, [n]). */
export function labelAccuracy(logits: Tensor, labels: Tensor): number {
  return torch.scope(() => logits.argmax(1).eq(labels.to(logits.device)).to('float64').mean().item());
}
