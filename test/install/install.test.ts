/**
 * Acceptance test for packing and installing the npm package:
 *
 * 1. `npm pack` in a clean clone of this repository (`git clone`, so HEAD: commit first; then
 *    `npm ci --ignore-scripts`): prepack compiles the TypeScript and builds the prebuilt binary for the
 *    pinned LibTorch (package.json "libtorch.version"), which must be in the tarball with its build info.
 *    Before that, a pin that the LibTorch here does not match must stop prepack with a clear message;
 *    after it, a second pack keeps the prebuild as it is, and an edited native source makes it stale.
 * 2. `npm install <tarball>` into an empty project with a PATH that holds only node, npm, npx and sh
 *    (no g++, c++, cc or cmake). The prebuilt binary must be picked up, and both `require` and
 *    `import` must run a tensor op. A copy whose prebuild claims another LibTorch version must fail to
 *    install with the clear "found X, prebuilt for Y" message.
 *
 * Slow (minutes: the clone builds the addon once): `npm run test:install`. Needs LibTorch through
 * PYTHON (default: this checkout's .venv/bin/python), git, g++ and cmake, and npm's registry or cache
 * for the package's dependencies. LTG_KEEP_TMP=1 keeps the temporary directory.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pinnedLibTorch, sourceHash } from '../../ts/native/compat';

jest.setTimeout(15 * 60 * 1000);

const repo = path.resolve(__dirname, '..', '..');
const platformDir = `${process.platform}-${process.arch}`;
const python = process.env.PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { name: string; version: string; files: string[] };
const hasCli = fs.existsSync(path.join(repo, 'ts', 'cli', 'main.ts'));

let work = '';
let clone = '';
let tarball = '';
let binDir = '';
let prebuildInfo: { libtorchVersion: string; cxx11Abi: number; sourceHash?: string } = { libtorchVersion: '', cxx11Abi: 1 };

type Result = SpawnSyncReturns<string>;

function sh(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Result {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 10 * 60 * 1000,
    maxBuffer: 1 << 26,
  });
  if (r.error) throw r.error;
  return r;
}

function describeRun(what: string, r: Result): string {
  return `${what} exited with ${r.status ?? r.signal}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;
}

function ok(what: string, r: Result): Result {
  if (r.status !== 0) throw new Error(describeRun(what, r));
  return r;
}

/** The environment of a machine without a toolchain: PATH is binDir only; nothing else of ours leaks in. */
function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: binDir, HOME: os.homedir(), PYTHON: python, TMPDIR: os.tmpdir(), LANG: 'C.UTF-8' };
  // Registry access as configured for this user (proxies, a mirror).
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(https?_proxy|no_proxy|npm_config_registry|npm_config_cache|npm_config_userconfig)$/i.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

function npm(args: string[], cwd: string, extra: NodeJS.ProcessEnv = {}): Result {
  return sh(path.join(binDir, 'npm'), args, { cwd, env: bareEnv(extra) });
}

function newProject(name: string): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }, null, 2));
  return dir;
}

const INSTALL_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', '--loglevel=warn'];

/** A bin dir with node, npm, npx and sh only. */
function makeBareBin(): void {
  binDir = path.join(work, 'bin');
  fs.mkdirSync(binDir);
  const which = (name: string) => {
    const r = sh('/bin/sh', ['-c', `command -v ${name}`], { cwd: work });
    if (r.status !== 0) throw new Error(`${name} is not on PATH`);
    return fs.realpathSync(r.stdout.trim());
  };
  fs.symlinkSync(process.execPath, path.join(binDir, 'node'));
  fs.symlinkSync(which('npm'), path.join(binDir, 'npm'));
  fs.symlinkSync(which('npx'), path.join(binDir, 'npx'));
  fs.symlinkSync('/bin/sh', path.join(binDir, 'sh'));
}

/** The full environment (a toolchain: prepack builds) with this checkout's LibTorch. */
const buildEnv = (): NodeJS.ProcessEnv => ({ ...process.env, PYTHON: python, LIBTORCH_GAN_SKIP_INSTALL: '' });

/** A clean clone of HEAD with its dev dependencies (no install scripts: nothing is built yet). */
function cleanClone(): void {
  const dirty = sh('git', ['status', '--porcelain', '--', ...pkg.files.filter((f) => !f.startsWith('!')), 'package.json', 'ts/'], { cwd: repo });
  if (dirty.status === 0 && dirty.stdout.trim()) console.log(`note: the clean clone packs HEAD; uncommitted here:\n${dirty.stdout}`);
  clone = path.join(work, 'clone');
  ok('git clone', sh('git', ['clone', '--quiet', repo, clone], { cwd: work }));
  ok('npm ci --ignore-scripts', sh('npm', ['ci', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=warn'], { cwd: clone }));
  expect(fs.existsSync(path.join(clone, 'prebuilds'))).toBe(false);
  expect(fs.existsSync(path.join(clone, 'build'))).toBe(false);
}

/** prepack stops, before building anything, when the LibTorch here is not the one the package pins. */
function packRefusesAnotherPin(): void {
  const file = path.join(clone, 'package.json');
  const original = fs.readFileSync(file, 'utf8');
  const p = JSON.parse(original);
  const pinned = p.libtorch.version as string;
  const [major, minor] = pinned.split('.').map(Number);
  const other = `${major}.${minor + 1}.0`;
  fs.writeFileSync(file, `${JSON.stringify({ ...p, libtorch: { version: other } }, null, 2)}\n`);
  try {
    const r = sh('npm', ['pack', '--dry-run', '--loglevel=warn'], { cwd: clone, env: buildEnv() });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(
      `make-prebuild: prebuilds/${platformDir} needs building (there is no prebuilt binary), and it must be built for the LibTorch the package pins, ${other}`,
    );
    expect(r.stderr).toContain(`but LibTorch ${pinned}`);
    expect(r.stderr).toContain('Fix: install the pinned one');
    expect(fs.existsSync(path.join(clone, 'prebuilds', platformDir))).toBe(false);
  } finally {
    fs.writeFileSync(file, original);
  }
}

/** npm pack in the clean clone: prepack compiles the TypeScript and builds the prebuild. */
function pack(): void {
  const r = ok('npm pack', sh('npm', ['pack', '--pack-destination', work, '--json', '--loglevel=warn'], { cwd: clone, env: buildEnv() }));
  expect(r.stderr).toContain(`make-prebuild: prebuilds/${platformDir}: there is no prebuilt binary; building it for LibTorch ${pinnedLibTorch(clone)}`);
  const [{ filename, files }] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(work, filename);
  const paths = files.map((f) => f.path);
  for (const want of [
    'lib/index.js',
    'lib/index.mjs',
    'lib/native/locate-libtorch.js',
    'lib/native/compat.js',
    `prebuilds/${platformDir}/libtorch-gan.json`,
    `prebuilds/${platformDir}/libtorch-gan.node`,
    'native/addon.cc',
    'scripts/install.js',
    'scripts/build-native.js',
    'CMakeLists.txt',
    'binding.gyp',
    'models/mnist-classifier.safetensors',
    'models/mnist-classifier.json',
  ]) {
    expect(paths).toContain(want);
  }
  expect(paths.filter((p) => p.startsWith(`prebuilds/${platformDir}/`) && p.endsWith('.node'))).toHaveLength(1);
  expect(paths.some((p) => p.startsWith('build/') || p.startsWith('ts/') || p.startsWith('node_modules/') || p.startsWith('scripts/device/'))).toBe(false);
  // The binary in the tarball is for the pinned LibTorch, built from the sources in the tarball.
  const listed = ok('tar x', sh('tar', ['xzf', tarball, '-O', `package/prebuilds/${platformDir}/libtorch-gan.json`], { cwd: work }));
  prebuildInfo = JSON.parse(listed.stdout);
  expect(prebuildInfo.libtorchVersion).toBe(pinnedLibTorch(clone));
  expect(prebuildInfo.sourceHash).toBe(sourceHash(clone));
}

beforeAll(
  () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-install-'));
    makeBareBin();
    cleanClone();
    packRefusesAnotherPin();
    pack();
  },
  15 * 60 * 1000,
);

afterAll(() => {
  if (work && !process.env.LTG_KEEP_TMP) fs.rmSync(work, { recursive: true, force: true });
  else if (work) console.log(`kept ${work}`);
});

describe('npm pack from a clean clone', () => {
  test('the prebuild just packed is current: packing again keeps it as it is', () => {
    const r = ok('npm pack --dry-run', sh('npm', ['pack', '--dry-run', '--json', '--loglevel=warn'], { cwd: clone, env: buildEnv() }));
    expect(r.stderr).toContain(
      `make-prebuild: prebuilds/${platformDir} is current (LibTorch ${prebuildInfo.libtorchVersion}, sources ${prebuildInfo.sourceHash}): packing it as it is`,
    );
    expect(JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path)).toContain(`prebuilds/${platformDir}/libtorch-gan.node`);
  });

  test('an edited native source makes it stale (prepack would rebuild it)', () => {
    const file = path.join(clone, 'native', 'addon.cc');
    const original = fs.readFileSync(file);
    fs.appendFileSync(file, '// edited\n');
    try {
      const r = sh(process.execPath, [path.join(clone, 'scripts', 'make-prebuild.js'), '--check'], { cwd: clone, env: buildEnv() });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        `prebuilds/${platformDir} is not current: native/ or CMakeLists.txt changed since it was built (sources ${prebuildInfo.sourceHash}, now `,
      );
    } finally {
      fs.writeFileSync(file, original);
    }
    ok('make-prebuild --check', sh(process.execPath, [path.join(clone, 'scripts', 'make-prebuild.js'), '--check'], { cwd: clone, env: buildEnv() }));
  });
});

test('the bare PATH has no C++ compiler and no cmake', () => {
  for (const tool of ['g++', 'c++', 'cc', 'cmake', 'gcc', 'clang++', 'make']) {
    // `command -v` is `which` built into sh (no /usr/bin/which needed).
    const r = sh('/bin/sh', ['-c', `command -v ${tool}`], { cwd: work, env: bareEnv() });
    expect({ tool, found: r.stdout.trim() }).toEqual({ tool, found: '' });
    expect(r.status).not.toBe(0);
  }
  expect(ok('command -v node', sh('/bin/sh', ['-c', 'command -v node npm'], { cwd: work, env: bareEnv() })).stdout).toContain(binDir);
});

describe('installed from the tarball without a compiler', () => {
  let app = '';

  beforeAll(
    () => {
      app = newProject('app');
      const r = npm(['install', tarball, ...INSTALL_FLAGS], app);
      if (r.status !== 0) throw new Error(describeRun('npm install <tarball>', r));
      // --foreground-scripts shows the install hook's one line.
      expect(r.stdout + r.stderr).toMatch(
        new RegExp(`libtorch-gan: using the prebuilt binary for LibTorch ${prebuildInfo.libtorchVersion.replace(/\./g, '\\.')}`),
      );
    },
    15 * 60 * 1000,
  );

  test('nothing was compiled: no build/ in the installed package', () => {
    expect(fs.existsSync(path.join(app, 'node_modules', pkg.name, 'build'))).toBe(false);
    expect(fs.readdirSync(path.join(app, 'node_modules', pkg.name, 'prebuilds', platformDir))).toContain('libtorch-gan.node');
  });

  test('require() runs a tensor op with the prebuilt binary', () => {
    fs.writeFileSync(
      path.join(app, 'req.cjs'),
      "const { torch, info } = require('libtorch-gan');\n" +
        'const i = info();\n' +
        'console.log(JSON.stringify({ sum: torch.ones([2, 2]).add(1).sum().item(), kind: i.binary.kind, file: i.binary.file, version: i.libtorch.version }));\n',
    );
    const r = ok('node req.cjs', sh(path.join(binDir, 'node'), ['req.cjs'], { cwd: app, env: bareEnv() }));
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.sum).toBe(8);
    expect(out.kind).toBe('prebuild');
    expect(out.file).toBe(path.join(app, 'node_modules', pkg.name, 'prebuilds', platformDir, 'libtorch-gan.node'));
    expect(out.version).toBe(prebuildInfo.libtorchVersion);
  });

  test('the shipped MNIST classifier loads from the installed package (checksum verified)', () => {
    const code =
      "const { loadMnistClassifier } = require('libtorch-gan'); const { model, record } = loadMnistClassifier(); console.log(JSON.stringify({ n: model.numParameters(), acc: record.testAccuracy }));";
    const r = ok('node -e', sh(path.join(binDir, 'node'), ['-e', code], { cwd: app, env: bareEnv() }));
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ n: 130890, acc: 0.9931 });
  });

  test('import() runs a tensor op (ES module entry)', () => {
    fs.writeFileSync(
      path.join(app, 'imp.mjs'),
      "import lt, { torch } from 'libtorch-gan';\n" +
        "const dyn = await import('libtorch-gan');\n" +
        'console.log(JSON.stringify({ sum: torch.ones([2, 2]).add(1).sum().item(), same: dyn.torch === lt.torch && lt.torch === torch }));\n',
    );
    const r = ok('node imp.mjs', sh(path.join(binDir, 'node'), ['imp.mjs'], { cwd: app, env: bareEnv() }));
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ sum: 8, same: true });
  });

  test('installed with --ignore-scripts (npm allowScripts, pnpm), the prebuild still loads', () => {
    const bare = newProject('app-ignore-scripts');
    ok('npm install --ignore-scripts', npm(['install', tarball, ...INSTALL_FLAGS, '--ignore-scripts'], bare));
    const code = "const { torch } = require('libtorch-gan'); console.log(torch.ones([2, 2]).add(1).sum().item());";
    const r = ok('node -e', sh(path.join(binDir, 'node'), ['-e', code], { cwd: bare, env: bareEnv() }));
    expect(r.stdout.trim()).toBe('8');
  });

  (hasCli ? test : test.skip)(
    hasCli ? 'npx libtorch-gan info reports the LibTorch found' : 'TODO: npx libtorch-gan info (lib/cli/main.js is not written yet)',
    () => {
      const r = ok('npx libtorch-gan info', sh(path.join(binDir, 'npx'), ['--no-install', 'libtorch-gan', 'info'], { cwd: app, env: bareEnv() }));
      expect(r.stdout).toContain(prebuildInfo.libtorchVersion);
    },
  );
});

describe('installed where there is no LibTorch', () => {
  // PATH holds no python3 and PYTHON names none; a system LibTorch would be found (and is not expected).
  const noTorch = { PYTHON: '/nonexistent/python3' };
  const hasSystemLibTorch = fs.existsSync('/usr/include/ATen/ATen.h');
  let app = '';

  (hasSystemLibTorch ? test.skip : test)('npm install fails and prints the one command that installs the pinned LibTorch', () => {
    app = newProject('app-no-torch');
    const r = npm(['install', tarball, ...INSTALL_FLAGS], app, noTorch);
    const out = r.stdout + r.stderr;
    expect(r.status).not.toBe(0);
    expect(out).toContain(
      `libtorch-gan: LibTorch was not found. Install LibTorch ${prebuildInfo.libtorchVersion}, the version libtorch-gan is built for, with:\n` +
        `    python3 -m venv .venv && .venv/bin/python -m pip install torch==${prebuildInfo.libtorchVersion}\n` +
        "(in your project's folder), then run npm install again",
    );
    expect(out).toContain('Python /nonexistent/python3: /nonexistent/python3 could not be run (ENOENT)');
  });

  (hasSystemLibTorch ? test.skip : test)("then, with torch in the project's .venv, npm install finds it there (INIT_CWD) and at run time", () => {
    // Stands in for the printed command: this checkout's .venv holds the pinned torch.
    fs.symlinkSync(path.dirname(path.dirname(python)), path.join(app, '.venv'));
    const env = { PYTHON: '' };
    const r = ok('npm install (with .venv)', npm(['install', tarball, ...INSTALL_FLAGS], app, env));
    expect(r.stdout + r.stderr).toContain(`libtorch-gan: using the prebuilt binary for LibTorch ${prebuildInfo.libtorchVersion}`);
    const code = "const { torch, info } = require('libtorch-gan'); console.log(torch.ones([2]).sum().item(), info().libtorch.path);";
    const run = ok('node -e', sh(path.join(binDir, 'node'), ['-e', code], { cwd: app, env: bareEnv(env) }));
    expect(run.stdout.trim()).toMatch(/^2 /);
  });
});

describe('a prebuild for another LibTorch, without a compiler', () => {
  let fakeTarball = '';
  let fakeVersion = '';

  beforeAll(() => {
    const dir = path.join(work, 'mismatch');
    fs.mkdirSync(dir);
    ok('tar x', sh('tar', ['xzf', tarball, '-C', dir], { cwd: work }));
    const infoFile = path.join(dir, 'package', 'prebuilds', platformDir, 'libtorch-gan.json');
    const info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
    const [major, minor] = String(info.libtorchVersion).split('.').map(Number);
    fakeVersion = `${major}.${minor + 1}.0`;
    fs.writeFileSync(infoFile, `${JSON.stringify({ ...info, libtorchVersion: fakeVersion }, null, 2)}\n`);
    fakeTarball = path.join(work, 'libtorch-gan-mismatch.tgz');
    ok('tar c', sh('tar', ['czf', fakeTarball, '-C', dir, 'package'], { cwd: work }));
  });

  test('npm install fails with "found X, prebuilt for Y; no compiler" and the fixes', () => {
    const app = newProject('app-mismatch');
    const r = npm(['install', fakeTarball, ...INSTALL_FLAGS], app);
    const out = r.stdout + r.stderr;
    expect(r.status).not.toBe(0);
    expect(out).toContain(`libtorch-gan: found LibTorch ${prebuildInfo.libtorchVersion}`);
    expect(out).toContain(`, prebuilt for LibTorch ${fakeVersion} (`);
    expect(out).toMatch(/cannot build from source: no C\+\+ compiler .* and no cmake/);
    expect(out).toContain(`torch==${fakeVersion}`);
    expect(out).toContain('npm rebuild libtorch-gan');
    expect(fs.existsSync(path.join(app, 'node_modules', pkg.name))).toBe(false);
  });

  test('installed with LIBTORCH_GAN_SKIP_INSTALL=1, loading fails with the same diagnosis', () => {
    const app = newProject('app-mismatch-skip');
    ok('npm install (skip)', npm(['install', fakeTarball, ...INSTALL_FLAGS], app, { LIBTORCH_GAN_SKIP_INSTALL: '1' }));
    fs.writeFileSync(path.join(app, 'req.cjs'), "const { torch } = require('libtorch-gan');\ntorch.ones([2, 2]);\n");
    const r = sh(path.join(binDir, 'node'), ['req.cjs'], { cwd: app, env: bareEnv() });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`built for LibTorch ${fakeVersion}, but LibTorch ${prebuildInfo.libtorchVersion} was found`);
    expect(r.stderr).toContain('npm rebuild libtorch-gan');
  });
});
