/**
 * DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the
 * authors' PyTorch code (mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py) op for op. Every
 * augmentation is tensor code, so gradients flow through it to G; each draws from the global generator
 * with the same calls, shapes and order as theirs (torch.rand for color, torch.randint for translation
 * and cutout), so after the same manualSeed the output equals theirs.
 */
import { callOp, Tensor } from '../../tensor/tensor';
import * as torch from '../../tensor/torch';
import { isFloatingDtype } from '../../tensor/dtype';
import { choicesForm, readOptions, typeError } from '../../util/options';
import { suggest } from '../../util/suggest';

type Augment = (x: Tensor) => Tensor;

/** N random values in [N, 1, 1, 1], x's dtype and device: one per image. */
const perImage = (x: Tensor) => torch.rand([x.shape[0], 1, 1, 1], { dtype: x.dtype, device: x.device });

function randBrightness(x: Tensor): Tensor {
  return x.add(perImage(x).sub(0.5));
}

function randSaturation(x: Tensor): Tensor {
  const xMean = x.mean(1, true);
  return x.sub(xMean).mul(perImage(x).mul(2)).add(xMean);
}

function randContrast(x: Tensor): Tensor {
  const xMean = x.mean([1, 2, 3], true);
  return x.sub(xMean).mul(perImage(x).add(0.5)).add(xMean);
}

/** Python's int(v) of a positive v. */
const pyInt = (v: number) => Math.trunc(v);

/** torch.meshgrid(arange(a), arange(b), arange(c)) with 'ij' indexing (the default the authors rely on), int64. */
function grid(a: number, b: number, c: number, device: Tensor['device']): Tensor[] {
  const ranges = [a, b, c].map((n) => torch.arange(n, undefined, 1, { dtype: 'int64', device }));
  return callOp('aten::meshgrid', 'indexing', [ranges], { indexing: 'ij' }) as Tensor[];
}

function randTranslation(x: Tensor, ratio = 0.125): Tensor {
  const [n, , h, w] = x.shape;
  const shiftX = pyInt(h * ratio + 0.5);
  const shiftY = pyInt(w * ratio + 0.5);
  const translationX = torch.randint(-shiftX, shiftX + 1, [n, 1, 1], { device: x.device });
  const translationY = torch.randint(-shiftY, shiftY + 1, [n, 1, 1], { device: x.device });
  const [gridBatch, gx, gy] = grid(n, h, w, x.device);
  const gridX = gx
    .add(translationX)
    .add(1)
    .clamp(0, h + 1);
  const gridY = gy
    .add(translationY)
    .add(1)
    .clamp(0, w + 1);
  const xPad = callOp('aten::constant_pad_nd', '', [x, [1, 1, 1, 1, 0, 0, 0, 0], 0]) as Tensor;
  const gathered = callOp('aten::index', 'Tensor', [xPad.permute(0, 2, 3, 1).contiguous(), [gridBatch, gridX, gridY]]) as Tensor;
  return gathered.permute(0, 3, 1, 2).contiguous();
}

function randCutout(x: Tensor, ratio = 0.5): Tensor {
  const [n, , h, w] = x.shape;
  const cutout = [pyInt(h * ratio + 0.5), pyInt(w * ratio + 0.5)];
  const offsetX = torch.randint(0, h + (1 - (cutout[0] % 2)), [n, 1, 1], { device: x.device });
  const offsetY = torch.randint(0, w + (1 - (cutout[1] % 2)), [n, 1, 1], { device: x.device });
  const [gridBatch, gx, gy] = grid(n, cutout[0], cutout[1], x.device);
  const gridX = gx
    .add(offsetX)
    .sub(Math.floor(cutout[0] / 2))
    .clamp(0, h - 1);
  const gridY = gy
    .add(offsetY)
    .sub(Math.floor(cutout[1] / 2))
    .clamp(0, w - 1);
  const mask = torch.ones([n, h, w], { dtype: x.dtype, device: x.device });
  // `mask[grid_batch, grid_x, grid_y] = 0`, as Python's indexed assignment runs it
  const zero = torch.zeros([], { dtype: x.dtype, device: x.device });
  callOp('aten::index_put_', '', [mask, [gridBatch, gridX, gridY], zero, false]);
  return x.mul(mask.unsqueeze(1));
}

/** The policies by name, each its augmentations in the authors' order (AUGMENT_FNS). */
const AUGMENT_FNS: Record<string, readonly Augment[]> = {
  color: [randBrightness, randSaturation, randContrast],
  translation: [(x) => randTranslation(x)],
  cutout: [(x) => randCutout(x)],
};

/** The policy names DiffAugment knows. */
export const DIFF_AUGMENT_POLICIES = Object.keys(AUGMENT_FNS) as readonly string[];

/** A policy string's names, each checked (before anything is drawn): an unknown one is named with the known ones. */
export function parsePolicy(policy: unknown, label = 'diffAugment: policy'): string[] {
  if (typeof policy !== 'string') throw typeError(label, `a comma-separated list of ${choicesForm(DIFF_AUGMENT_POLICIES)}`, policy);
  if (policy === '') return [];
  return policy.split(',').map((p) => {
    if (Object.hasOwn(AUGMENT_FNS, p)) return p;
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
    let y = channelsFirst ? x : x.permute(0, 3, 1, 2);
    for (const name of names) for (const f of AUGMENT_FNS[name]) y = f(y);
    if (!channelsFirst) y = y.permute(0, 2, 3, 1);
    return y.contiguous();
  });
}
