/**
 * A stored generator: the one loader of G's weights (a run folder's latest checkpoint, or a torch.save'd
 * state_dict of the seeds' scripts) and sample(), images from it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { labelsFor } from '../gan/condition';
import { checkTruncation, randomSeed, withRngState } from '../gan/noise';
import { getPreset, type Preset } from '../gan/presets';
import { generate, type Samples, samplesOf, seededInputs } from '../gan/sample';
import { fromSpec } from '../nn/from-spec';
import { type Module } from '../nn/module';
import { fitStateDict } from '../nn/state-dict-fit';
import { type Device } from '../tensor/dtype';
import * as safetensors from '../tensor/safetensors';
import * as torch from '../tensor/torch';
import { loadPytorch } from '../tensor/torch-save';
import { readOptions } from '../util/options';
import { CHECKPOINT_FILES, checkFiniteWeights, checkpointFile, hasCheckpoint } from './checkpoint';
import { CheckpointError } from './errors';
import { readRunInfo } from './run-dir';

export interface SampleOptions {
  /** Run folder holding config.json and generator.safetensors. */
  checkpoint: string;
  /** Number of images (default 64). */
  count?: number;
  /** Noise seed; default: a random one (reported in the result). */
  seed?: number;
  /** Device to run G on (default 'cpu'). */
  device?: Device;
  /**
   * Conditional generators (cgan): the class to draw, for every image or one per image; 'all' draws
   * `count` images of each class, class after class (a grid with one row per class at nrow = count).
   * Default: classes drawn uniformly from the seed. Refused by an unconditional generator.
   */
  labels?: number | readonly number[] | 'all';
  /**
   * With a torch.save'd state_dict file as `checkpoint` (a `.pt`/`.pth` of G's weights, as the seeds save
   * it): the preset whose generator it is. Its keys may follow the script's own module names.
   */
  preset?: string;
  /**
   * Truncate G's normal noise to [-truncation, truncation] (the truncation trick: values outside
   * redrawn from N(0, 1), see noise()); a finite number > 0. Refused for a generator of uniform noise.
   */
  truncation?: number;
}

/** Whether a generator source names a torch.save'd file (else a run folder). */
const isFileSource = (source: string): boolean => fs.existsSync(source) && fs.statSync(source).isFile();

const SAMPLE_KEYS = ['checkpoint', 'count', 'seed', 'device', 'labels', 'preset', 'truncation'] as const;
const SAMPLE_FORM =
  "{ checkpoint: string, count?: number, seed?: number, device?: 'cpu' | 'cuda' | 'cuda:N', labels?: number | number[] | 'all', preset?: string, truncation?: number }";

type Optional = 'seed' | 'labels' | 'preset' | 'truncation';
/** sample()'s options with their defaults, each checked before any file is read; errors name the value. */
function checkSampleOptions(opts: unknown): Required<Omit<SampleOptions, Optional>> & Pick<SampleOptions, Optional> {
  const o = readOptions('sample', opts, SAMPLE_KEYS, { form: `options ${SAMPLE_FORM}` });
  return {
    checkpoint: o.string('checkpoint', 'the path of a run folder (a string)'),
    count: o.integerOr('count', 64, { min: 1 }),
    seed: o.seedOr('seed', undefined),
    device: o.deviceOr('device', 'cpu'),
    labels: o.get('labels') as SampleOptions['labels'], // checked against the generator's classes (labelsFor)
    preset: o.stringOr('preset', undefined, 'a preset name'),
    truncation: o.numberOr('truncation', undefined, { gt: 0 }), // against the generator's noise once its preset is read
  };
}

/**
 * Rebuilds G from the run's config.json preset, loads generator.safetensors (verified against
 * trainer.json when there is one) and generates `count` images from seeded noise. The global
 * random generators are left as they were.
 */
export function sample(opts: SampleOptions): Samples {
  const { checkpoint: runDir, count: perLabel, seed: givenSeed, device, labels: given, preset: presetName, truncation } = checkSampleOptions(opts);
  const fromFile = isFileSource(runDir);
  if (fromFile && presetName === undefined)
    throw new TypeError(`sample: ${runDir} is a file: give the preset whose generator it holds (preset: 'vanilla', ...; --preset on the command line)`);
  if (!fromFile && presetName !== undefined) throw new TypeError('sample: preset applies to a torch.save file as checkpoint; a run folder has its own');
  const preset = fromFile ? getPreset(presetName!) : readRunInfo(runDir).config.preset;
  checkTruncation(preset.step.noise, truncation, 'sample: truncation');
  const classes = preset.step.conditioning?.classes ?? 0;
  const count = given === 'all' ? perLabel * classes : perLabel;
  const list = given === 'all' ? Array.from({ length: count }, (_, i) => Math.floor(i / perLabel)) : given;
  // checked before any weights are read: a bad label is the user's error, not the checkpoint's
  if (given === 'all' && !classes) throw new TypeError("sample: labels 'all' applies to conditional presets (cgan); this generator is not conditional");
  if (list !== undefined) labelsFor(list, count, classes, 'sample').dispose();
  const seed = givenSeed ?? randomSeed();
  const G = loadGeneratorModule(runDir, preset, device);
  try {
    return torch.scope(() => {
      const { z, y } = seededInputs(preset, count, seed, list, truncation);
      const out = samplesOf(preset, generate(G, z, device, y && { y, classes }), count, seed, y);
      return usesEmaGenerator(runDir, preset) ? { ...out, ema: true } : out;
    });
  } finally {
    G.dispose();
  }
}

/**
 * Whether the generator loaded from `source` is the EMA of G: a run folder whose step spec keeps one
 * (its samples, evaluation and exports use the average, which is what the EMA is for).
 */
export function usesEmaGenerator(source: string, preset: Preset): boolean {
  return !isFileSource(source) && preset.step.ema !== undefined;
}

/**
 * Whether to load the EMA generator of `source`: `ema` as asked (true refused where there is none), else
 * usesEmaGenerator's default. `who` names the caller in the error.
 */
export function pickEmaGenerator(source: string, preset: Preset, ema: boolean | undefined, who: string): boolean {
  const has = usesEmaGenerator(source, preset);
  if (ema === true && !has) throw new TypeError(`${who}: ema: true, but ${source} keeps no EMA generator (a run folder whose config sets ema keeps one)`);
  return ema ?? has;
}

/**
 * G of `preset` with stored weights, from either source: a run folder (the weights of its latest
 * checkpoint, verified against trainer.json when there is one; the EMA generator's where the run keeps
 * one: usesEmaGenerator, or as `ema` picks: pickEmaGenerator) or a torch.save'd state_dict file (keys fitted to G by structure). NaN weights
 * are refused. The global random generators are left as they were (building G draws its init from them).
 */
export function loadGeneratorModule(source: string, preset: Preset, device: Device, ema = usesEmaGenerator(source, preset)): Module {
  const fromFile = isFileSource(source);
  const name = ema ? CHECKPOINT_FILES.generatorEma : CHECKPOINT_FILES.generator;
  const file = fromFile ? source : hasCheckpoint(source) ? checkpointFile(source, name) : path.join(source, name);
  if (!fs.existsSync(file)) throw new CheckpointError(`${source} has no ${name} (no checkpoint was written yet)`);
  return withRngState(() => {
    const G = fromSpec(preset.generator, { device });
    try {
      torch.scope(() => {
        const weights = fromFile ? fitStateDict(loadPytorch(file, { device }), G, file) : safetensors.loadFile(file, { device });
        checkFiniteWeights(weights, file); // a diverged run's NaN weights would give blank images silently
        G.loadStateDict(weights);
      });
    } catch (e) {
      G.dispose();
      throw e;
    }
    return G;
  });
}
