import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const repoRoot = path.resolve(__dirname, '..', '..');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The compiled package file `rel` (e.g. 'lib/index.js'), compiled from ts/ first when it is missing or
 * older than any source: tests that run the package in child processes (the CLI, crashes, memory) run
 * what users run. Throws when it still does not exist.
 */
export function builtLib(rel = path.join('lib', 'index.js')): string {
  const file = path.join(repoRoot, rel);
  if (!fs.existsSync(file) || newestMtime(path.join(repoRoot, 'ts')) > fs.statSync(file).mtimeMs) {
    // tsc writes the JavaScript even when some other file has type errors; the existence check is what matters
    spawnSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
      cwd: repoRoot,
      stdio: 'ignore',
    });
    spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'esm-wrapper.js')], { cwd: repoRoot, stdio: 'ignore' });
  }
  if (!fs.existsSync(file)) throw new Error(`${file} is missing and compiling ts/ did not make it (run npm run build:ts)`);
  return file;
}
