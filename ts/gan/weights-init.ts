/**
 * Weight initialization schemes a preset may name, applied after the modules' default init (which
 * has drawn already: the RNG sequence is the script's). 'dcgan' is pytorch/examples' weights_init:
 * every Conv* weight ~ N(0, 0.02); every BatchNorm* weight ~ N(1, 0.02) and bias 0, in module order.
 * A spectral-normed weight is written in its `parametrizations.weight.original` (test/parity/reference.py
 * does the same): `m.weight` is computed from it at each read, so writing that would change a temporary
 * (and, in training mode, run a power iteration). Its u and v stay those of the default init.
 */
import { Conv2d, ConvTranspose2d } from '../nn/conv';
import * as init from '../nn/init';
import { BatchNorm1d, BatchNorm2d } from '../nn/batchnorm';
import { type Module } from '../nn/module';
import { isParametrized, type Parametrized } from '../nn/utils/parametrize';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type InitScheme } from './presets';

export type { InitScheme } from './presets';
export const INIT_SCHEMES: readonly InitScheme[] = ['dcgan'];

export function applyInit(model: Module, scheme: InitScheme): void {
  if (scheme !== 'dcgan') throw new RangeError(`init: unknown scheme ${JSON.stringify(scheme)}; expected one of ${INIT_SCHEMES.join(', ')}`);
  torch.noGrad(() => {
    for (const [, m] of model.namedModules()) {
      if (m instanceof Conv2d || m instanceof ConvTranspose2d) init.normal_(weightOf(m)!, 0, 0.02);
      else if (m instanceof BatchNorm1d || m instanceof BatchNorm2d) {
        const w = weightOf(m);
        const b = m._parameters.get('bias');
        if (w) init.normal_(w, 1, 0.02);
        if (b) init.zeros_(b);
      }
    }
  });
}

/** The tensor that holds `m`'s weight: the parameter, or a parametrized weight's original (none without one: BatchNorm without affine). */
function weightOf(m: Module): Tensor | undefined {
  return isParametrized(m, 'weight') ? (m as Parametrized<Module>).parametrizations.weight.original : (m._parameters.get('weight') ?? undefined);
}
