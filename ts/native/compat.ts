/**
 * The one binary-compatibility rule, shared by the runtime loader (load.ts) and the install script
 * (scripts/install.js, which requires the compiled lib/native/compat.js); the LibTorch versions the
 * package supports, ships prebuilds for and pins as its default (package.json "libtorch"); and the hash
 * of the native sources a binary was built from (prepack rebuilds a prebuild whose sources changed).
 *
 * A binary is the addon (*.node) plus libtorch-gan.json beside it, written by the build
 * (scripts/build-native.js): the LibTorch version, C++ ABI, CUDA version and CUDA graphs it was built
 * with. A source build lives in build/Release, prebuilds in prebuilds/<platform>-<arch>/<tag>/, one per
 * LibTorch (prebuildTag); the loader takes the first that fits the LibTorch found.
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
  /** Whether CUDA graphs were compiled in (with CUDA headers of cudaVersion); absent in older binaries. */
  cudaGraphs?: boolean;
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

/** The folder of this platform's prebuilds: one subfolder per LibTorch (prebuildTag). */
export function prebuildsRoot(root: string): string {
  return path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
}

/** A prebuild's subfolder name: torch-2.15.0-cu132 (a CUDA 13.2 LibTorch), torch-2.15.0-cpu. */
export function prebuildTag(b: Pick<BuildInfo, 'libtorchVersion' | 'cuda' | 'cudaVersion'>): string {
  return `torch-${b.libtorchVersion}-${b.cuda ? `cu${(b.cudaVersion ?? '').replace('.', '')}` : 'cpu'}`;
}

/**
 * The binary directories in the order the loader tries them: a source build first (what the user
 * built for the LibTorch they have), then each prebuild (one per LibTorch version and CUDA flavour).
 */
export function binaryDirs(root: string): { dir: string; kind: BinaryKind }[] {
  const out: { dir: string; kind: BinaryKind }[] = [{ dir: path.join(root, 'build', 'Release'), kind: 'source' }];
  const pre = prebuildsRoot(root);
  let subs: fs.Dirent[] = [];
  try {
    subs = fs.readdirSync(pre, { withFileTypes: true });
  } catch {
    // no prebuilds
  }
  // newest LibTorch first: of two that fit (never, by the rule), the newer wins
  for (const e of subs.filter((d) => d.isDirectory()).sort((a, b) => b.name.localeCompare(a.name, 'en', { numeric: true }))) {
    out.push({ dir: path.join(pre, e.name), kind: 'prebuild' });
  }
  return out;
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

/** Every binary here, in the loader's order (binaryDirs). */
export function listBinaries(root: string): Binary[] {
  return binaryDirs(root)
    .map(({ dir, kind }) => binaryIn(dir, kind))
    .filter((b): b is Binary => b !== null);
}

/** The LibTorch facts the rule compares. */
export type LibTorchFacts = Pick<LibTorchInfo, 'version' | 'cuda' | 'cudaVersion' | 'cxx11Abi'>;

/**
 * Why a binary built as `info` cannot run with LibTorch `lt`, in a few words ("built for LibTorch
 * 2.16.0"), or null when it can. The one rule: same LibTorch version (x.y.z), same C++ ABI, a CUDA
 * build needs a CUDA LibTorch (it links libtorch_cuda; a CPU-only build loads on either), and a binary
 * with CUDA graphs compiled in needs LibTorch's CUDA version (it holds at::cuda::CUDAGraph by value,
 * laid out by the CUDA headers it was compiled with).
 */
export function incompatibility(info: BuildInfo | null, lt: LibTorchFacts, infoError?: string | null): string | null {
  if (!info) return `${infoError ?? `no ${BUILD_INFO_FILE} beside it`} (unknown LibTorch)`;
  if (info.libtorchVersion !== lt.version) return `built for LibTorch ${info.libtorchVersion}`;
  if (Number(info.cxx11Abi) !== lt.cxx11Abi) return `built with _GLIBCXX_USE_CXX11_ABI=${info.cxx11Abi}, LibTorch uses ${lt.cxx11Abi}`;
  if (info.cuda && !lt.cuda) return `built for a CUDA LibTorch ${info.libtorchVersion}, found a CPU-only one`;
  if (info.cuda && info.cudaGraphs !== false && info.cudaVersion && lt.cudaVersion && info.cudaVersion !== lt.cudaVersion)
    return `built with CUDA ${info.cudaVersion}'s headers (CUDA graphs), this LibTorch uses CUDA ${lt.cudaVersion}`;
  return null;
}

/** The binary the loader takes for LibTorch `lt`: the first that fits (binaryDirs' order), and why each other one does not. */
export function chooseBinary(root: string, lt: LibTorchFacts): { binary: Binary | null; rejected: { binary: Binary; why: string }[] } {
  const rejected: { binary: Binary; why: string }[] = [];
  for (const b of listBinaries(root)) {
    const why = incompatibility(b.info, lt, b.infoError);
    if (!why) return { binary: b, rejected };
    rejected.push({ binary: b, why });
  }
  return { binary: null, rejected };
}

/** The command that builds the addon from source for the LibTorch found (needs g++ and cmake). */
export const BUILD_COMMAND = 'npx libtorch-gan build';

/**
 * The message for a LibTorch no binary here fits: what was found, what is supported and shipped, why
 * each binary does not fit, and exactly what to run.
 */
export function noBinaryMessage(
  root: string,
  lt: LibTorchFacts & Pick<LibTorchInfo, 'root' | 'source' | 'fullVersion'>,
  rejected: { binary: Binary; why: string }[],
): string {
  const found = `LibTorch ${lt.fullVersion} (${lt.cuda ? `CUDA ${lt.cudaVersion ?? '?'}` : 'CPU-only'}, _GLIBCXX_USE_CXX11_ABI=${lt.cxx11Abi}; ${lt.source}: ${lt.root})`;
  const lines = [`libtorch-gan has no binary for ${found}.`];
  const range = supportedRange(root);
  const shipped = prebuildVersions(root);
  lines.push(`It supports LibTorch ${range} and ships prebuilt binaries for ${shipped.join(', ')} (linux-x64, CUDA builds).`);
  for (const { binary, why } of rejected) lines.push(`  - ${path.relative(root, binary.file)} (${binary.kind}): ${why}`);
  if (rejected.length === 0) lines.push(`  (no binary is here: no build/Release/*.node and nothing under ${path.relative(root, prebuildsRoot(root))}/)`);
  lines.push('Fix it in one of these ways:');
  if (!isSupported(lt.version, root)) {
    lines.push(`  - install a supported LibTorch: python3 -m pip install torch==${pinnedLibTorch(root)} (or point PYTHON or LIBTORCH at one)`);
  } else {
    const prebuilt = shipped.includes(lt.version);
    if (!prebuilt) lines.push(`  - install a LibTorch it ships a binary for: python3 -m pip install torch==${pinnedLibTorch(root)}`);
  }
  lines.push(`  - build it from source for the LibTorch found: ${BUILD_COMMAND}   (needs g++ and cmake; a few minutes)`);
  lines.push(
    "  - or let npm run the package's install script, which builds it (npm 11 blocks dependencies' scripts): npm install-scripts approve libtorch-gan && npm rebuild libtorch-gan",
  );
  return lines.join('\n');
}

/** The LibTorch version the package pins (package.json "libtorch": { "version": "x.y.z" }): the default, what setup.sh installs. */
export function pinnedLibTorch(root: string): string {
  const file = path.join(root, 'package.json');
  const v = readPackageJson(root).libtorch?.version;
  if (typeof v !== 'string' || !/^\d+\.\d+\.\d+$/.test(v)) {
    throw new Error(`${file}: "libtorch.version" must be a LibTorch version like "2.15.0", got ${JSON.stringify(v)}`);
  }
  return v;
}

function versionList(root: string, key: 'supported' | 'prebuilds', re: RegExp, like: string): string[] {
  const file = path.join(root, 'package.json');
  const lt = readPackageJson(root).libtorch as Record<string, unknown> | undefined;
  const v = lt?.[key];
  // a package.json from before the range: the pin alone
  if (v === undefined) return key === 'prebuilds' ? [pinnedLibTorch(root)] : [pinnedLibTorch(root).split('.').slice(0, 2).join('.')];
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && re.test(x))) {
    throw new Error(`${file}: "libtorch.${key}" must be a non-empty list of versions like ${like}, got ${JSON.stringify(v)}`);
  }
  return v as string[];
}

/** The LibTorch minor versions the package builds and runs with (package.json "libtorch.supported", e.g. ["2.11", ..., "2.15"]). */
export function supportedLibTorch(root: string): string[] {
  return versionList(root, 'supported', /^\d+\.\d+$/, '"2.15"');
}

/** The LibTorch versions `npm pack` ships a prebuilt binary for (package.json "libtorch.prebuilds"). */
export function prebuildVersions(root: string): string[] {
  return versionList(root, 'prebuilds', /^\d+\.\d+\.\d+$/, '"2.15.0"');
}

/** Whether LibTorch `version` (x.y.z) is in the supported range. */
export function isSupported(version: string, root: string): boolean {
  return supportedLibTorch(root).includes(version.split('.').slice(0, 2).join('.'));
}

/** The supported range in words: "2.11 to 2.15". */
export function supportedRange(root: string): string {
  const s = supportedLibTorch(root);
  return s.length === 1 ? s[0] : `${s[0]} to ${s[s.length - 1]}`;
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

/** The prebuild here for LibTorch `version` (any CUDA flavour), or null. */
export function prebuildFor(root: string, version: string): Binary | null {
  return listBinaries(root).find((b) => b.kind === 'prebuild' && b.info?.libtorchVersion === version) ?? null;
}

/**
 * Why the prebuild for LibTorch `version` is not what `npm pack` should ship (missing, or built from
 * other native sources), or null when it is current.
 */
export function prebuildStaleness(root: string, version: string): string | null {
  const bin = prebuildFor(root, version);
  if (!bin?.info) return `there is no prebuilt binary for LibTorch ${version}`;
  if (!bin.info.sourceHash) return 'it records no source hash (built by an older version of the build)';
  const now = sourceHash(root);
  if (bin.info.sourceHash !== now) return `native/ or CMakeLists.txt changed since it was built (sources ${bin.info.sourceHash}, now ${now})`;
  return null;
}
