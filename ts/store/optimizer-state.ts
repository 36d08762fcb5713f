/**
 * An optimizer's state dict as safetensors content and back (the optimizer_g/optimizer_d files of a
 * checkpoint).
 */
import { type OptimizerStateDict } from '../optim/optimizer';
import type * as safetensors from '../tensor/safetensors';
import { Tensor } from '../tensor/tensor';
import { CheckpointError } from './errors';

export const OPTIMIZER_FORMAT = 'libtorch-gan-optimizer/1';

/**
 * An optimizer's state dict as safetensors content: tensors 'state.<i>.<name>' and metadata
 * { format, type, param_groups (JSON), state (JSON: the numeric entries such as step counts),
 * param_names (JSON, optional) }.
 */
export function optimizerToSafetensors(
  sd: OptimizerStateDict,
  opts: { type?: string; paramNames?: string[] } = {},
): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const tensors: Record<string, Tensor> = {};
  const numbers: Record<string, Record<string, number>> = {};
  for (const [i, entry] of Object.entries(sd.state)) {
    for (const [k, v] of Object.entries(entry)) {
      if (v instanceof Tensor) tensors[`state.${i}.${k}`] = v;
      else if (typeof v === 'number') {
        numbers[i] ??= {};
        numbers[i][k] = v;
      }
    }
  }
  const metadata: Record<string, string> = {
    format: OPTIMIZER_FORMAT,
    param_groups: JSON.stringify(sd.param_groups),
    state: JSON.stringify(numbers),
  };
  if (opts.type) metadata.type = opts.type;
  if (opts.paramNames) metadata.param_names = JSON.stringify(opts.paramNames);
  return { tensors, metadata };
}

/** The inverse of optimizerToSafetensors. `name` is used in error messages. */
export function optimizerFromSafetensors(loaded: safetensors.Loaded, name = 'optimizer'): OptimizerStateDict {
  const { tensors, metadata } = loaded;
  if (metadata.format !== OPTIMIZER_FORMAT) {
    throw new CheckpointError(`${name}: not an optimizer checkpoint (metadata format is ${JSON.stringify(metadata.format)}, expected "${OPTIMIZER_FORMAT}")`);
  }
  let groups: OptimizerStateDict['param_groups'];
  let numbers: Record<string, Record<string, number>>;
  try {
    groups = JSON.parse(metadata.param_groups);
    numbers = JSON.parse(metadata.state ?? '{}');
  } catch (e) {
    throw new CheckpointError(`${name}: metadata is not valid JSON (${(e as Error).message})`);
  }
  const state: OptimizerStateDict['state'] = {};
  for (const [i, entry] of Object.entries(numbers)) state[Number(i)] = { ...entry };
  for (const [key, t] of Object.entries(tensors)) {
    const m = /^state\.(\d+)\.(.+)$/.exec(key);
    if (!m) throw new CheckpointError(`${name}: unexpected tensor ${JSON.stringify(key)} (expected 'state.<index>.<name>')`);
    state[Number(m[1])] ??= {};
    state[Number(m[1])][m[2]] = t;
  }
  return { state, param_groups: groups };
}
