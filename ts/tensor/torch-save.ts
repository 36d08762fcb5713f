/**
 * PyTorch's own checkpoint files: a state_dict written as torch.save writes it (the zip format
 * torch.load reads, through LibTorch's pickler) and read back from a torch.save'd `.pt`/`.pth`. Reading
 * does not trust the file: the zip and the pickle are read by the addon's own checked readers, which
 * build tensors and containers only (a pickle naming any other global, code to run, is refused by name,
 * never run) and check each tensor against its storage record (size, dtype, offset, sizes, strides)
 * before making it, refusing what torch.load(weights_only=True) refuses. Nesting is bounded, and what a
 * file unpacks to is bounded by `maxBytes` before it is allocated.
 */
import * as fs from 'node:fs';
import { loadAddon } from '../native/addon';
import { writeFileAtomic } from '../util/fs';
import { readOptions } from '../util/options';
import { describeValue, type Device } from './dtype';
import { Tensor } from './tensor';

/** What a file may unpack to unless told otherwise: 4 GiB (tensor storages, inflated records, the pickle's objects). */
export const DEFAULT_MAX_BYTES = 4 * 1024 ** 3;

export interface LoadPytorchOptions {
  /**
   * Where every tensor goes (default 'cpu'), whatever device its storage was saved from: torch.load's
   * `map_location`. A state_dict saved from CUDA loads on a machine without one.
   */
  device?: Device;
  /** The most memory the file's contents may unpack to (default DEFAULT_MAX_BYTES); the file itself may be no larger. */
  maxBytes?: number;
}

function checkLoadOptions(opts: unknown, who: string): { device: Device; maxBytes: number } {
  const o = readOptions(who, opts, ['device', 'maxBytes'], { optional: true });
  return { device: o.deviceOr('device', 'cpu'), maxBytes: o.integerOr('maxBytes', DEFAULT_MAX_BYTES, { min: 1 }) };
}

/** The bytes of torch.save(stateDict) (tensors copied to the CPU, contiguous). */
export function saveBytes(stateDict: Record<string, Tensor>): Uint8Array {
  if (typeof stateDict !== 'object' || stateDict === null || Array.isArray(stateDict) || stateDict instanceof Tensor)
    throw new TypeError(
      `savePytorch: stateDict: expected an object of Tensors by name (module.stateDict()), got ${stateDict instanceof Tensor ? 'a Tensor' : describeValue(stateDict)}`,
    );
  const names = Object.keys(stateDict);
  for (const n of names) if (!(stateDict[n] instanceof Tensor)) throw new TypeError(`savePytorch: '${n}' is not a Tensor`);
  return loadAddon().pickleSave(
    names,
    names.map((n) => stateDict[n]._native),
  );
}

/** Writes `stateDict` to `file` (atomically) as torch.save does: `torch.load(file)` reads it in Python. */
export function savePytorch(stateDict: Record<string, Tensor>, file: string): void {
  if (typeof file !== 'string' || file === '')
    throw new TypeError(`savePytorch: file: expected the path to write (a non-empty string), got ${describeValue(file)}`);
  writeFileAtomic(file, saveBytes(stateDict));
}

/**
 * The state_dict in the bytes of a torch.save'd file, in the file's order, on `opts.device` (default
 * CPU); `what` names the file in errors.
 */
export function loadBytes(bytes: Uint8Array, what: string, opts: LoadPytorchOptions = {}): Record<string, Tensor> {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`loadPytorch: bytes must be a Uint8Array, got ${describeValue(bytes)}`);
  const { device, maxBytes } = checkLoadOptions(opts, 'loadPytorch');
  const { names, tensors } = loadAddon().pickleLoad(bytes, what, { maxBytes });
  const out: Record<string, Tensor> = {};
  names.forEach((n, i) => {
    const t = new Tensor(tensors[i]);
    if (device !== 'cpu') {
      out[n] = t.to(device);
      t.dispose();
    } else out[n] = t;
  });
  return out;
}

/**
 * The state_dict in a torch.save'd file, in the file's order, on `opts.device` (default CPU, whatever
 * device it was saved from). Errors name the file and what is wrong: the key and the sizes of a tensor
 * that disagrees with its storage, the global a hostile pickle names, a legacy (pre-1.6) file.
 */
export function loadPytorch(file: string, opts: LoadPytorchOptions = {}): Record<string, Tensor> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`loadPytorch: file must be a path (a non-empty string), got ${describeValue(file)}`);
  const { maxBytes } = checkLoadOptions(opts, 'loadPytorch');
  let bytes: Buffer;
  try {
    const size = fs.statSync(file).size;
    if (size > maxBytes) throw new Error(`it is ${size} bytes, more than maxBytes (${maxBytes}); a file you trust may be given a larger maxBytes`);
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`loadPytorch: cannot read ${file}: ${(e as Error).message}`);
  }
  return loadBytes(bytes, file, opts);
}
