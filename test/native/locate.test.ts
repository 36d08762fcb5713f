import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUILD_INFO_FILE, binaryIn, findBinary, incompatibility, pinnedLibTorch, prebuildStaleness, sourceHash, type BuildInfo } from '../../ts/native/compat';
import { checkCompatible } from '../../ts/native/load';
import { installCommand, LibTorchNotFoundError, locateLibTorch } from '../../ts/native/locate-libtorch';
import { packageRoot } from '../../ts/util/package';
import { findPython } from '../helpers/python';

const py = findPython(['torch']);
const itPy = py ? it : it.skip;

describe('LibTorch locator', () => {
  const saved = process.env.LIBTORCH;
  afterEach(() => {
    if (saved === undefined) delete process.env.LIBTORCH;
    else process.env.LIBTORCH = saved;
  });

  itPy('finds Python’s torch and reports version, CUDA build, ABI and C++ standard', () => {
    delete process.env.LIBTORCH;
    const info = locateLibTorch({ refresh: true, pythons: [py!] });
    expect(info.source).toBe('python');
    expect(info.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(info.fullVersion.startsWith(info.version)).toBe(true);
    expect(fs.existsSync(path.join(info.libDir, 'libc10.so'))).toBe(true);
    expect([0, 1]).toContain(info.cxx11Abi);
    expect([17, 20]).toContain(info.cxxStandard);
    expect(info.libraries.slice(0, 2)).toEqual(['c10', 'torch_cpu']);
    if (info.cuda) expect(info.cudaVersion).toMatch(/^\d+\.\d+$/);
  });

  it('a broken LIBTORCH is one clear error naming it and the three ways', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-libtorch-'));
    process.env.LIBTORCH = dir;
    try {
      expect(() => locateLibTorch({ refresh: true })).toThrow(LibTorchNotFoundError);
      expect(() => locateLibTorch({ refresh: true })).toThrow(new RegExp(`LIBTORCH=${dir}: ${dir}/include/ATen/ATen.h is missing`));
      expect(() => locateLibTorch({ refresh: true })).toThrow(/pip install torch[\s\S]*apt-get install libtorch-dev libopenblas0-pthread/);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('Python without torch, a missing interpreter and no system LibTorch: the attempts are listed', () => {
    delete process.env.LIBTORCH;
    const fakePy = path.join(os.tmpdir(), `ltg-no-torch-${process.pid}.sh`);
    fs.writeFileSync(fakePy, '#!/bin/sh\necho ""\n', { mode: 0o755 }); // a "python" whose find_spec finds no torch
    try {
      let err: Error | undefined;
      try {
        locateLibTorch({ refresh: true, pythons: [fakePy, '/nonexistent/python3'], noSystem: true });
      } catch (e) {
        err = e as Error;
      }
      expect(err?.name).toBe('LibTorchNotFoundError');
      expect(err?.message).toContain(`Python ${fakePy}: ${fakePy} has no torch package (python3 -m pip install torch)`);
      expect(err?.message).toContain('Python /nonexistent/python3: /nonexistent/python3 could not be run (ENOENT)');
      expect(err?.message).toContain('export LIBTORCH=/path/to/libtorch');
    } finally {
      fs.rmSync(fakePy);
    }
  });

  it('a binary built for another LibTorch refuses to load with found/built-for/fix', () => {
    const lt = { version: '2.15.0', root: '/opt/torch', source: 'python', cxx11Abi: 1, cuda: true } as Parameters<typeof checkCompatible>[1];
    expect(() => checkCompatible({ libtorchVersion: '2.16.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 1 }, lt, 'prebuild')).toThrow(
      /built for LibTorch 2\.16\.0, but LibTorch 2\.15\.0 was found[\s\S]*pip install torch==2\.16\.0[\s\S]*npm rebuild libtorch-gan/,
    );
    expect(() => checkCompatible({ libtorchVersion: '2.15.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 0 }, lt, 'prebuild')).toThrow(
      /_GLIBCXX_USE_CXX11_ABI=0/,
    );
    expect(() => checkCompatible({ libtorchVersion: '2.15.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 1 }, lt, 'prebuild')).not.toThrow();
  });

  it('a CUDA binary refuses a CPU-only LibTorch; a CPU-only binary runs on either', () => {
    const cpuOnly = { version: '2.15.0', root: '/opt/torch', source: 'python', cxx11Abi: 1, cuda: false } as Parameters<typeof checkCompatible>[1];
    const cudaBuild: BuildInfo = { libtorchVersion: '2.15.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 1 };
    expect(() => checkCompatible(cudaBuild, cpuOnly, 'source', '/x/build/Release/libtorch_gan.node')).toThrow(
      /source binary \(\/x\/build\/Release\/libtorch_gan\.node\) cannot run with LibTorch 2\.15\.0 \(python: \/opt\/torch\): built for a CUDA LibTorch 2\.15\.0, found a CPU-only one[\s\S]*npm rebuild libtorch-gan/,
    );
    const cpuBuild: BuildInfo = { ...cudaBuild, cuda: false, cudaVersion: null };
    expect(incompatibility(cpuBuild, cpuOnly)).toBeNull();
    expect(incompatibility(cpuBuild, { ...cpuOnly, cuda: true })).toBeNull();
  });

  it('a binary without its build info refuses to load, saying what is missing', () => {
    const lt = { version: '2.15.0', root: '/opt/torch', source: 'python', cxx11Abi: 1, cuda: true } as Parameters<typeof checkCompatible>[1];
    expect(() => checkCompatible(null, lt, 'prebuild', '/p/libtorch-gan.node')).toThrow(
      /prebuild binary \(\/p\/libtorch-gan\.node\) cannot run with LibTorch 2\.15\.0 \(python: \/opt\/torch\): no libtorch-gan\.json beside it \(unknown LibTorch\)/,
    );
    expect(incompatibility(null, lt, 'x.json is unreadable (bad)')).toBe('x.json is unreadable (bad) (unknown LibTorch)');
  });
});

describe('binaries and their build info (the rule the loader and scripts/install.js share)', () => {
  let root = '';
  const info: BuildInfo = { libtorchVersion: '2.15.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 1 };
  const release = () => path.join(root, 'build', 'Release');
  const prebuilds = () => path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  const put = (dir: string, name: string, json?: unknown) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, name), 'not really a binary');
    if (json !== undefined) fs.writeFileSync(path.join(dir, BUILD_INFO_FILE), typeof json === 'string' ? json : JSON.stringify(json));
  };
  const pkg = (libtorch: unknown) => fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'x', libtorch }));

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-compat-'));
    fs.mkdirSync(path.join(root, 'native'));
    fs.writeFileSync(path.join(root, 'native', 'a.cc'), 'int a;\n');
    fs.writeFileSync(path.join(root, 'CMakeLists.txt'), 'project(x)\n');
    pkg({ version: '2.15.0' });
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('findBinary: none, a prebuild, then a source build wins over it', () => {
    expect(findBinary(root)).toBeNull();
    put(prebuilds(), 'libtorch-gan.node', info);
    expect(findBinary(root)).toMatchObject({ kind: 'prebuild', file: path.join(prebuilds(), 'libtorch-gan.node'), info, infoError: null });
    put(release(), 'libtorch_gan.node', { ...info, libtorchVersion: '2.14.0' });
    expect(findBinary(root)).toMatchObject({ kind: 'source', info: { libtorchVersion: '2.14.0' } });
  });

  it('binaryIn: missing, unreadable or incomplete build info, and two binaries, are named', () => {
    put(release(), 'libtorch_gan.node');
    expect(binaryIn(release(), 'source')).toMatchObject({ info: null, infoError: `no ${BUILD_INFO_FILE} beside it` });
    fs.writeFileSync(path.join(release(), BUILD_INFO_FILE), '{ nope');
    expect(binaryIn(release(), 'source')?.infoError).toMatch(new RegExp(`^${path.join(release(), BUILD_INFO_FILE)} is unreadable \\(`));
    fs.writeFileSync(path.join(release(), BUILD_INFO_FILE), JSON.stringify({ libtorchVersion: '2.15.0' }));
    expect(binaryIn(release(), 'source')?.infoError).toBe(`${path.join(release(), BUILD_INFO_FILE)} lacks libtorchVersion, cuda or cxx11Abi`);
    put(release(), 'other.node', info);
    expect(binaryIn(release(), 'source')?.infoError).toBe(`${release()} holds 2 binaries (libtorch_gan.node, other.node); expected one`);
  });

  it('pinnedLibTorch reads package.json and names a bad pin', () => {
    expect(pinnedLibTorch(root)).toBe('2.15.0');
    pkg({ version: '2.15' });
    expect(() => pinnedLibTorch(root)).toThrow(`${path.join(root, 'package.json')}: "libtorch.version" must be a LibTorch version like "2.15.0", got "2.15"`);
    pkg(undefined);
    expect(() => pinnedLibTorch(root)).toThrow(/must be a LibTorch version like "2\.15\.0", got undefined/);
  });

  it('the package pins one LibTorch, and the one-command install names it', () => {
    const pin = pinnedLibTorch(packageRoot);
    expect(pin).toMatch(/^\d+\.\d+\.\d+$/);
    // A git clone installs it with the setup script; an installed package with pip at the pin.
    expect(installCommand(packageRoot)).toBe(
      fs.existsSync(path.join(packageRoot, '.git')) ? 'bash scripts/setup.sh' : `python3 -m venv .venv && .venv/bin/python -m pip install torch==${pin}`,
    );
    expect(installCommand(root)).toBe('python3 -m venv .venv && .venv/bin/python -m pip install torch==2.15.0');
    expect(new LibTorchNotFoundError(['x']).message).toContain(
      `Install LibTorch ${pin}, the version libtorch-gan is built for, with:\n    ${installCommand(packageRoot)}\n`,
    );
    expect(new LibTorchNotFoundError(['x']).message).toContain(`python3 -m pip install torch==${pin} `);
  });

  it('sourceHash follows the native sources’ contents, not their times', () => {
    const h = sourceHash(root);
    expect(h).toMatch(/^[0-9a-f]{16}$/);
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(root, 'native', 'a.cc'), later, later);
    expect(sourceHash(root)).toBe(h);
    fs.appendFileSync(path.join(root, 'native', 'a.cc'), '// edited\n');
    expect(sourceHash(root)).not.toBe(h);
    const h2 = sourceHash(root);
    fs.mkdirSync(path.join(root, 'native', 'sub'));
    fs.writeFileSync(path.join(root, 'native', 'sub', 'b.h'), '');
    expect(sourceHash(root)).not.toBe(h2);
    const h3 = sourceHash(root);
    fs.appendFileSync(path.join(root, 'CMakeLists.txt'), '# edited\n');
    expect(sourceHash(root)).not.toBe(h3);
  });

  it('prebuildStaleness: missing, no info, another LibTorch than the pin, other sources, current', () => {
    expect(prebuildStaleness(root, prebuilds())).toBe('there is no prebuilt binary');
    put(prebuilds(), 'libtorch-gan.node');
    expect(prebuildStaleness(root, prebuilds())).toBe(`its build info is missing: no ${BUILD_INFO_FILE} beside it`);
    put(prebuilds(), 'libtorch-gan.node', { ...info, libtorchVersion: '2.14.0', sourceHash: sourceHash(root) });
    expect(prebuildStaleness(root, prebuilds())).toBe('it is built for LibTorch 2.14.0, the package pins 2.15.0');
    put(prebuilds(), 'libtorch-gan.node', info);
    expect(prebuildStaleness(root, prebuilds())).toBe('it records no source hash (built by an older version of the build)');
    put(prebuilds(), 'libtorch-gan.node', { ...info, sourceHash: '0123456789abcdef' });
    expect(prebuildStaleness(root, prebuilds())).toBe(
      `native/ or CMakeLists.txt changed since it was built (sources 0123456789abcdef, now ${sourceHash(root)})`,
    );
    put(prebuilds(), 'libtorch-gan.node', { ...info, sourceHash: sourceHash(root) });
    expect(prebuildStaleness(root, prebuilds())).toBeNull();
  });
});
