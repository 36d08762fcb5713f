import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkCompatible } from '../../ts/native/load';
import { LibTorchNotFoundError, locateLibTorch } from '../../ts/native/locate-libtorch';
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
    const lt = { version: '2.15.0', root: '/opt/torch', source: 'python', cxx11Abi: 1 } as Parameters<typeof checkCompatible>[1];
    expect(() => checkCompatible({ libtorchVersion: '2.16.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 1 }, lt, 'prebuild')).toThrow(
      /built for LibTorch 2\.16\.0, but LibTorch 2\.15\.0 was found[\s\S]*pip install torch==2\.16\.0[\s\S]*npm rebuild libtorch-gan/,
    );
    expect(() => checkCompatible({ libtorchVersion: '2.15.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 0 }, lt, 'prebuild')).toThrow(/_GLIBCXX_USE_CXX11_ABI=0/);
    expect(() => checkCompatible({ libtorchVersion: '2.15.0', cuda: true, cudaVersion: '13.2', cxx11Abi: 1 }, lt, 'prebuild')).not.toThrow();
  });
});
