/**
 * A LibTorch error reaches JS with LibTorch's message and no C++ frames in it; its backtrace rides on
 * `nativeBacktrace` only where TORCH_SHOW_CPP_STACKTRACES=1 asks (as PyTorch's), since symbolizing costs.
 * Child processes: the addon reads the variable from the process's environment.
 */
import { spawnSync } from 'node:child_process';
import { builtLib } from '../helpers/lib';

const lib = builtLib();
const FRAME = /frame #\d+:/;

function nativeError(env: Record<string, string>): { message: string; nativeBacktrace?: string } {
  const script = `
const { torch } = require(${JSON.stringify(lib)});
try { torch.randn([2]).reshape([7]); } catch (e) { console.log(JSON.stringify({ message: e.message, nativeBacktrace: e.nativeBacktrace })); }`;
  const base = { ...process.env };
  delete base.TORCH_SHOW_CPP_STACKTRACES;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...base, ...env }, timeout: 60_000 });
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout.trim());
}

describe('native errors', () => {
  it('carry no C++ frames, in the message or elsewhere, by default', () => {
    const e = nativeError({});
    expect(e.message).toBe("shape '[7]' is invalid for input of size 2");
    expect(e.nativeBacktrace).toBeUndefined();
  });

  it('keep the backtrace on nativeBacktrace, off the message, with TORCH_SHOW_CPP_STACKTRACES=1', () => {
    const e = nativeError({ TORCH_SHOW_CPP_STACKTRACES: '1' });
    expect(e.message).toBe("shape '[7]' is invalid for input of size 2");
    expect(e.nativeBacktrace).toMatch(/Exception raised from /);
    expect(e.nativeBacktrace).toMatch(FRAME);
  });
});
