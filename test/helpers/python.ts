import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const repoRoot = path.resolve(__dirname, '..', '..');
const cache = new Map<string, string | null>();

/**
 * A Python interpreter that can import every module in `modules` (PYTHON, then the project's .venv,
 * then python3), or null. Tests that need PyTorch as the reference skip or fall back when it is null.
 */
export function findPython(modules: string[] = ['torch']): string | null {
  const key = modules.join(',');
  if (cache.has(key)) return cache.get(key)!;
  const candidates = [process.env.PYTHON, path.join(repoRoot, '.venv', 'bin', 'python'), 'python3'].filter(
    (p): p is string => !!p && (!p.includes('/') || fs.existsSync(p)),
  );
  let found: string | null = null;
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', modules.map((m) => `import ${m}`).join('; ') || 'pass'], { encoding: 'utf8' });
    if (r.status === 0) {
      found = py;
      break;
    }
  }
  cache.set(key, found);
  return found;
}

/** Runs a Python snippet (or script file with args) and returns stdout; throws with stderr on failure. */
export function runPython(py: string, args: string[], opts: { input?: string; cwd?: string } = {}): string {
  const r = spawnSync(py, args, { encoding: 'utf8', input: opts.input, cwd: opts.cwd, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}
