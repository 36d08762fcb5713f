/**
 * The registry of layer kinds (ts/nn/spec.ts): every list a layer kind appears in is derived from the
 * layer classes, so these check that the derivation holds: each class's spec names the class, a spec
 * builds the module it describes, the module's parameters are those parameterShapes declares, and the
 * native fields are what the fused step reads.
 */
import { fromSpec, toNativeLayers } from '../../ts/nn/from-spec';
import * as nn from '../../ts/nn/index';
import { Embedding, Linear, Sequential } from '../../ts/nn/layers';
import { layerClass, MODULE_TYPES, type ModuleSpec, ModuleSpecSchema, NATIVE_KINDS, parameterShapes, SPECTRAL_NORM_KINDS } from '../../ts/nn/spec';

/** One spec of every layer kind, with parameters where the kind has them. */
const SPECS: Exclude<ModuleSpec, { type: 'Sequential' }>[] = [
  { type: 'BatchNorm1d', numFeatures: 3 },
  { type: 'BatchNorm2d', numFeatures: 2, affine: false },
  { type: 'Conv2d', inChannels: 4, outChannels: 6, kernelSize: [3, 5], groups: 2, padding: 'same' },
  { type: 'ConvTranspose2d', inChannels: 4, outChannels: 2, kernelSize: 4, stride: 2, padding: 1, outputPadding: 1, bias: false },
  { type: 'Dropout', p: 0.25 },
  { type: 'Embedding', numEmbeddings: 5, embeddingDim: 3, paddingIdx: 0 },
  { type: 'Flatten', startDim: 1 },
  { type: 'LeakyReLU', negativeSlope: 0.2 },
  { type: 'Linear', inFeatures: 3, outFeatures: 2 },
  { type: 'ReLU' },
  { type: 'Sigmoid' },
  { type: 'Tanh' },
  { type: 'Unflatten', dim: 1, unflattenedSize: [2, 3] },
];

describe('the layer registry', () => {
  it('holds every layer class, each spec naming its class, the lists in name order', () => {
    expect(MODULE_TYPES).toEqual([...SPECS.map((s) => s.type), 'Sequential']);
    expect(NATIVE_KINDS).toEqual(SPECS.map((s) => s.type).filter((t) => t !== 'Embedding'));
    for (const s of SPECS) {
      const cls = layerClass(s.type)!;
      expect(cls.name).toBe(s.type);
      expect(Object.values(nn)).toContain(cls); // exported by nn
    }
  });

  it.each(SPECS.map((s) => [s.type, s] as const))('a %s spec passes the stored-config schema and builds its module, parameters as declared', (type, spec) => {
    expect(ModuleSpecSchema.parse(spec)).toEqual(spec);
    const m = fromSpec(spec);
    expect(m.constructor.name).toBe(type);
    const shapes = Object.fromEntries(m.namedParameters().map(([n, p]) => [n, p.shape]));
    expect(shapes).toEqual(parameterShapes(spec));
  });

  it('native layers carry the kind, the state-dict name and the fields of the class', () => {
    const m = fromSpec({ type: 'Sequential', children: [SPECS[3], SPECS[1], { type: 'Sequential', children: [SPECS[2], SPECS[7]] }] });
    const layers = toNativeLayers(m);
    expect(layers.map((l) => [l.kind, l.name])).toEqual([
      ['ConvTranspose2d', '0'],
      ['BatchNorm2d', '1'],
      ['Conv2d', '2.0'],
      ['LeakyReLU', '2.1'],
    ]);
    const [convT, bn, conv, leaky] = layers;
    expect(convT).toMatchObject({ stride: [2, 2], padding: [1, 1], dilation: [1, 1], outputPadding: [1, 1], groups: 1, bias: null });
    expect(bn).toMatchObject({ weight: null, bias: null, eps: 1e-5, momentum: 0.1 });
    expect(conv).toMatchObject({ padding: [1, 2], groups: 2 }); // 'same' as symmetric numbers
    expect(leaky).toEqual({ kind: 'LeakyReLU', name: '2.1', negativeSlope: 0.2 });
  });

  it('a subclass of a layer runs as that layer; a kind without native fields is refused by name', () => {
    class Mine extends Linear {}
    expect(toNativeLayers(new Sequential(new Mine(2, 3))).map((l) => l.kind)).toEqual(['Linear']);
    expect(() => toNativeLayers(new Sequential(new Embedding(3, 2)))).toThrow('the fused trainer cannot run module 0 of type Embedding');
  });

  it('spectralNorm: the spec passes the schema as written, fromSpec applies it with its options, keys and parameters as PyTorch names them', () => {
    const specs: ModuleSpec[] = [
      { type: 'Linear', inFeatures: 3, outFeatures: 2, spectralNorm: true },
      { type: 'Conv2d', inChannels: 2, outChannels: 4, kernelSize: 3, bias: false, spectralNorm: { nPowerIterations: 2, eps: 1e-6, dim: 1 } },
      { type: 'ConvTranspose2d', inChannels: 4, outChannels: 2, kernelSize: 4, spectralNorm: { eps: 1e-8 } },
      { type: 'Linear', inFeatures: 3, outFeatures: 2, spectralNorm: false },
    ];
    expect(SPECTRAL_NORM_KINDS).toEqual(['Conv2d', 'ConvTranspose2d', 'Linear']);
    const m = fromSpec({ type: 'Sequential', children: specs });
    for (const [i, spec] of specs.entries()) {
      expect(ModuleSpecSchema.parse(spec)).toEqual(spec);
      const layer = (m as Sequential)._modules.get(String(i))!;
      const shapes = Object.fromEntries(layer.namedParameters().map(([n, p]) => [n, p.shape]));
      expect(shapes).toEqual(parameterShapes(spec as Exclude<ModuleSpec, { type: 'Sequential' }>));
    }
    expect(Object.keys(m.stateDict())).toEqual([
      '0.bias',
      '0.parametrizations.weight.original',
      '0.parametrizations.weight.0._u',
      '0.parametrizations.weight.0._v',
      '1.parametrizations.weight.original',
      '1.parametrizations.weight.0._u',
      '1.parametrizations.weight.0._v',
      '2.bias',
      '2.parametrizations.weight.original',
      '2.parametrizations.weight.0._u',
      '2.parametrizations.weight.0._v',
      '3.weight',
      '3.bias',
    ]);
    const norms = toNativeLayers(m).map((l) => (l as { spectralNorm: object | null }).spectralNorm);
    expect(norms.map((n) => n && { ...n, u: undefined, v: undefined })).toEqual([
      { nPowerIterations: 1, eps: 1e-12, dim: 0, u: undefined, v: undefined },
      { nPowerIterations: 2, eps: 1e-6, dim: 1, u: undefined, v: undefined },
      { nPowerIterations: 1, eps: 1e-8, dim: 1, u: undefined, v: undefined }, // ConvTranspose2d's default dim
      null,
    ]);
  });

  it.each<[string, unknown, string]>([
    ['eps 0', { eps: 0 }, 'a number > 0'],
    ['0 power iterations', { nPowerIterations: 0 }, 'an integer >= 1'],
    ['a string', 'yes', 'true, false or { nPowerIterations?, eps?, dim? }'],
  ])('spectralNorm: %s is refused by the schema, saying what was expected', (_, spectralNorm, message) => {
    const r = ModuleSpecSchema.safeParse({ type: 'Linear', inFeatures: 2, outFeatures: 3, spectralNorm });
    expect(r.error?.issues.map((i) => i.message)).toEqual([message]);
  });

  it('spectralNorm on a kind that does not take it is refused by fromSpec, not ignored', () => {
    expect(() => fromSpec({ type: 'BatchNorm1d', numFeatures: 3, spectralNorm: true } as unknown as ModuleSpec)).toThrow(
      new TypeError('fromSpec: a BatchNorm1d spec takes no spectralNorm; spectral norm applies to Conv2d, ConvTranspose2d, Linear'),
    );
  });

  it('an unknown type is refused by fromSpec and, listing the kinds, by the schema', () => {
    expect(() => fromSpec({ type: 'GELU' } as unknown as ModuleSpec)).toThrow('fromSpec: unknown module type "GELU"');
    const r = ModuleSpecSchema.safeParse({ type: 'GELU' });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0].message).toBe(`one of ${MODULE_TYPES.join(', ')}`);
  });
});
