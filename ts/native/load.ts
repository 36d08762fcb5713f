/**
 * Loads the native addon: finds LibTorch with the locator, checks that the binary was built for that
 * LibTorch version, preloads LibTorch's libraries (so a prebuilt binary works wherever LibTorch is
 * installed, without LD_LIBRARY_PATH), then loads the binary. Loading is lazy: importing the package
 * does nothing until the first tensor is made.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../util/package';
import { type NativeAddon } from './addon';
import { locateLibTorch, type LibTorchInfo } from './locate-libtorch';

/** What the binary was built against (written next to it by the build). */
export interface BuildInfo {
  libtorchVersion: string;
  cuda: boolean;
  cudaVersion: string | null;
  cxx11Abi: number;
}

export class AddonLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddonLoadError';
  }
}

/** The binary to load: a source build in build/Release wins over a prebuild. */
export function findBinary(root = packageRoot): { file: string; buildInfo: BuildInfo | null; kind: 'source' | 'prebuild' } | null {
  const candidates: { dir: string; kind: 'source' | 'prebuild' }[] = [
    { dir: path.join(root, 'build', 'Release'), kind: 'source' },
    { dir: path.join(root, 'prebuilds', `${process.platform}-${process.arch}`), kind: 'prebuild' },
  ];
  for (const { dir, kind } of candidates) {
    let files: string[];
    try {
      files = fs.readdirSync(dir);
    } catch {
      continue;
    }
    const bin = files.find((f) => f.endsWith('.node'));
    if (!bin) continue;
    const infoFile = path.join(dir, 'libtorch-gan.json');
    const buildInfo = fs.existsSync(infoFile) ? (JSON.parse(fs.readFileSync(infoFile, 'utf8')) as BuildInfo) : null;
    return { file: path.join(dir, bin), buildInfo, kind };
  }
  return null;
}

/** Throws a clear error when the binary was built for another LibTorch than the one found. */
export function checkCompatible(buildInfo: BuildInfo | null, lt: LibTorchInfo, kind: string): void {
  if (!buildInfo) return;
  if (buildInfo.libtorchVersion !== lt.version) {
    throw new AddonLoadError(
      `libtorch-gan's ${kind} binary was built for LibTorch ${buildInfo.libtorchVersion}, but LibTorch ${lt.version} was found ` +
        `(${lt.source}: ${lt.root}).\nFix it in one of these ways:\n` +
        `  - install the matching LibTorch: python3 -m pip install torch==${buildInfo.libtorchVersion} (or point LIBTORCH at one)\n` +
        `  - rebuild from source against the one found: npm rebuild libtorch-gan (needs cmake and a C++ compiler)`,
    );
  }
  if (buildInfo.cxx11Abi !== lt.cxx11Abi) {
    throw new AddonLoadError(
      `libtorch-gan's ${kind} binary uses _GLIBCXX_USE_CXX11_ABI=${buildInfo.cxx11Abi} but the LibTorch found (${lt.root}) uses ${lt.cxx11Abi}; ` +
        'rebuild from source: npm rebuild libtorch-gan',
    );
  }
}

let addon: NativeAddon | undefined;
let libtorch: LibTorchInfo | undefined;

/** LibTorch's libraries stay resident once loaded with RTLD_GLOBAL, and then satisfy the addon's NEEDED entries. */
function preload(lt: LibTorchInfo): void {
  const flags = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL;
  for (const name of lt.libraries) {
    const file = path.join(lt.libDir, `lib${name}.so`);
    if (!fs.existsSync(file)) continue;
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, file, flags);
    } catch (e) {
      // "did not self-register" is expected: these are plain libraries, not addons; they are loaded.
      if (!/did not self-register/.test((e as Error).message)) {
        throw new AddonLoadError(`could not load ${file}: ${(e as Error).message}`);
      }
    }
  }
}

export function loadAddon(): NativeAddon {
  if (addon) return addon;
  const lt = locateLibTorch();
  const bin = findBinary();
  if (!bin) {
    throw new AddonLoadError(
      `libtorch-gan's native addon is not built (no build/Release/*.node and no prebuilds/${process.platform}-${process.arch}/*.node).\n` +
        'Build it with: npm rebuild libtorch-gan   (or, in a clone: npm run build)',
    );
  }
  checkCompatible(bin.buildInfo, lt, bin.kind);
  preload(lt);
  const mod = { exports: {} } as NodeJS.Module;
  try {
    process.dlopen(mod, bin.file, os.constants.dlopen.RTLD_NOW);
  } catch (e) {
    throw new AddonLoadError(
      `could not load ${bin.file} against LibTorch ${lt.fullVersion} at ${lt.root}: ${(e as Error).message}\n` +
        'Rebuild it with: npm rebuild libtorch-gan',
    );
  }
  libtorch = lt;
  addon = mod.exports as unknown as NativeAddon;
  return addon;
}

export function libtorchInfo(): LibTorchInfo {
  if (!libtorch) loadAddon();
  return libtorch!;
}
