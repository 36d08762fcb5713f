import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BUILD_INFO_FILE,
  binaryIn,
  chooseBinary,
  incompatibility,
  noBinaryMessage,
  pinnedLibTorch,
  prebuildStaleness,
  prebuildTag,
  prebuildVersions,
  sourceHash,
  supportedLibTorch,
  type BuildInfo,
} from '../../ts/native/compat';
import { findCudaDep } from '../../ts/native/load';
import { cudaHeadersVersion, installCommand, LibTorchNotFoundError, locateLibTorch } from '../../ts/native/locate-libtorch';
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

  /** A fake pip layout: site/torch (a CUDA 13.2 torch 2.15.0) and site/nvidia/<sub>/include with CUDA headers of `cudart`. */
  function fakeSite(cudart: number, sub = 'cu13', crt = true): { site: string; python: string } {
    const site = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-site-'));
    const torchDir = path.join(site, 'torch');
    const put = (rel: string, text = '') => {
      fs.mkdirSync(path.dirname(path.join(torchDir, rel)), { recursive: true });
      fs.writeFileSync(path.join(torchDir, rel), text);
    };
    put('include/ATen/ATen.h', '#pragma once\n');
    put('include/torch/headeronly/version.h', '#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 15\n#define TORCH_VERSION_PATCH 0\n');
    for (const lib of ['torch', 'c10', 'torch_cpu', 'torch_cuda', 'c10_cuda']) put(`lib/lib${lib}.so`, '__cxx11');
    put('version.py', "__version__ = '2.15.0+cu132'\ncuda: Optional[str] = '13.2'\n");
    const inc = path.join(site, 'nvidia', sub, 'include');
    fs.mkdirSync(path.join(inc, 'crt'), { recursive: true });
    fs.writeFileSync(path.join(inc, 'cuda_runtime_api.h'), `#define CUDART_VERSION  ${cudart}\n`);
    if (crt) fs.writeFileSync(path.join(inc, 'crt', 'host_defines.h'), '');
    const python = path.join(site, 'python');
    fs.writeFileSync(python, `#!/bin/sh\necho '${torchDir}'\necho '["${site}"]'\n`, { mode: 0o755 });
    return { site, python };
  }

  it('CUDA headers: only those of the CUDA version torch was built with are compiled against (else no CUDA graphs, saying why)', () => {
    delete process.env.LIBTORCH;
    const good = fakeSite(13020);
    const stale = fakeSite(12080, 'cuda_runtime');
    const partial = fakeSite(13020, 'cu13', false);
    try {
      expect(cudaHeadersVersion(path.join(good.site, 'nvidia', 'cu13', 'include'))).toBe('13.2');
      const a = locateLibTorch({ refresh: true, pythons: [good.python], noSystem: true });
      expect({ cuda: a.cuda, cudaVersion: a.cudaVersion, dirs: a.cudaIncludeDirs, note: a.cudaHeadersNote, sysPath: a.sysPath }).toEqual({
        cuda: true,
        cudaVersion: '13.2',
        dirs: [path.join(good.site, 'nvidia', 'cu13', 'include')],
        note: '',
        sysPath: [good.site],
      });
      const b = locateLibTorch({ refresh: true, pythons: [stale.python], noSystem: true });
      expect(b.cudaIncludeDirs).toEqual([]);
      expect(b.cudaHeadersNote).toContain(
        `${path.join(stale.site, 'nvidia', 'cuda_runtime', 'include')} holds CUDA 12.8 headers, LibTorch was built with CUDA 13.2`,
      );
      const c = locateLibTorch({ refresh: true, pythons: [partial.python], noSystem: true });
      expect(c.cudaIncludeDirs).toEqual([]);
      expect(c.cudaHeadersNote).toContain('lacks crt/host_defines.h (pip install nvidia-cuda-crt)');
    } finally {
      for (const f of [good, stale, partial]) fs.rmSync(f.site, { recursive: true, force: true });
      locateLibTorch({ refresh: true });
    }
  });

  it("CUDA libraries are found on Python's sys.path as torch finds them: nvidia/<folder>/lib, nvidia/cu<major>/lib, <folder>/lib", () => {
    const a = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-nv-'));
    const b = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-nv-'));
    try {
      const touch = (f: string) => {
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, '');
      };
      touch(path.join(a, 'nvidia', 'cu13', 'lib', 'libcublas.so.13'));
      touch(path.join(a, 'nvidia', 'cu13', 'lib', 'libcublasLt.so.13'));
      touch(path.join(b, 'nvidia', 'cudnn', 'lib', 'libcudnn.so.9'));
      touch(path.join(b, 'nvidia', 'cudnn', 'lib', 'libcudnn.so.9.1.0.txt')); // ends in no digit: not a library
      touch(path.join(b, 'nccl', 'lib', 'libnccl.so.2'));
      expect(findCudaDep([a, b], 'cublas', 'libcublas.so.', '13.2')).toBe(path.join(a, 'nvidia', 'cu13', 'lib', 'libcublas.so.13'));
      expect(findCudaDep([a, b], 'cublas', 'libcublas.so.', '12.8')).toBeNull(); // a CUDA 12 torch does not take CUDA 13's merged wheel
      expect(findCudaDep([a, b], 'cudnn', 'libcudnn.so.', '13.2')).toBe(path.join(b, 'nvidia', 'cudnn', 'lib', 'libcudnn.so.9'));
      expect(findCudaDep([a, b], 'nccl', 'libnccl.so.', '13.2')).toBe(path.join(b, 'nccl', 'lib', 'libnccl.so.2'));
      expect(findCudaDep([a, b], 'cufft', 'libcufft.so.', '13.2')).toBeNull();
    } finally {
      fs.rmSync(a, { recursive: true, force: true });
      fs.rmSync(b, { recursive: true, force: true });
    }
  });

  const lt = { version: '2.15.0', fullVersion: '2.15.0+cu132', root: '/opt/torch', source: 'python', cxx11Abi: 1, cuda: true, cudaVersion: '13.2' } as const;
  const cudaBuild: BuildInfo = { libtorchVersion: '2.15.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 1, cudaGraphs: true };

  it('the rule: version, C++ ABI, CUDA LibTorch for a CUDA build, and CUDA graphs need LibTorch’s own CUDA version', () => {
    expect(incompatibility(cudaBuild, lt)).toBeNull();
    expect(incompatibility({ ...cudaBuild, libtorchVersion: '2.16.0' }, lt)).toBe('built for LibTorch 2.16.0');
    expect(incompatibility({ ...cudaBuild, cxx11Abi: 0 }, lt)).toBe('built with _GLIBCXX_USE_CXX11_ABI=0, LibTorch uses 1');
    expect(incompatibility(cudaBuild, { ...lt, cuda: false, cudaVersion: null })).toBe('built for a CUDA LibTorch 2.15.0, found a CPU-only one');
    // torch 2.15.0+cu128 beside a binary compiled with CUDA 13.2's headers: CUDAGraph would be mislaid
    expect(incompatibility(cudaBuild, { ...lt, cudaVersion: '12.8' })).toBe("built with CUDA 13.2's headers (CUDA graphs), this LibTorch uses CUDA 12.8");
    // without CUDA graphs no CUDA header is compiled in: any CUDA flavour of that version runs it
    expect(incompatibility({ ...cudaBuild, cudaGraphs: false }, { ...lt, cudaVersion: '12.8' })).toBeNull();
    const cpuBuild: BuildInfo = { ...cudaBuild, cuda: false, cudaVersion: null, cudaGraphs: false };
    expect(incompatibility(cpuBuild, { ...lt, cuda: false, cudaVersion: null })).toBeNull();
    expect(incompatibility(cpuBuild, lt)).toBeNull();
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

  it('chooseBinary: the first that fits, a source build before the prebuilds, one prebuild per LibTorch', () => {
    const facts = { version: '2.15.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 1 } as const;
    expect(chooseBinary(root, facts)).toEqual({ binary: null, rejected: [] });
    const p215 = path.join(prebuilds(), prebuildTag(info));
    const p211 = path.join(prebuilds(), prebuildTag({ ...info, libtorchVersion: '2.11.0', cudaVersion: '13.0' }));
    expect(path.basename(p215)).toBe('torch-2.15.0-cu132');
    expect(path.basename(p211)).toBe('torch-2.11.0-cu130');
    put(p215, 'libtorch-gan.node', info);
    put(p211, 'libtorch-gan.node', { ...info, libtorchVersion: '2.11.0', cudaVersion: '13.0' });
    expect(chooseBinary(root, facts).binary).toMatchObject({ kind: 'prebuild', file: path.join(p215, 'libtorch-gan.node'), info, infoError: null });
    const old = chooseBinary(root, { ...facts, version: '2.11.0', cudaVersion: '13.0' });
    expect(old.binary?.file).toBe(path.join(p211, 'libtorch-gan.node'));
    expect(old.rejected.map((r) => r.why)).toEqual(['built for LibTorch 2.15.0']);
    // a source build for another LibTorch does not shadow the prebuild that fits
    put(release(), 'libtorch_gan.node', { ...info, libtorchVersion: '2.14.0' });
    const r = chooseBinary(root, facts);
    expect(r.binary?.kind).toBe('prebuild');
    expect(r.rejected.map((x) => [x.binary.kind, x.why])).toEqual([['source', 'built for LibTorch 2.14.0']]);
    // one that fits wins over the prebuilds
    put(release(), 'libtorch_gan.node', info);
    expect(chooseBinary(root, facts).binary?.kind).toBe('source');
    // a LibTorch none fits: nothing, and why for each
    expect(chooseBinary(root, { ...facts, version: '2.13.0' }).rejected.map((x) => x.why)).toEqual([
      'built for LibTorch 2.15.0',
      'built for LibTorch 2.15.0',
      'built for LibTorch 2.11.0',
    ]);
  });

  it('noBinaryMessage: what was found, the range and the prebuilds, why each does not fit, and what to run', () => {
    pkg({ version: '2.15.0', supported: ['2.11', '2.12', '2.13', '2.14', '2.15'], prebuilds: ['2.11.0', '2.15.0'] });
    put(path.join(prebuilds(), 'torch-2.15.0-cu132'), 'libtorch-gan.node', info);
    const lt13 = {
      version: '2.13.0',
      fullVersion: '2.13.0+cu130',
      root: '/opt/torch',
      source: 'python',
      cxx11Abi: 1,
      cuda: true,
      cudaVersion: '13.0',
    } as const;
    const msg = noBinaryMessage(root, lt13, chooseBinary(root, lt13).rejected);
    expect(msg).toContain('libtorch-gan has no binary for LibTorch 2.13.0+cu130 (CUDA 13.0, _GLIBCXX_USE_CXX11_ABI=1; python: /opt/torch).');
    expect(msg).toContain('It supports LibTorch 2.11 to 2.15 and ships prebuilt binaries for 2.11.0, 2.15.0 (linux-x64, CUDA builds).');
    expect(msg).toContain(
      `  - ${path.join('prebuilds', `${process.platform}-${process.arch}`, 'torch-2.15.0-cu132', 'libtorch-gan.node')} (prebuild): built for LibTorch 2.15.0`,
    );
    expect(msg).toContain('  - install a LibTorch it ships a binary for: python3 -m pip install torch==2.15.0');
    expect(msg).toContain('  - build it from source for the LibTorch found: npx libtorch-gan build   (needs g++ and cmake');
    expect(msg).toContain('npm install-scripts approve libtorch-gan && npm rebuild libtorch-gan');
    const lt9 = { ...lt13, version: '2.9.0', fullVersion: '2.9.0+cu128' };
    expect(noBinaryMessage(root, lt9, [])).toContain(
      '  - install a supported LibTorch: python3 -m pip install torch==2.15.0 (or point PYTHON or LIBTORCH at one)',
    );
    expect(noBinaryMessage(root, lt9, [])).toContain('(no binary is here: no build/Release/*.node and nothing under prebuilds/');
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

  it('prebuildStaleness: per LibTorch version: missing, no source hash, other sources, current', () => {
    const dir = path.join(prebuilds(), 'torch-2.15.0-cu132');
    expect(prebuildStaleness(root, '2.15.0')).toBe('there is no prebuilt binary for LibTorch 2.15.0');
    put(dir, 'libtorch-gan.node');
    expect(prebuildStaleness(root, '2.15.0')).toBe('there is no prebuilt binary for LibTorch 2.15.0');
    put(dir, 'libtorch-gan.node', { ...info, libtorchVersion: '2.14.0', sourceHash: sourceHash(root) });
    expect(prebuildStaleness(root, '2.15.0')).toBe('there is no prebuilt binary for LibTorch 2.15.0');
    expect(prebuildStaleness(root, '2.14.0')).toBeNull();
    put(dir, 'libtorch-gan.node', info);
    expect(prebuildStaleness(root, '2.15.0')).toBe('it records no source hash (built by an older version of the build)');
    put(dir, 'libtorch-gan.node', { ...info, sourceHash: '0123456789abcdef' });
    expect(prebuildStaleness(root, '2.15.0')).toBe(`native/ or CMakeLists.txt changed since it was built (sources 0123456789abcdef, now ${sourceHash(root)})`);
    put(dir, 'libtorch-gan.node', { ...info, sourceHash: sourceHash(root) });
    expect(prebuildStaleness(root, '2.15.0')).toBeNull();
  });

  it('the supported range and the prebuilt versions come from package.json, and a bad list is named', () => {
    expect(supportedLibTorch(root)).toEqual(['2.15']);
    expect(prebuildVersions(root)).toEqual(['2.15.0']);
    pkg({ version: '2.15.0', supported: ['2.11', '2.15'], prebuilds: ['2.11.0', '2.15.0'] });
    expect(supportedLibTorch(root)).toEqual(['2.11', '2.15']);
    expect(prebuildVersions(root)).toEqual(['2.11.0', '2.15.0']);
    pkg({ version: '2.15.0', prebuilds: '2.15.0' });
    expect(() => prebuildVersions(root)).toThrow(`"libtorch.prebuilds" must be a non-empty list of versions like "2.15.0", got "2.15.0"`);
    // this package: a range with the default in it, and prebuilds inside the range
    const sup = supportedLibTorch(packageRoot);
    expect(sup).toContain(pinnedLibTorch(packageRoot).split('.').slice(0, 2).join('.'));
    for (const v of prebuildVersions(packageRoot)) expect(sup).toContain(v.split('.').slice(0, 2).join('.'));
  });
});
