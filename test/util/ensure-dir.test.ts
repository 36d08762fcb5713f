/**
 * ensureDir (util/fs.ts): the one helper that creates folders. Node's recursive mkdir spins at 100%
 * CPU forever under /proc (mkdir answers ENOENT although the parent exists), so the /proc cases run
 * in a child process with a time limit: a hang fails the test instead of freezing the suite.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRunDir } from '../../ts/store/run-dir';
import { ensureDir, FileError, writeFileAtomic } from '../../ts/util/fs';

const repo = path.resolve(__dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-ensure-dir-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs `body` in a child node with util/fs.ts (transpiled, it imports only node:) as `f`; returns its stdout lines. */
function inChild(body: string): { status: number | null; signal: NodeJS.Signals | null; lines: string[] } {
  const script = `
    const ts = require(${JSON.stringify(path.join(repo, 'node_modules', 'typescript'))});
    const src = require('node:fs').readFileSync(${JSON.stringify(path.join(repo, 'ts', 'util', 'fs.ts'))}, 'utf8');
    const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
    const m = { exports: {} };
    new Function('require', 'module', 'exports', out)(require, m, m.exports);
    const f = m.exports;
    const attempt = (fn) => { try { fn(); console.log('no error'); } catch (e) { console.log(e.name + ' ' + e.code + ' ' + e.message); } };
    ${body}`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15000 });
  return { status: r.status, signal: r.signal, lines: r.stdout.trim().split('\n') };
}

describe('ensureDir under /proc gives up with an error naming the path (no endless mkdir)', () => {
  it('writeFileAtomic and ensureDir on /proc/self/... and /proc/x return at once with a FileError', () => {
    const r = inChild(`
      attempt(() => f.writeFileAtomic('/proc/self/ltg-x/y/f.bin', 'x'));
      attempt(() => f.ensureDir('/proc/self/ltg-x/y', 'save folder'));
      attempt(() => f.ensureDir('/proc/ltg-x', 'save folder'));
      attempt(() => f.ensureDir('/proc/self/fd/ltg-x', 'save folder'));`);
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    expect(r.lines).toHaveLength(4);
    expect(r.lines[0]).toMatch(
      /^FileError E(PERM|ACCES) cannot create folder \/proc\/self\/ltg-x\/y: \/proc\/self \(the nearest existing folder\) is not writable/,
    );
    expect(r.lines[1]).toMatch(
      /^FileError E(PERM|ACCES) cannot create save folder \/proc\/self\/ltg-x\/y: \/proc\/self \(the nearest existing folder\) is not writable/,
    );
    // root may write /proc, whose mkdir then answers ENOENT; others may not write it at all
    expect(r.lines[2]).toMatch(
      /^FileError (ENOENT cannot create save folder \/proc\/ltg-x: mkdir \/proc\/ltg-x: the file system of \/proc does not allow new folders \(ENOENT\)|EACCES cannot create save folder \/proc\/ltg-x: \/proc \(the nearest existing folder\) is not writable)/,
    );
    expect(r.lines[3]).toMatch(/^FileError E\w+ cannot create save folder \/proc\/self\/fd\/ltg-x: /);
  }, 30000);
});

describe('ensureDir', () => {
  it('creates the missing chain, returns the absolute path, and is a no-op on an existing folder', () => {
    const d = path.join(tmp, 'a', 'b', 'c');
    expect(ensureDir(path.relative(process.cwd(), d))).toBe(d);
    expect(fs.statSync(d).isDirectory()).toBe(true);
    expect(ensureDir(d)).toBe(d);
  });

  it('refuses a path with a file among its ancestors, naming that file, and creates nothing', () => {
    const file = path.join(tmp, 'plain-file');
    fs.writeFileSync(file, 'x');
    const target = path.join(file, 'sub', 'dir');
    let err: unknown;
    try {
      ensureDir(target, 'save folder');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FileError);
    expect(err).toMatchObject({ code: 'ENOTDIR', path: file, message: `cannot create save folder ${target}: ${file} exists and is not a folder` });
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
    // the path itself a file
    expect(() => ensureDir(file, 'run folder')).toThrow(`cannot create run folder ${file}: ${file} exists and is not a folder`);
  });

  (process.getuid?.() === 0 ? it.skip : it)('refuses a folder whose nearest existing ancestor is not writable', () => {
    const ro = path.join(tmp, 'read-only');
    fs.mkdirSync(ro, { mode: 0o555 });
    expect(() => ensureDir(path.join(ro, 'x', 'y'))).toThrow(`${ro} (the nearest existing folder) is not writable`);
    expect(fs.readdirSync(ro)).toEqual([]);
  });

  it('writeFileAtomic and createRunDir go through it: a file where the folder should be is named', () => {
    const file = path.join(tmp, 'not-a-folder');
    fs.writeFileSync(file, 'x');
    expect(() => writeFileAtomic(path.join(file, 'out.bin'), 'data')).toThrow(`cannot create folder ${file}: ${file} exists and is not a folder`);
    expect(() => createRunDir(file)).toThrow(`cannot create save folder ${file}: ${file} exists and is not a folder`);
    expect(() => createRunDir(path.join(file, 'runs'))).toThrow(`cannot create save folder ${path.join(file, 'runs')}: ${file} exists and is not a folder`);
    expect(createRunDir(path.join(tmp, 'runs', 'deep'))).toBe(path.join(tmp, 'runs', 'deep', 'run-1'));
  });
});
