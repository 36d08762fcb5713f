/** nn.utils, as torch.nn.utils: `parametrize` (the mechanism) and `parametrizations` (spectralNorm). */
export * as parametrize from './parametrize';
export * as parametrizations from './parametrizations';
