/**
 * Resuming a run: which config keys may change, and how the options given now merge with the config the
 * run was trained with (its config.json). The one place these rules are written.
 */
import { type Preset } from '../gan/presets';
import { type CudaEnv } from './device';
import { ConfigError, type ConfigIssue } from './errors';
import { parseConfig, resolveConfigAndDevice, type ResolvedConfig, type RunConfig } from './config';

/** Keys that define the model or the training: a resumed run keeps the stored ones (given, they must be equal). */
export const FIXED_ON_RESUME = ['preset', 'batchSize', 'lr', 'betas', 'zDim', 'seed'] as const;

/** Run options a resumed run may change (given ones replace the stored; epochs is the new total). */
export const CHANGEABLE_ON_RESUME = ['epochs', 'device', 'threads', 'verbose', 'saveEvery', 'sampleEvery', 'evalEvery', 'evalN', 'data'] as const;

/** The changeable options kept from the stored config unless given (the rest are merged by hand below). */
const KEPT_UNLESS_GIVEN = ['saveEvery', 'sampleEvery', 'evalEvery', 'evalN', 'verbose', 'threads'] as const;

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The config of a resumed run: `stored` (the run's), with the run options in `given` applied
 * (CHANGEABLE_ON_RESUME; the device is resolved as a new run's is, 'auto' when not given). Keys that
 * define the model or the training (FIXED_ON_RESUME) must equal the stored ones; `givenPreset`, a whole
 * preset given (a resolved config), must equal the stored one but for its epochs. Every conflict is a
 * ConfigError issue naming the key, both values and `resumeDir`.
 */
export function mergeResumed(
  stored: ResolvedConfig,
  given: RunConfig,
  env: CudaEnv,
  resumeDir: string,
  givenPreset?: Preset,
): { config: ResolvedConfig; deviceFallback: string | undefined } {
  const issues: ConfigIssue[] = [];
  const conflict = (key: string, was: unknown, now: unknown) =>
    issues.push({
      path: [key],
      message: `config.${key}: the run in ${resumeDir} was trained with ${JSON.stringify(was)}, got ${JSON.stringify(now)}; a resumed run keeps its ${key} (leave it out)`,
    });
  const c = parseConfig(given);
  const p = stored.preset;
  if (c.preset !== undefined && c.preset !== p.name) conflict('preset', p.name, c.preset);
  if (c.batchSize !== undefined && c.batchSize !== p.batchSize) conflict('batchSize', p.batchSize, c.batchSize);
  if (c.lr !== undefined && c.lr !== p.optimizer.lr) conflict('lr', p.optimizer.lr, c.lr);
  if (c.betas !== undefined && !(p.optimizer.type === 'adam' && same(c.betas, p.optimizer.betas))) {
    conflict('betas', p.optimizer.type === 'adam' ? p.optimizer.betas : null, c.betas);
  }
  if (c.zDim !== undefined && c.zDim !== p.zDim) conflict('zDim', p.zDim, c.zDim);
  if (c.seed !== undefined && c.seed !== stored.seed) conflict('seed', stored.seed ?? null, c.seed);
  if (givenPreset && !issues.length) {
    const { epochs: _a, ...g } = givenPreset;
    const { epochs: _b, ...s } = p;
    if (!same(g, s)) {
      issues.push({
        path: ['preset'],
        message: `config.preset: differs from the preset the run in ${resumeDir} was trained with (only epochs may change when resuming)`,
      });
    }
  }
  // device, data etc. are validated by resolving them against the stored preset
  let resolved: ReturnType<typeof resolveConfigAndDevice> | undefined;
  try {
    resolved = resolveConfigAndDevice({ ...c, preset: p.name, resume: undefined, betas: undefined, lr: undefined, zDim: undefined, batchSize: undefined }, env);
  } catch (e) {
    if (e instanceof ConfigError) issues.push(...e.issues);
    else throw e;
  }
  if (issues.length || !resolved) throw new ConfigError(issues);
  const config: ResolvedConfig = {
    ...stored,
    preset: { ...p, epochs: c.epochs ?? p.epochs },
    device: resolved.config.device,
    data: c.data ? resolved.config.data : stored.data,
    resume: resumeDir,
  };
  for (const key of KEPT_UNLESS_GIVEN) if (c[key] !== undefined) Object.assign(config, { [key]: c[key] });
  return { config, deviceFallback: resolved.deviceFallback };
}

/** The options a resolved config states, as a RunConfig to merge (mergeResumed's `given`; its preset is compared whole). */
export function optionsOf(config: ResolvedConfig): RunConfig {
  const { preset, device, saveEvery, sampleEvery, evalEvery, evalN, verbose, threads } = config;
  return { preset: preset.name, epochs: preset.epochs, device, saveEvery, sampleEvery, evalEvery, evalN, verbose, threads };
}
