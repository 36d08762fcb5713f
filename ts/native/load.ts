/**
 * Loads the native addon: finds LibTorch with the locator, takes the first binary built for that
 * LibTorch (the rule in compat.ts: version, C++ ABI, CUDA; a source build, else the prebuild for that
 * version), preloads LibTorch's libraries and, for a CUDA LibTorch, the CUDA libraries pip installed
 * beside it the way Python's torch does (so a prebuilt binary works wherever LibTorch is installed,
 * without LD_LIBRARY_PATH), then loads the binary. Loading is lazy: importing the package does nothing
 * until the first tensor is made.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../util/package';
import { type NativeAddon } from './addon';
import { chooseBinary, noBinaryMessage, type Binary } from './compat';
import { locateLibTorch, type LibTorchInfo } from './locate-libtorch';

export type { BuildInfo } from './compat';

export class AddonLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddonLoadError';
  }
}

let addon: NativeAddon | undefined;
let libtorch: LibTorchInfo | undefined;
let loaded: Binary | undefined;

const DLOPEN_FLAGS = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL;

/** dlopen a plain library for good (RTLD_GLOBAL); the error message, or null when loaded. */
function dlopenGlobal(file: string): string | null {
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, file, DLOPEN_FLAGS);
    return null;
  } catch (e) {
    // "did not self-register" is expected: these are plain libraries, not addons; they are loaded.
    const msg = (e as Error).message;
    return /did not self-register|Module did not self-register/.test(msg) ? null : msg;
  }
}

/**
 * pip's CUDA libraries torch needs, in the order torch/__init__.py's _preload_cuda_deps loads them
 * (cublasLt before cublas, so cublas does not pick a system copy): [folder under nvidia/, file prefix].
 */
const CUDA_DEPS: [string, string][] = [
  ['cublas', 'libcublasLt.so.'],
  ['cublas', 'libcublas.so.'],
  ['cudnn', 'libcudnn.so.'],
  ['cuda_nvrtc', 'libnvrtc.so.'],
  ['cuda_nvrtc', 'libnvrtc-builtins.so.'],
  ['cuda_runtime', 'libcudart.so.'],
  ['cuda_cupti', 'libcupti.so.'],
  ['cufft', 'libcufft.so.'],
  ['nvjitlink', 'libnvJitLink.so.'],
  ['cusparse', 'libcusparse.so.'],
  ['cusparselt', 'libcusparseLt.so.'],
  ['cusolver', 'libcusolver.so.'],
  ['nccl', 'libnccl.so.'],
  ['nvshmem', 'libnvshmem_host.so.'],
  ['cufile', 'libcufile.so.'],
  ['nvtx', 'libnvToolsExt.so.'],
];

/**
 * Where a CUDA dependency lives under Python's sys.path, as torch finds it: <p>/nvidia/<folder>/lib,
 * <p>/nvidia/cu<major>/lib (CUDA 13's merged wheel) or <p>/<folder>/lib; the first match, or null.
 */
export function findCudaDep(sysPath: string[], folder: string, prefix: string, cudaVersion: string | null): string | null {
  const major = cudaVersion?.split('.')[0];
  for (const p of sysPath) {
    const dirs = [path.join(p, 'nvidia', folder, 'lib')];
    if (major) dirs.push(path.join(p, 'nvidia', `cu${major}`, 'lib'));
    dirs.push(path.join(p, folder, 'lib'));
    for (const d of dirs) {
      let names: string[];
      try {
        names = fs.readdirSync(d);
      } catch {
        continue;
      }
      // libcublas.so.13, not libcublas.so.13.4.1 (torch's glob ends in a digit; either loads the same)
      const hit = names.filter((n) => n.startsWith(prefix) && /\d$/.test(n)).sort((a, b) => a.length - b.length)[0];
      if (hit) return path.join(d, hit);
    }
  }
  return null;
}

/**
 * What Python's torch does on import (torch/__init__.py _load_global_deps): load
 * libtorch_global_deps.so globally; when that fails for a missing CUDA library (pip put the nvidia
 * wheels in another site-packages than torch, where its RUNPATH does not look), or when it loaded,
 * preload the CUDA libraries found on sys.path first, so later dlopens (nvrtc, cuDNN's) find them too.
 */
function preloadCuda(lt: LibTorchInfo): void {
  const globalDeps = path.join(lt.libDir, 'libtorch_global_deps.so');
  const sysPath = lt.sysPath ?? [];
  const preloadDeps = () => {
    for (const [folder, prefix] of CUDA_DEPS) {
      const f = findCudaDep(sysPath, folder, prefix, lt.cudaVersion);
      if (f) dlopenGlobal(f); // best effort, as torch's required=False: RUNPATH covers what is not here
    }
  };
  if (!fs.existsSync(globalDeps)) {
    preloadDeps();
    return;
  }
  const err = dlopenGlobal(globalDeps);
  if (err === null) {
    preloadDeps();
    return;
  }
  preloadDeps();
  const again = dlopenGlobal(globalDeps);
  if (again !== null) {
    throw new AddonLoadError(
      `could not load ${globalDeps}: ${again}\nLibTorch ${lt.fullVersion} is a CUDA build and needs its CUDA libraries (pip's nvidia-* packages); ` +
        `they were looked for beside torch and under Python's sys.path (${sysPath.join(', ') || 'unknown'}). Reinstall torch with its dependencies: python3 -m pip install --force-reinstall torch==${lt.fullVersion.split('+')[0]}`,
    );
  }
}

/** LibTorch's libraries stay resident once loaded with RTLD_GLOBAL, and then satisfy the addon's NEEDED entries. */
function preload(lt: LibTorchInfo): void {
  if (lt.cuda) preloadCuda(lt);
  for (const name of lt.libraries) {
    const file = path.join(lt.libDir, `lib${name}.so`);
    if (!fs.existsSync(file)) continue;
    const err = dlopenGlobal(file);
    if (err !== null) throw new AddonLoadError(`could not load ${file}: ${err}`);
  }
}

export function loadAddon(): NativeAddon {
  if (addon) return addon;
  const lt = locateLibTorch();
  const { binary: bin, rejected } = chooseBinary(packageRoot, lt);
  if (!bin) throw new AddonLoadError(noBinaryMessage(packageRoot, lt, rejected));
  preload(lt);
  const mod = { exports: {} } as NodeJS.Module;
  try {
    process.dlopen(mod, bin.file, os.constants.dlopen.RTLD_NOW);
  } catch (e) {
    throw new AddonLoadError(
      `could not load ${bin.file} against LibTorch ${lt.fullVersion} at ${lt.root}: ${(e as Error).message}\nBuild it from source with: npx libtorch-gan build`,
    );
  }
  libtorch = lt;
  loaded = bin;
  addon = mod.exports as unknown as NativeAddon;
  return addon;
}

/** The binary loaded (after loadAddon): file, source build or prebuild, and its build info. */
export function loadedBinary(): Binary {
  if (!loaded) loadAddon();
  return loaded!;
}

export function libtorchInfo(): LibTorchInfo {
  if (!libtorch) loadAddon();
  return libtorch!;
}
