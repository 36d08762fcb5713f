/**
 * Presets rebuilt for other images or classes: the convolutional presets (dcgan, cgan, sngan, wgan-gp)
 * build their networks from an image shape and a number of classes, keeping every other setting.
 */
import { type ConvShape, dcganPreset } from './dcgan';
import { type Preset, type PresetName, withZDim } from './index';
import { snganPreset, wganGpPreset } from './recipes';

/** The convolutional presets' builders, by preset name. */
const CONV_BUILDERS: Partial<Record<PresetName, (shape: ConvShape, classes: number) => Preset>> = {
  dcgan: dcganPreset,
  cgan: dcganPreset,
  sngan: snganPreset,
  'wgan-gp': wganGpPreset,
};
const CONV_NAMES = Object.keys(CONV_BUILDERS).join(', ');

/** `preset` with networks rebuilt for `image` and `classes` (its other settings and step recipes kept). */
function rebuild(preset: Preset, image: ConvShape, classes: number, why: string): Preset {
  const build = CONV_BUILDERS[preset.name];
  if (!build) throw new RangeError(`preset ${preset.name} ${why}; the convolutional presets (${CONV_NAMES}) can`);
  const rebuilt = build(image, classes);
  const out = {
    ...structuredClone(preset),
    generator: rebuilt.generator,
    discriminator: rebuilt.discriminator,
    image: rebuilt.image,
    description: rebuilt.description,
  };
  if (classes) out.step.conditioning = { classes };
  else delete out.step.conditioning;
  return out.zDim === rebuilt.zDim ? out : withZDim(out, out.zDim);
}

/**
 * `preset` for images of `image`'s channels and size: the convolutional presets rebuild their networks
 * for it (dcgan.ts), keeping every other setting (zDim included); the MLP seeds train on 1 x 28 x 28
 * only and say so.
 */
export function adaptPreset(preset: Preset, image: ConvShape, classes?: number): Preset {
  const cond = preset.step.conditioning?.classes ?? 0;
  const wantClasses = cond && classes !== undefined ? classes : cond;
  if (cond && wantClasses < 2)
    throw new RangeError(`preset ${preset.name} is conditional and needs images of at least 2 classes (one subfolder per class), got ${wantClasses}`);
  if (preset.image.channels === image.channels && preset.image.size === image.size && wantClasses === cond) return preset;
  if (!CONV_BUILDERS[preset.name])
    throw new RangeError(
      `preset ${preset.name} trains on ${preset.image.channels} x ${preset.image.size} x ${preset.image.size} images (its MLPs are the seed script's); ` +
        `these are ${image.channels} x ${image.size} x ${image.size}: use a convolutional preset (${CONV_NAMES})`,
    );
  return rebuild(preset, image, wantClasses, 'cannot be rebuilt');
}

/**
 * A convolutional preset made class-conditional (`classes` >= 2; the dataset's, 10 for MNIST): the
 * label's one-hot vector concatenated to z and as constant planes to D's input, as cgan. A folder's
 * classes replace it when its images are loaded (adaptPreset).
 */
export function withClasses(preset: Preset, classes: number): Preset {
  if (!Number.isSafeInteger(classes) || classes < 2) throw new RangeError(`classes: expected an integer >= 2, got ${classes}`);
  return rebuild(preset, preset.image, classes, `is not convolutional and cannot be made conditional (its MLPs are the seed script's)`);
}
