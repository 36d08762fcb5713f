/**
 * Acceptance test for packing and installing the npm package:
 *
 * 1. `npm pack` in a clean clone of this repository (`git clone`, so HEAD: commit first; then
 *    `npm ci --ignore-scripts`): prepack compiles the TypeScript and builds one prebuilt binary per
 *    LibTorch in package.json "libtorch.prebuilds" (2.11.0 and 2.15.0), each against that torch's own
 *    headers, from the venvs scripts/torch-venv.sh makes; all must be in the tarball with their build info.
 *    Before that, a prebuild whose torch is not here must stop prepack with the command that makes it;
 *    after it, a second pack keeps the prebuilds as they are, and an edited native source makes them stale.
 * 2. `npm install <tarball>` into empty projects with a PATH that holds only node, npm, npx and sh
 *    (no g++, c++, cc or cmake). npm 11 blocks dependencies' install scripts, so nothing may depend on
 *    ours: the loader picks the prebuild that fits the LibTorch found at load time. With torch 2.15.0 the
 *    2.15.0 prebuild runs a tensor op from `require` and `import`; in a project whose .venv has torch
 *    2.11.0, the CLI trains one limited epoch on the 2.11.0 prebuild. Where no binary fits, loading fails
 *    naming what was found, what is supported and what to run (`libtorch-gan build`, which then fails
 *    clearly without a compiler). Approved (`npm install-scripts approve`), the install script runs and
 *    says which prebuild it took.
 *
 * Slow (minutes: the clone builds the addon twice, and torch 2.11.0 is installed once into
 * .venv-torch/2.11.0): `npm run test:install`. Needs LibTorch through PYTHON (default: this checkout's
 * .venv/bin/python), git, g++ and cmake, and npm's registry or cache for the package's dependencies.
 * LTG_KEEP_TMP=1 keeps the temporary directory.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pinnedLibTorch, prebuildVersions, sourceHash } from '../../ts/native/compat';

jest.setTimeout(15 * 60 * 1000);

const repo = path.resolve(__dirname, '..', '..');
const platformDir = `${process.platform}-${process.arch}`;
const python = process.env.PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { name: string; version: string; files: string[] };

let work = '';
let clone = '';
let tarball = '';
let binDir = '';
type PrebuildInfo = { libtorchVersion: string; cuda: boolean; cudaVersion: string | null; cxx11Abi: number; sourceHash?: string; cudaGraphs?: boolean };
/** The tarball's prebuilds: subfolder (torch-2.15.0-cu132) -> build info. */
const prebuilt = new Map<string, PrebuildInfo>();
/** The prebuild for the default LibTorch (what this checkout's .venv holds), and the oldest one (2.11.0). */
let pinnedTag = '';
let oldTag = '';
let oldPython = '';
const pinned = () => prebuilt.get(pinnedTag)!;

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

/** The venv with torch V for the clone's prepack (.venv-torch/V, made once here and shared). */
function torchVenv(version: string): string {
  const r = ok(
    `scripts/torch-venv.sh ${version}`,
    sh('bash', [path.join(repo, 'scripts', 'torch-venv.sh'), version], { cwd: repo, timeoutMs: 20 * 60 * 1000 }),
  );
  return r.stdout.trim().split('\n').pop()!;
}

/** prepack stops, before building anything, when the torch of a prebuilt version is not here, naming the command that installs it. */
function packRefusesWithoutTorch(old: string): void {
  const r = sh('npm', ['pack', '--dry-run', '--loglevel=warn'], { cwd: clone, env: buildEnv() });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain(
    `make-prebuild: the prebuild for LibTorch ${old} needs building (there is no prebuilt binary for LibTorch ${old}), against torch ${old} itself, which is not here`,
  );
  expect(r.stderr).toContain(`Fix: bash scripts/torch-venv.sh ${old}`);
  expect(fs.existsSync(path.join(clone, 'prebuilds'))).toBe(false);
}

/** npm pack in the clean clone: prepack compiles the TypeScript and builds every prebuild. */
function pack(): void {
  // two native builds: minutes each on a busy 2-core machine
  const r = ok(
    'npm pack',
    sh('npm', ['pack', '--pack-destination', work, '--json', '--loglevel=warn'], { cwd: clone, env: buildEnv(), timeoutMs: 40 * 60 * 1000 }),
  );
  for (const v of prebuildVersions(clone))
    expect(r.stderr).toContain(`make-prebuild: LibTorch ${v}: there is no prebuilt binary for LibTorch ${v}; building it against LibTorch ${v}`);
  const [{ filename, files }] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(work, filename);
  const paths = files.map((f) => f.path);
  for (const want of [
    'lib/index.js',
    'lib/index.mjs',
    'lib/native/locate-libtorch.js',
    'lib/native/compat.js',
    'lib/cli/commands/build.js',
    'native/addon.cc',
    'scripts/install.js',
    'scripts/build-native.js',
    'CMakeLists.txt',
    'binding.gyp',
    'models/mnist-classifier.safetensors',
    'models/mnist-classifier.json',
    'models/fashion-mnist-classifier.safetensors',
    'models/fashion-mnist-classifier.json',
  ]) {
    expect(paths).toContain(want);
  }
  expect(
    paths.some(
      (p) => p.startsWith('build') || p.startsWith('ts/') || p.startsWith('node_modules/') || p.startsWith('scripts/device/') || p.startsWith('.venv'),
    ),
  ).toBe(false);
  // One prebuild per version in package.json, each for that LibTorch, built from the sources in the tarball.
  const nodes = paths.filter((p) => p.startsWith(`prebuilds/${platformDir}/`) && p.endsWith('.node'));
  expect(nodes).toHaveLength(prebuildVersions(clone).length);
  for (const node of nodes) {
    const dir = path.dirname(node);
    expect(paths).toContain(`${dir}/libtorch-gan.json`);
    const info = JSON.parse(ok('tar x', sh('tar', ['xzf', tarball, '-O', `package/${dir}/libtorch-gan.json`], { cwd: work })).stdout) as PrebuildInfo;
    expect(path.basename(dir)).toBe(`torch-${info.libtorchVersion}-${info.cuda ? `cu${info.cudaVersion!.replace('.', '')}` : 'cpu'}`);
    expect(info.sourceHash).toBe(sourceHash(clone));
    prebuilt.set(path.basename(dir), info);
  }
  expect([...prebuilt.values()].map((i) => i.libtorchVersion).sort()).toEqual([...prebuildVersions(clone)].sort());
  pinnedTag = [...prebuilt].find(([, i]) => i.libtorchVersion === pinnedLibTorch(clone))![0];
}

beforeAll(
  () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-install-'));
    makeBareBin();
    cleanClone();
    const old = prebuildVersions(clone).find((v) => v !== pinnedLibTorch(clone))!;
    packRefusesWithoutTorch(old);
    oldPython = torchVenv(old);
    // the clone's prepack finds it where scripts/torch-venv.sh puts it
    fs.mkdirSync(path.join(clone, '.venv-torch'));
    fs.symlinkSync(path.dirname(path.dirname(oldPython)), path.join(clone, '.venv-torch', old));
    pack();
    oldTag = [...prebuilt].find(([, i]) => i.libtorchVersion === old)![0];
  },
  50 * 60 * 1000,
);

afterAll(() => {
  if (work && !process.env.LTG_KEEP_TMP) fs.rmSync(work, { recursive: true, force: true });
  else if (work) console.log(`kept ${work}`);
});

describe('npm pack from a clean clone', () => {
  test('the prebuilds just packed are current: packing again keeps them as they are', () => {
    const r = ok('npm pack --dry-run', sh('npm', ['pack', '--dry-run', '--json', '--loglevel=warn'], { cwd: clone, env: buildEnv() }));
    for (const info of prebuilt.values()) {
      expect(r.stderr).toContain(
        `make-prebuild: prebuilds/${platformDir}: LibTorch ${info.libtorchVersion}: current (sources ${info.sourceHash}): packing it as it is`,
      );
    }
    const files = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
    for (const tag of prebuilt.keys()) expect(files).toContain(`prebuilds/${platformDir}/${tag}/libtorch-gan.node`);
  });

  test('an edited native source makes them stale (prepack would rebuild them)', () => {
    const file = path.join(clone, 'native', 'addon.cc');
    const original = fs.readFileSync(file);
    fs.appendFileSync(file, '// edited\n');
    try {
      const r = sh(process.execPath, [path.join(clone, 'scripts', 'make-prebuild.js'), '--check'], { cwd: clone, env: buildEnv() });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        `LibTorch ${pinned().libtorchVersion}: not current: native/ or CMakeLists.txt changed since it was built (sources ${pinned().sourceHash}, now `,
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

describe('installed from the tarball without a compiler (npm 11: the install script does not run)', () => {
  let app = '';

  beforeAll(
    () => {
      app = newProject('app');
      const r = npm(['install', tarball, ...INSTALL_FLAGS], app);
      if (r.status !== 0) throw new Error(describeRun('npm install <tarball>', r));
    },
    15 * 60 * 1000,
  );

  test('nothing was compiled: no build/ in the installed package, every prebuild there', () => {
    expect(fs.existsSync(path.join(app, 'node_modules', pkg.name, 'build'))).toBe(false);
    expect(fs.readdirSync(path.join(app, 'node_modules', pkg.name, 'prebuilds', platformDir)).sort()).toEqual([...prebuilt.keys()].sort());
  });

  test('require() runs a tensor op with the prebuild for the LibTorch found (the default one)', () => {
    fs.writeFileSync(
      path.join(app, 'req.cjs'),
      "const { torch, info } = require('libtorch-gan');\n" +
        'const i = info();\n' +
        'console.log(JSON.stringify({ sum: torch.ones([2, 2]).add(1).sum().item(), kind: i.binary.kind, tag: i.binary.tag, file: i.binary.file, version: i.libtorch.version }));\n',
    );
    const r = ok('node req.cjs', sh(path.join(binDir, 'node'), ['req.cjs'], { cwd: app, env: bareEnv() }));
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out).toEqual({
      sum: 8,
      kind: 'prebuild',
      tag: pinnedTag,
      file: path.join(app, 'node_modules', pkg.name, 'prebuilds', platformDir, pinnedTag, 'libtorch-gan.node'),
      version: pinned().libtorchVersion,
    });
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

  test('npx libtorch-gan info names the LibTorch found, the supported range and the prebuild loaded', () => {
    const r = ok('npx libtorch-gan info', sh(path.join(binDir, 'npx'), ['--no-install', 'libtorch-gan', 'info'], { cwd: app, env: bareEnv() }));
    expect(r.stdout).toContain(`LibTorch     ${pinned().libtorchVersion}`);
    expect(r.stdout).toMatch(/supported {2}2\.11, 2\.12, 2\.13, 2\.14, 2\.15 \(prebuilt for 2\.11\.0, 2\.15\.0; default 2\.15\.0\)/);
    expect(r.stdout).toContain(`loaded     the prebuild ${pinnedTag}`);
  });

  test('approved (npm install-scripts approve), the install script runs and takes the prebuild', () => {
    ok('npm install-scripts approve', npm(['install-scripts', 'approve', pkg.name], app));
    const r = ok('npm rebuild', npm(['rebuild', pkg.name, '--foreground-scripts'], app));
    expect(r.stdout + r.stderr).toContain(`libtorch-gan: using the prebuilt binary ${pinnedTag} for LibTorch ${pinned().libtorchVersion}`);
    expect(fs.existsSync(path.join(app, 'node_modules', pkg.name, 'build'))).toBe(false);
  });
});

describe('installed into a project whose .venv has torch 2.11.0, without a compiler', () => {
  test('the CLI trains one limited epoch on the 2.11.0 prebuild', () => {
    const app = newProject('app-torch-211');
    fs.symlinkSync(path.dirname(path.dirname(oldPython)), path.join(app, '.venv'));
    const env = { PYTHON: '' }; // found as the project's .venv, as a user's would be
    ok('npm install <tarball>', npm(['install', tarball, ...INSTALL_FLAGS], app, env));
    const info = ok(
      'npx libtorch-gan info --json',
      sh(path.join(binDir, 'npx'), ['--no-install', 'libtorch-gan', 'info', '--json'], { cwd: app, env: bareEnv(env) }),
    );
    const i = JSON.parse(info.stdout);
    expect({ version: i.libtorch.version, kind: i.binary.kind, tag: i.binary.tag }).toEqual({
      version: prebuilt.get(oldTag)!.libtorchVersion,
      kind: 'prebuild',
      tag: oldTag,
    });
    const args = ['--no-install', 'libtorch-gan', 'train', '--preset', 'vanilla', '--limit', '300', '--epochs', '1', '--seed', '1', '--save-dir', 'runs'];
    const r = ok('npx libtorch-gan train (torch 2.11.0)', sh(path.join(binDir, 'npx'), args, { cwd: app, env: bareEnv(env), timeoutMs: 10 * 60 * 1000 }));
    expect(r.stdout).toContain('Training finished');
    const losses = fs
      .readFileSync(path.join(app, 'runs', 'run-1', 'losses.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(losses).toHaveLength(1 + 3); // header + 300 images / batch 100
    expect(
      losses.slice(1).every((row) =>
        row
          .split(',')
          .slice(-2)
          .every((x) => Number.isFinite(Number(x))),
      ),
    ).toBe(true);
    expect(fs.existsSync(path.join(app, 'runs', 'run-1', 'generator.safetensors'))).toBe(true);
  });
});

describe('installed where there is no LibTorch', () => {
  // PATH holds no python3 and PYTHON names none; a system LibTorch would be found (and is not expected).
  const noTorch = { PYTHON: '/nonexistent/python3' };
  const hasSystemLibTorch = fs.existsSync('/usr/include/ATen/ATen.h');

  (hasSystemLibTorch ? test.skip : test)('loading fails with the one command that installs the pinned LibTorch', () => {
    const app = newProject('app-no-torch');
    // whether npm runs our install script or not (npm 11 blocks it unless approved), loading says it
    ok('npm install --ignore-scripts', npm(['install', tarball, ...INSTALL_FLAGS, '--ignore-scripts'], app, noTorch));
    const r = sh(path.join(binDir, 'node'), ['-e', "require('libtorch-gan').torch.ones([2])"], { cwd: app, env: bareEnv(noTorch) });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(
      `LibTorch was not found. Install LibTorch ${pinned().libtorchVersion}, the version libtorch-gan is built for, with:\n` +
        `    python3 -m venv .venv && .venv/bin/python -m pip install torch==${pinned().libtorchVersion}\n`,
    );
    expect(r.stderr).toContain('Python /nonexistent/python3: /nonexistent/python3 could not be run (ENOENT)');
    // then, with torch in the project's .venv (stands in for the printed command), it is found there
    fs.symlinkSync(path.dirname(path.dirname(python)), path.join(app, '.venv'));
    const code = "const { torch, info } = require('libtorch-gan'); console.log(torch.ones([2]).sum().item(), info().binary.tag);";
    const run = ok('node -e', sh(path.join(binDir, 'node'), ['-e', code], { cwd: app, env: bareEnv({ PYTHON: '' }) }));
    expect(run.stdout.trim()).toBe(`2 ${pinnedTag}`);
  });
});

describe('no prebuild for the LibTorch found, without a compiler', () => {
  let fakeTarball = '';

  beforeAll(() => {
    // the same package whose prebuilds claim LibTorch 2.14.0 (in the range, but none is shipped for it)
    const dir = path.join(work, 'mismatch');
    fs.mkdirSync(dir);
    ok('tar x', sh('tar', ['xzf', tarball, '-C', dir], { cwd: work }));
    for (const tag of prebuilt.keys()) {
      const infoFile = path.join(dir, 'package', 'prebuilds', platformDir, tag, 'libtorch-gan.json');
      const info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
      fs.writeFileSync(infoFile, `${JSON.stringify({ ...info, libtorchVersion: '2.14.0' }, null, 2)}\n`);
    }
    fakeTarball = path.join(work, 'libtorch-gan-mismatch.tgz');
    ok('tar c', sh('tar', ['czf', fakeTarball, '-C', dir, 'package'], { cwd: work }));
  });

  test('loading fails naming what was found, the range, each prebuild and what to run; libtorch-gan build says why it cannot', () => {
    const app = newProject('app-mismatch');
    ok('npm install --ignore-scripts', npm(['install', fakeTarball, ...INSTALL_FLAGS, '--ignore-scripts'], app));
    const r = sh(path.join(binDir, 'node'), ['-e', "require('libtorch-gan').torch.ones([2, 2])"], { cwd: app, env: bareEnv() });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`libtorch-gan has no binary for LibTorch ${pinned().libtorchVersion}`);
    expect(r.stderr).toContain('It supports LibTorch 2.11 to 2.15 and ships prebuilt binaries for 2.11.0, 2.15.0');
    for (const tag of prebuilt.keys())
      expect(r.stderr).toContain(`  - prebuilds/${platformDir}/${tag}/libtorch-gan.node (prebuild): built for LibTorch 2.14.0`);
    expect(r.stderr).toContain('build it from source for the LibTorch found: npx libtorch-gan build');
    expect(r.stderr).toContain('npm install-scripts approve libtorch-gan && npm rebuild libtorch-gan');
    const b = sh(path.join(binDir, 'npx'), ['--no-install', 'libtorch-gan', 'build'], { cwd: app, env: bareEnv() });
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/Cannot build from source here: no C\+\+ compiler .* and no cmake on PATH/);
    expect(fs.existsSync(path.join(app, 'node_modules', pkg.name, 'build'))).toBe(false);
  });
});
