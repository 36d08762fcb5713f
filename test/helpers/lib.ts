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

/** Runs the built CLI (lib/cli/main.js) to its end: its exit status and output. */
export function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [builtLib(path.join('lib', 'cli', 'main.js')), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

/** A seeded one-epoch run of `preset` on the first 256 MNIST images in a new folder of `saveDir`; its run folder. */
export function tinyRun(preset: string, saveDir: string, seed = 2): string {
  const args = [
    'train',
    '--preset',
    preset,
    '--limit',
    '256',
    '--epochs',
    '1',
    '--seed',
    String(seed),
    '--sample-every',
    '0',
    '--verbose',
    '0',
    '--save-dir',
    saveDir,
  ];
  const r = runCli(args);
  if (r.status !== 0 || r.stderr) throw new Error(`libtorch-gan ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const runs = fs.readdirSync(saveDir).filter((n) => /^run-\d+$/.test(n));
  return path.join(saveDir, runs.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4))).at(-1)!);
}
