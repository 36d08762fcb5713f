/**
 * DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the
 * authors' PyTorch code (mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py) op for op, computed by
 * the addon (native/diff_augment.h), the one implementation the fused step shares. Every augmentation is
 * tensor code recorded by autograd, so gradients flow through it to G; each draws from the global
 * generator with the same calls, shapes and order as theirs (torch.rand for color, torch.randint for
 * translation and cutout), so after the same manualSeed the output equals theirs.
 */
import { loadAddon } from '../../native/addon';
import { Tensor } from '../../tensor/tensor';
import * as torch from '../../tensor/torch';
import { isFloatingDtype } from '../../tensor/dtype';
import { choicesForm, readOptions, typeError } from '../../util/options';
import { suggest } from '../../util/suggest';

/** The policy names DiffAugment knows, in the authors' order (their AUGMENT_FNS; native/diff_augment.h's enum). */
export const DIFF_AUGMENT_POLICIES: readonly string[] = ['color', 'translation', 'cutout'];

/** A policy string's names, each checked (before anything is drawn): an unknown one is named with the known ones. */
export function parsePolicy(policy: unknown, label = 'diffAugment: policy'): string[] {
  if (typeof policy !== 'string') throw typeError(label, `a comma-separated list of ${choicesForm(DIFF_AUGMENT_POLICIES)}`, policy);
  if (policy === '') return [];
  return policy.split(',').map((p) => {
    if (DIFF_AUGMENT_POLICIES.includes(p)) return p;
    const hint = suggest(p.trim(), DIFF_AUGMENT_POLICIES);
    throw new TypeError(
      `${label}: unknown policy ${JSON.stringify(p)}${hint ? ` (did you mean '${hint}'?)` : ''} in ${JSON.stringify(policy)}; known: ${DIFF_AUGMENT_POLICIES.join(', ')}`,
    );
  });
}

/**
 * DiffAugment(x, policy, channels_first): `x` a float batch `[N, C, H, W]` (`[N, H, W, C]` with
 * `channelsFirst: false`), `policy` comma-separated names of `color` (brightness, saturation, contrast),
 * `translation` (by up to 1/8 of the size, zero-filled) and `cutout` (a square of half the size), applied in
 * the order given. Differentiable with respect to x. An empty policy returns x itself, as the authors' does.
 * Not in-place: x is left as it was.
 */
export function diffAugment(x: Tensor, policy = 'color,translation,cutout', options: { channelsFirst?: boolean } = {}): Tensor {
  const fn = 'diffAugment';
  const channelsFirst = readOptions(fn, options, ['channelsFirst'], { optional: true }).booleanOr('channelsFirst', true);
  const names = parsePolicy(policy);
  if (!(x instanceof Tensor)) throw typeError(`${fn}: x`, 'a Tensor', x);
  if (x.isDisposed) throw new Error(`${fn}: x was disposed and cannot be used again`);
  if (x.ndim !== 4) throw new RangeError(`${fn}: x must be a batch of images [N, ${channelsFirst ? 'C, H, W' : 'H, W, C'}], got shape [${x.shape.join(', ')}]`);
  if (!isFloatingDtype(x.dtype)) throw new TypeError(`${fn}: x must be a floating-point tensor, got dtype ${x.dtype}`);
  if (names.length === 0) return x;
  return torch.scope(() => {
    // The native op takes channels first; a channels-last batch is permuted there and back, as the authors do.
    const y = new Tensor(loadAddon().diffAugment((channelsFirst ? x : x.permute(0, 3, 1, 2))._native, policy));
    return channelsFirst ? y : y.permute(0, 2, 3, 1).contiguous();
  });
}
