/**
 * PyTorch's own checkpoint files: a state_dict written as torch.save writes it (the zip format
 * torch.load reads) and read back from a torch.save'd `.pt`/`.pth`, both through LibTorch's pickler and
 * unpickler. The unpickler builds tensors and containers only: a pickle naming any other global (code to
 * run) is refused with an error, never run.
 */
import * as fs from 'node:fs';
import { loadAddon } from '../native/addon';
import { writeFileAtomic } from '../util/fs';
import { type Device, describeValue } from './dtype';
import { Tensor } from './tensor';

/** The bytes of torch.save(stateDict) (tensors copied to the CPU, contiguous). */
export function saveBytes(stateDict: Record<string, Tensor>): Uint8Array {
  const names = Object.keys(stateDict);
  for (const n of names) if (!(stateDict[n] instanceof Tensor)) throw new TypeError(`savePytorch: '${n}' is not a Tensor`);
  return loadAddon().pickleSave(
    names,
    names.map((n) => stateDict[n]._native),
  );
}

/** Writes `stateDict` to `file` (atomically) as torch.save does: `torch.load(file)` reads it in Python. */
export function savePytorch(stateDict: Record<string, Tensor>, file: string): void {
  if (typeof stateDict !== 'object' || stateDict === null || Array.isArray(stateDict) || stateDict instanceof Tensor)
    throw new TypeError(
      `savePytorch: stateDict: expected an object of Tensors by name (module.stateDict()), got ${stateDict instanceof Tensor ? 'a Tensor' : describeValue(stateDict)}`,
    );
  if (typeof file !== 'string' || file === '')
    throw new TypeError(`savePytorch: file: expected the path to write (a non-empty string), got ${describeValue(file)}`);
  writeFileAtomic(file, saveBytes(stateDict));
}

/** The state_dict in a torch.save'd file, in the file's order, on `device` (default CPU). */
export function loadPytorch(file: string, opts: { device?: Device } = {}): Record<string, Tensor> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`loadPytorch: cannot read ${file}: ${(e as Error).message}`);
  }
  const { names, tensors } = loadAddon().pickleLoad(bytes, file);
  const out: Record<string, Tensor> = {};
  names.forEach((n, i) => {
    const t = new Tensor(tensors[i]);
    if (opts.device && opts.device !== 'cpu') {
      out[n] = t.to(opts.device);
      t.dispose();
    } else out[n] = t;
  });
  return out;
}
