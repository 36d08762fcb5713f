/**
 * The schemas (zod) of a run folder's JSON files, config.json (RunInfo, with the effective preset)
 * and trainer.json (TrainerState), checked when they are read: a field of the wrong type in a
 * hand-edited or damaged file is an error naming the file, the key, the expected form and the
 * value, never a TypeError later nor a silently wrong resume. Objects are loose (keys this version
 * does not know pass through untouched, so rewriting config.json keeps them).
 */
import { z } from 'zod';
import { PRECISIONS } from '../gan/precision';
import { PRESET_NAMES, type PresetName } from '../gan/presets';
import { GanStepSpecSchema } from '../gan/step-spec';
import { ModuleSpecSchema } from '../nn/spec';
import { DataSchema, MAX_THREADS, nonEmptyString, beta } from '../config/config';
import { describeIssues, describeValue } from '../config/errors';
import { bool, expected, int, intAtLeast, num, obj, str } from '../util/schema';

const intMin = intAtLeast;
const nonNegative = z.number(expected('a number >= 0')).min(0, expected('a number >= 0'));
const nullableIntMin = (min: number) =>
  z
    .int(expected(`null or an integer >= ${min}`))
    .min(min, expected(`null or an integer >= ${min}`))
    .nullable();
const device = z.string(expected('"cpu", "cuda" or "cuda:N"')).regex(/^(cpu|cuda(:\d+)?)$/, expected('"cpu", "cuda" or "cuda:N"'));

// zod types a union's error callback for union issues only, but calls it for a non-object too
const codeOf = (iss: unknown) => (iss as { code?: string }).code;

// ---------------------------------------------------------------------------------------------
// The effective preset (gan/presets.ts Preset), as config.json stores it

const OptimizerSchema = z.discriminatedUnion(
  'type',
  [
    obj(
      {
        type: z.literal('adam'),
        lr: num('a number > 0').gt(0, expected('a number > 0')),
        betas: z.tuple([beta, beta], expected('an array of two numbers [beta1, beta2], each in [0, 1)')),
        eps: nonNegative,
        weightDecay: nonNegative,
        amsgrad: bool,
      },
      'an Adam spec',
    ),
    obj(
      {
        type: z.literal('sgd'),
        lr: num('a number > 0').gt(0, expected('a number > 0')),
        momentum: nonNegative,
        dampening: num(),
        weightDecay: nonNegative,
        nesterov: bool,
      },
      'an SGD spec',
    ),
  ],
  { error: (iss) => (codeOf(iss) === 'invalid_type' ? 'an optimizer spec { type, lr, ... }' : '"adam" or "sgd"') },
);

const PresetSchema = obj(
  {
    name: z.enum(PRESET_NAMES as [PresetName, ...PresetName[]], expected(`one of ${PRESET_NAMES.join(', ')}`)),
    seed: str.nullable(),
    description: str,
    differsFromReadme: str,
    generator: ModuleSpecSchema,
    discriminator: ModuleSpecSchema,
    step: GanStepSpecSchema,
    optimizer: OptimizerSchema,
    batchSize: intMin(1),
    epochs: intMin(1),
    zDim: intMin(1),
    normalize: z.enum(['[-1,1]', '[0,1]'], expected('"[-1,1]" or "[0,1]"')),
    init: z.enum(['dcgan'], expected('"dcgan"')).optional(),
    // runs of versions before the convolutional presets trained 1 x 28 x 28 MLPs and stored no image
    image: obj({ channels: z.union([z.literal(1), z.literal(3)], expected('1 or 3')), size: intMin(1) }, 'an image shape { channels, size }')
      .optional()
      .default({ channels: 1, size: 28 }),
  },
  'a preset object { name, generator, discriminator, step, optimizer, ... }',
);

/** config.ts ResolvedConfig as stored (undefined fields are absent in JSON). */
const ResolvedConfigSchema = obj(
  {
    preset: PresetSchema,
    device: z.enum(['cpu', 'cuda'], expected('"cpu" or "cuda"')),
    seed: intMin(0).optional(),
    saveDir: nonEmptyString,
    saveEvery: intMin(0),
    sampleEvery: intMin(0),
    // runs from before quality metrics have neither
    evalEvery: intMin(0).default(0),
    evalN: intMin(2).default(10000),
    verbose: int('an integer from 0 to 3').min(0, expected('an integer from 0 to 3')).max(3, expected('an integer from 0 to 3')),
    threads: intMin(1)
      .max(MAX_THREADS, expected(`an integer from 1 to ${MAX_THREADS}`))
      .optional(),
    flushDenormal: bool.optional(),
    cudaGraphs: bool.optional(),
    // runs from before mixed precision have none (fp32)
    precision: z.enum(PRECISIONS, expected(PRECISIONS.map((p) => `'${p}'`).join(', '))).optional(),
    resume: nonEmptyString.optional(),
    data: DataSchema,
  },
  'a resolved config object { preset, device, ... }',
);

// ---------------------------------------------------------------------------------------------
// The two files

/** run-dir.ts RunInfo. */
export const RunInfoSchema = obj(
  {
    format: str,
    run: str,
    startTime: str,
    packageVersion: str,
    libtorchVersion: str,
    device,
    seed: nullableIntMin(0),
    shuffleSeed: intMin(0),
    limit: nullableIntMin(1),
    dataset: obj({ name: str, images: intMin(1), source: str.optional() }, 'an object { name, images, source? }'),
    distributed: obj({ backend: z.enum(['gloo', 'nccl'], expected("'gloo' or 'nccl'")), worldSize: intMin(1) }, 'an object { backend, worldSize }').optional(),
    config: ResolvedConfigSchema,
    runConfig: z.unknown(),
    resumes: z
      .array(
        obj({ time: str, fromEpoch: intMin(0), packageVersion: str, runConfig: z.unknown() }, 'an object { time, fromEpoch, packageVersion, runConfig? }'),
        expected('an array of resumptions'),
      )
      .optional(),
  },
  'a JSON object',
);

/** checkpoint.ts TrainerState. */
export const TrainerStateSchema = obj(
  {
    format: str,
    epoch: intMin(0),
    globalStep: intMin(0),
    preset: nonEmptyString,
    device,
    seed: nullableIntMin(0),
    shuffleSeed: intMin(0),
    images: intMin(1),
    interrupted: obj({ epoch: intMin(1), steps: intMin(0) }, 'null or an object { epoch, steps }').nullable(),
    worldSize: intMin(1).optional(),
    emaUpdates: intMin(0).optional(),
    time: str,
    packageVersion: str,
    files: z.record(
      z.string(),
      obj({ bytes: intMin(0), sha256: z.string(expected('64 hex digits')).regex(/^[0-9a-f]{64}$/, expected('64 hex digits')) }, 'an object { bytes, sha256 }'),
      expected('an object { <file name>: { bytes, sha256 } }'),
    ),
  },
  'a JSON object',
);

/**
 * Checks `value` (the parsed JSON of `file`) against `schema`, after its `format` against
 * `format` (a different format is named first: the file is not what it is taken for). Returns the
 * value; throws `makeError(messages)`, each message naming the file.
 */
export function checkRunFile<T>(
  file: string,
  value: unknown,
  schema: z.ZodType,
  opts: { format: string; what: string; makeError: (message: string) => Error },
): T {
  const format = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as { format?: unknown }).format : undefined;
  if (format !== opts.format) {
    const got = value !== null && typeof value === 'object' && !Array.isArray(value) ? `format ${describeValue(format)}` : describeValue(value);
    throw opts.makeError(`${file}: not ${opts.what} (expected an object with format "${opts.format}", got ${got})`);
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data as T;
  throw opts.makeError(
    describeIssues(r.error.issues, value, 'the file')
      .map((m) => `${file}: ${m}`)
      .join('\n'),
  );
}
