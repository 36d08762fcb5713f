/**
 * Loads the native addon: finds LibTorch with the locator, checks that the binary was built for that
 * LibTorch (the rule in compat.ts: version, C++ ABI, CUDA), preloads LibTorch's libraries (so a
 * prebuilt binary works wherever LibTorch is installed, without LD_LIBRARY_PATH), then loads the binary. Loading is lazy: importing the package
 * does nothing until the first tensor is made.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../util/package';
import { type NativeAddon } from './addon';
import { findBinary as findBinaryIn, incompatibilityMessage, type BinaryKind, type BuildInfo } from './compat';
import { locateLibTorch, type LibTorchInfo } from './locate-libtorch';

export type { BuildInfo } from './compat';

export class AddonLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddonLoadError';
  }
}

/** The binary to load: a source build in build/Release wins over a prebuild (the rule in compat.ts). */
export function findBinary(root = packageRoot): { file: string; buildInfo: BuildInfo | null; infoError: string | null; kind: BinaryKind } | null {
  const b = findBinaryIn(root);
  return b && { file: b.file, buildInfo: b.info, infoError: b.infoError, kind: b.kind };
}

/**
 * Throws a clear error (found, built for, how to fix) when the binary cannot run with the LibTorch
 * found: the rule install.js applies too (compat.ts).
 */
export function checkCompatible(buildInfo: BuildInfo | null, lt: LibTorchInfo, kind: BinaryKind, file = '', infoError: string | null = null): void {
  const msg = incompatibilityMessage({ file, kind, info: buildInfo, infoError }, lt);
  if (msg) throw new AddonLoadError(msg);
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
  checkCompatible(bin.buildInfo, lt, bin.kind, bin.file, bin.infoError);
  preload(lt);
  const mod = { exports: {} } as NodeJS.Module;
  try {
    process.dlopen(mod, bin.file, os.constants.dlopen.RTLD_NOW);
  } catch (e) {
    throw new AddonLoadError(
      `could not load ${bin.file} against LibTorch ${lt.fullVersion} at ${lt.root}: ${(e as Error).message}\nRebuild it with: npm rebuild libtorch-gan`,
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
