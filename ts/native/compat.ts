/**
 * The one binary-compatibility rule, shared by the runtime loader (load.ts) and the install script
 * (scripts/install.js, which requires the compiled lib/native/compat.js), plus the LibTorch version
 * the package pins (package.json "libtorch.version": what the shipped prebuild is built for, what
 * scripts/setup.sh installs) and the hash of the native sources a binary was built from (prepack
 * rebuilds a prebuild whose sources changed).
 *
 * A binary is the addon (*.node) plus libtorch-gan.json beside it, written by the build
 * (scripts/build-native.js): the LibTorch version, C++ ABI and CUDA flag it was built against.
 * No side effects on import: install.js loads this before anything is built.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readPackageJson } from '../util/package';
import { type LibTorchInfo } from './locate-libtorch';

/** The build info file written beside every binary. */
export const BUILD_INFO_FILE = 'libtorch-gan.json';

/** What a binary was built against (libtorch-gan.json beside it). */
export interface BuildInfo {
  libtorchVersion: string;
  cuda: boolean;
  cudaVersion: string | null;
  cxx11Abi: number;
  /** sourceHash() of the native sources it was built from (absent in binaries built before it was recorded). */
  sourceHash?: string;
  builtAt?: string;
}

export type BinaryKind = 'source' | 'prebuild';

export interface Binary {
  file: string;
  kind: BinaryKind;
  /** null when libtorch-gan.json is missing or unreadable (see infoError). */
  info: BuildInfo | null;
  /** Why the build info could not be read, when info is null. */
  infoError: string | null;
}

/** The LibTorch that binary `b` needs, in words: "LibTorch 2.15.0 (CUDA 13.2, _GLIBCXX_USE_CXX11_ABI=1)". */
export function describeBuild(b: BuildInfo | null): string {
  if (!b) return 'an unknown LibTorch';
  const cuda = b.cuda ? `CUDA ${b.cudaVersion ?? '?'}` : 'CPU-only';
  return `LibTorch ${b.libtorchVersion} (${cuda}, _GLIBCXX_USE_CXX11_ABI=${b.cxx11Abi})`;
}

/** The binary directories in the order the loader tries them: a source build wins over a prebuild. */
export function binaryDirs(root: string): { dir: string; kind: BinaryKind }[] {
  return [
    { dir: path.join(root, 'build', 'Release'), kind: 'source' },
    { dir: path.join(root, 'prebuilds', `${process.platform}-${process.arch}`), kind: 'prebuild' },
  ];
}

function isBuildInfo(v: unknown): v is BuildInfo {
  const o = v as Record<string, unknown>;
  return !!o && typeof o === 'object' && typeof o.libtorchVersion === 'string' && typeof o.cuda === 'boolean' && (o.cxx11Abi === 0 || o.cxx11Abi === 1);
}

/** The .node binary in `dir` and the build info beside it, or null when `dir` holds no .node file. */
export function binaryIn(dir: string, kind: BinaryKind): Binary | null {
  let files: string[];
  try {
    files = fs.readdirSync(dir);
  } catch {
    return null;
  }
  const bins = files.filter((f) => f.endsWith('.node')).sort();
  if (bins.length === 0) return null;
  const infoFile = path.join(dir, BUILD_INFO_FILE);
  let info: BuildInfo | null = null;
  let infoError: string | null = null;
  if (bins.length > 1) {
    infoError = `${dir} holds ${bins.length} binaries (${bins.join(', ')}); expected one`;
  } else if (!fs.existsSync(infoFile)) {
    infoError = `no ${BUILD_INFO_FILE} beside it`;
  } else {
    try {
      const parsed: unknown = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
      if (isBuildInfo(parsed)) info = parsed;
      else infoError = `${infoFile} lacks libtorchVersion, cuda or cxx11Abi`;
    } catch (e) {
      infoError = `${infoFile} is unreadable (${(e as Error).message})`;
    }
  }
  return { file: path.join(dir, bins[0]), kind, info, infoError };
}

/** The binary the loader takes: build/Release when it holds one, else prebuilds/<platform>-<arch>. */
export function findBinary(root: string): Binary | null {
  for (const { dir, kind } of binaryDirs(root)) {
    const b = binaryIn(dir, kind);
    if (b) return b;
  }
  return null;
}

/** The LibTorch facts the rule compares. */
export type LibTorchFacts = Pick<LibTorchInfo, 'version' | 'cuda' | 'cxx11Abi'>;

/**
 * Why a binary built as `info` cannot run with LibTorch `lt`, in a few words ("built for LibTorch
 * 2.16.0"), or null when it can. The one rule: same LibTorch version (x.y.z), same C++ ABI, and a
 * CUDA build needs a CUDA LibTorch (it links libtorch_cuda; a CPU-only build loads on either).
 */
export function incompatibility(info: BuildInfo | null, lt: LibTorchFacts, infoError?: string | null): string | null {
  if (!info) return `${infoError ?? `no ${BUILD_INFO_FILE} beside it`} (unknown LibTorch)`;
  if (info.libtorchVersion !== lt.version) return `built for LibTorch ${info.libtorchVersion}`;
  if (Number(info.cxx11Abi) !== lt.cxx11Abi) return `built with _GLIBCXX_USE_CXX11_ABI=${info.cxx11Abi}, LibTorch uses ${lt.cxx11Abi}`;
  if (info.cuda && !lt.cuda) return `built for a CUDA LibTorch ${info.libtorchVersion}, found a CPU-only one`;
  return null;
}

/**
 * The full message for a binary that cannot run with the LibTorch found: what was found, what the
 * binary was built for, and how to fix it; null when it can run.
 */
export function incompatibilityMessage(
  bin: Pick<Binary, 'file' | 'kind' | 'info' | 'infoError'>,
  lt: LibTorchFacts & Pick<LibTorchInfo, 'root' | 'source'>,
): string | null {
  const why = incompatibility(bin.info, lt, bin.infoError);
  if (!why) return null;
  const b = bin.info;
  const rebuild = '  - rebuild from source against the one found: npm rebuild libtorch-gan (needs cmake and a C++ compiler)';
  if (b && b.libtorchVersion !== lt.version) {
    return (
      `libtorch-gan's ${bin.kind} binary was built for LibTorch ${b.libtorchVersion}, but LibTorch ${lt.version} was found ` +
      `(${lt.source}: ${lt.root}).\nFix it in one of these ways:\n` +
      `  - install the matching LibTorch: python3 -m pip install torch==${b.libtorchVersion} (or point LIBTORCH at one)\n` +
      rebuild
    );
  }
  return `libtorch-gan's ${bin.kind} binary (${bin.file}) cannot run with LibTorch ${lt.version} (${lt.source}: ${lt.root}): ${why}.\n` + `Fix it:\n${rebuild}`;
}

/** The LibTorch version the package pins (package.json "libtorch": { "version": "x.y.z" }). */
export function pinnedLibTorch(root: string): string {
  const file = path.join(root, 'package.json');
  const v = readPackageJson(root).libtorch?.version;
  if (typeof v !== 'string' || !/^\d+\.\d+\.\d+$/.test(v)) {
    throw new Error(`${file}: "libtorch.version" must be a LibTorch version like "2.15.0", got ${JSON.stringify(v)}`);
  }
  return v;
}

/** The files a binary is built from: native/ (recursively) and CMakeLists.txt, relative to root, sorted. */
export function nativeSources(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = path.posix.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.push(r);
    }
  };
  walk('native');
  out.push('CMakeLists.txt');
  return out.sort();
}

/** A hash of the native sources' names and contents (not their times: a clone or checkout changes those). */
export function sourceHash(root: string): string {
  const h = createHash('sha256');
  for (const rel of nativeSources(root)) {
    h.update(rel)
      .update('\0')
      .update(fs.readFileSync(path.join(root, rel)))
      .update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Why the prebuild in `dir` is not what `npm pack` should ship (missing, for another LibTorch than
 * the pinned one, or built from other native sources), or null when it is current.
 */
export function prebuildStaleness(root: string, dir: string): string | null {
  const bin = binaryIn(dir, 'prebuild');
  if (!bin) return 'there is no prebuilt binary';
  if (!bin.info) return `its build info is missing: ${bin.infoError}`;
  const pinned = pinnedLibTorch(root);
  if (bin.info.libtorchVersion !== pinned) return `it is built for LibTorch ${bin.info.libtorchVersion}, the package pins ${pinned}`;
  if (!bin.info.sourceHash) return 'it records no source hash (built by an older version of the build)';
  const now = sourceHash(root);
  if (bin.info.sourceHash !== now) return `native/ or CMakeLists.txt changed since it was built (sources ${bin.info.sourceHash}, now ${now})`;
  return null;
}
