/**
 * The one LibTorch locator, used by the CMake build, the binding.gyp fallback and the runtime loader.
 * Order: the LIBTORCH environment variable (an unzipped official LibTorch), then Python's `torch`
 * package (PYTHON, the .venv of the current folder, of INIT_CWD and of the package, python3), then
 * the system's (Debian's libtorch-dev).
 *
 * Run as a script it prints what it found: `node lib/native/locate-libtorch.js [--json|--field NAME]`.
 * It never imports torch in Python (that takes seconds); it asks Python where the package is and reads
 * the files.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../util/package';
import { pinnedLibTorch } from './compat';

export interface LibTorchInfo {
  /** How it was found. */
  source: 'LIBTORCH' | 'python' | 'system';
  /** Root of the installation (holds include/ and lib/ except for the system one). */
  root: string;
  includeDirs: string[];
  libDir: string;
  /** e.g. "2.15.0" (no local suffix). */
  version: string;
  /** Full version string where known, e.g. "2.15.0+cu132". */
  fullVersion: string;
  cuda: boolean;
  /** CUDA version LibTorch was built with, e.g. "13.2", or null. */
  cudaVersion: string | null;
  /** Value for -D_GLIBCXX_USE_CXX11_ABI. */
  cxx11Abi: 0 | 1;
  /** C++ standard its headers need (ATen from 2.10 on requires C++20). */
  cxxStandard: 17 | 20;
  /**
   * Libraries to link and preload, in dependency order (names without lib/.so). libtorch.so itself is
   * an empty shim in recent LibTorch and is neither needed nor kept loaded by a preload.
   */
  libraries: string[];
  /**
   * Directories of CUDA runtime headers for ATen/cuda's headers (CUDA graphs): pip's beside a CUDA
   * build, else a CUDA toolkit's; only headers of the CUDA version LibTorch was built with (a class
   * such as at::cuda::CUDAGraph, held by value, laid out by other CUDA headers corrupts the heap).
   */
  cudaIncludeDirs: string[];
  /** Why no CUDA headers were taken, for a CUDA LibTorch without cudaIncludeDirs ('' otherwise). */
  cudaHeadersNote: string;
  /** Python's sys.path, when source is 'python' (where pip's nvidia-* libraries may live). */
  sysPath?: string[];
  /** The Python interpreter it came from, when source is 'python'. */
  python?: string;
}

/** The LibTorch version the package pins, or '' when package.json cannot say. */
function pin(root: string): string {
  try {
    return pinnedLibTorch(root);
  } catch {
    return '';
  }
}

/** True in a git clone of the package (where scripts/setup.sh makes the project's .venv). */
function isClone(root: string): boolean {
  return fs.existsSync(path.join(root, '.git')) && fs.existsSync(path.join(root, 'scripts', 'setup.sh'));
}

/**
 * The one command that installs the LibTorch the package is built for: in a git clone the setup script
 * (the pinned torch in a project-local .venv, then npm install), else PyPI's torch at the pinned
 * version in a .venv of the user's project.
 */
export function installCommand(root = packageRoot): string {
  if (isClone(root)) return 'bash scripts/setup.sh';
  const v = pin(root);
  return `python3 -m venv .venv && .venv/bin/python -m pip install torch${v ? `==${v}` : ''}`;
}

export class LibTorchNotFoundError extends Error {
  constructor(public readonly attempts: string[]) {
    const v = pin(packageRoot);
    super(
      `LibTorch was not found. Install ${v ? `LibTorch ${v}, the version libtorch-gan is built for,` : 'it'} with:\n` +
        `    ${installCommand()}\n` +
        (isClone(packageRoot)
          ? ''
          : "(in your project's folder), then run npm install again (npm rebuild libtorch-gan where the package is installed already).\n") +
        'libtorch-gan looks in three places, in this order:\n' +
        '  1. the LIBTORCH environment variable: an unzipped LibTorch from https://pytorch.org\n' +
        '       export LIBTORCH=/path/to/libtorch\n' +
        "  2. Python's torch package (the interpreter in PYTHON, the .venv of the current folder or of the\n" +
        '     folder npm was run in, or python3):\n' +
        `       python3 -m pip install torch${v ? `==${v}` : ''}        (or: export PYTHON=/path/to/python-with-torch)\n` +
        "  3. the system's LibTorch (Debian/Ubuntu; another version needs a source build):\n" +
        '       sudo apt-get install libtorch-dev libopenblas0-pthread\n' +
        'What was tried:\n' +
        attempts.map((a) => `  - ${a}`).join('\n'),
    );
    this.name = 'LibTorchNotFoundError';
  }
}

function readIf(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function headerVersion(includeDirs: string[]): string | null {
  for (const inc of includeDirs) {
    for (const rel of ['torch/headeronly/version.h', 'torch/csrc/api/include/torch/version.h']) {
      const text = readIf(path.join(inc, rel));
      if (!text) continue;
      const m = (k: string) => text.match(new RegExp(`#define\\s+TORCH_VERSION_${k}\\s+(\\d+)`))?.[1];
      const [maj, min, pat] = [m('MAJOR'), m('MINOR'), m('PATCH')];
      if (maj && min && pat) return `${maj}.${min}.${pat}`;
    }
  }
  return null;
}

function needsCxx20(includeDirs: string[]): boolean {
  for (const inc of includeDirs) {
    const text = readIf(path.join(inc, 'ATen', 'ATen.h'));
    if (text) return /C\+\+20 or later/.test(text);
  }
  return false;
}

/** libc10 exports std::__cxx11 symbols only when built with the new ABI. */
function detectAbi(libDir: string): 0 | 1 {
  const lib = fs.readdirSync(libDir).find((f) => /^libc10\.so(\.|$)/.test(f));
  if (!lib) return 1;
  return fs.readFileSync(path.join(libDir, lib)).includes('__cxx11') ? 1 : 0;
}

function hasLib(libDir: string, name: string): boolean {
  try {
    return fs.readdirSync(libDir).some((f) => f === `lib${name}.so` || f.startsWith(`lib${name}.so.`));
  } catch {
    return false;
  }
}

/** The CUDA version of the runtime headers in `inc` ("13.2", from CUDART_VERSION 13020), or null. */
export function cudaHeadersVersion(inc: string): string | null {
  const m = readIf(path.join(inc, 'cuda_runtime_api.h'))?.match(/#define\s+CUDART_VERSION\s+(\d+)/);
  if (!m) return null;
  const v = Number(m[1]);
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/**
 * CUDA runtime headers of LibTorch's own CUDA version: pip's (nvidia-cuda-runtime beside torch), else a
 * toolkit's (CUDA_HOME, CUDA_PATH, /usr/local/cuda). Headers of another CUDA version are refused, with
 * the reason in `note`: the build then has no CUDA graphs rather than a mislaid CUDAGraph.
 */
function cudaHeaders(root: string, source: LibTorchInfo['source'], want: string | null): { dirs: string[]; note: string } {
  const candidates: string[] = [];
  if (source === 'python') {
    const nv = path.resolve(root, '..', 'nvidia');
    for (const sub of fs.existsSync(nv) ? fs.readdirSync(nv).sort() : []) candidates.push(path.join(nv, sub, 'include'));
  }
  for (const home of [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda']) if (home) candidates.push(path.join(home, 'include'));
  const refused: string[] = [];
  for (const inc of candidates) {
    if (!fs.existsSync(path.join(inc, 'cuda_runtime_api.h'))) continue;
    // Usable only when complete (some wheels ship cuda_runtime_api.h without crt/).
    if (!fs.existsSync(path.join(inc, 'crt', 'host_defines.h'))) {
      refused.push(`${inc} lacks crt/host_defines.h (pip install nvidia-cuda-crt)`);
      continue;
    }
    const v = cudaHeadersVersion(inc);
    if (want && v !== want) {
      refused.push(`${inc} holds CUDA ${v ?? '?'} headers, LibTorch was built with CUDA ${want}`);
      continue;
    }
    return { dirs: [inc], note: '' };
  }
  return { dirs: [], note: refused.length ? refused.join('; ') : 'no CUDA runtime headers (cuda_runtime_api.h) beside torch or in CUDA_HOME' };
}

function describe(
  source: LibTorchInfo['source'],
  root: string,
  includeDirs: string[],
  libDir: string,
  extra: { fullVersion?: string; cudaVersion?: string | null; python?: string; sysPath?: string[] },
): LibTorchInfo {
  const version = headerVersion(includeDirs) ?? extra.fullVersion?.split('+')[0];
  if (!version) throw new Error(`found LibTorch headers under ${includeDirs.join(', ')} but no version.h`);
  const cuda = hasLib(libDir, 'torch_cuda');
  let cudaVersion = extra.cudaVersion ?? null;
  const full = extra.fullVersion ?? readIf(path.join(root, 'build-version'))?.trim() ?? version;
  if (cuda && !cudaVersion) {
    const cu = full.match(/\+cu(\d+)(\d)$/);
    if (cu) cudaVersion = `${cu[1]}.${cu[2]}`;
  }
  const libraries = ['c10', 'torch_cpu'];
  if (cuda) libraries.push('c10_cuda', 'torch_cuda');
  const { dirs: cudaIncludeDirs, note: cudaHeadersNote } = cuda ? cudaHeaders(root, source, cudaVersion) : { dirs: [], note: '' };
  return {
    source,
    root,
    includeDirs,
    libDir,
    version,
    fullVersion: full,
    cuda,
    cudaVersion: cuda ? cudaVersion : null,
    cxx11Abi: detectAbi(libDir),
    cxxStandard: needsCxx20(includeDirs) ? 20 : 17,
    libraries,
    cudaIncludeDirs,
    cudaHeadersNote,
    python: extra.python,
    sysPath: extra.sysPath,
  };
}

function fromRoot(root: string, source: LibTorchInfo['source'], extra: Parameters<typeof describe>[4] = {}): LibTorchInfo {
  const inc = path.join(root, 'include');
  const libDir = path.join(root, 'lib');
  if (!fs.existsSync(path.join(inc, 'ATen', 'ATen.h'))) throw new Error(`${inc}/ATen/ATen.h is missing`);
  if (!hasLib(libDir, 'torch') || !hasLib(libDir, 'c10')) throw new Error(`${libDir} has no libtorch.so/libc10.so`);
  const apiInc = path.join(inc, 'torch', 'csrc', 'api', 'include');
  return describe(source, root, fs.existsSync(apiInc) ? [inc, apiInc] : [inc], libDir, extra);
}

function pythonCandidates(): string[] {
  const list: string[] = [];
  if (process.env.PYTHON) list.push(process.env.PYTHON);
  // INIT_CWD: the folder npm was run in (npm runs install scripts in the package's own folder).
  for (const base of [process.cwd(), process.env.INIT_CWD, packageRoot]) {
    if (!base) continue;
    const venv = path.join(base, '.venv', 'bin', 'python');
    if (fs.existsSync(venv) && !list.includes(venv)) list.push(venv);
  }
  list.push('python3');
  return list;
}

function fromPython(py: string): LibTorchInfo {
  // find_spec locates the package without importing it (importing torch takes seconds).
  const r = spawnSync(
    py,
    ['-c', "import importlib.util as u, json, sys; s = u.find_spec('torch'); print(s.submodule_search_locations[0] if s else ''); print(json.dumps(sys.path))"],
    {
      encoding: 'utf8',
      timeout: 30000,
    },
  );
  if (r.error) throw new Error(`${py} could not be run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`);
  if (r.status !== 0) throw new Error(`${py} failed: ${r.stderr.trim().split('\n').pop()}`);
  const [dir, sysPathJson] = r.stdout.trim().split('\n');
  if (!dir) throw new Error(`${py} has no torch package (python3 -m pip install torch)`);
  let sysPath: string[] = [];
  try {
    sysPath = (JSON.parse(sysPathJson ?? '[]') as unknown[]).filter((p): p is string => typeof p === 'string' && p !== '');
  } catch {
    // an odd interpreter: the libraries beside torch are still found through its RUNPATH
  }
  const vtext = readIf(path.join(dir, 'version.py')) ?? '';
  const fullVersion = vtext.match(/__version__\s*=\s*'([^']+)'/)?.[1];
  const cudaVersion = vtext.match(/^cuda\s*(?::[^=]*)?=\s*'([^']+)'/m)?.[1] ?? null;
  return fromRoot(dir, 'python', { fullVersion, cudaVersion, python: py, sysPath });
}

function fromSystem(): LibTorchInfo {
  const libDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/local/lib'];
  const libDir = libDirs.find((d) => hasLib(d, 'torch') && hasLib(d, 'c10'));
  const incs = ['/usr/include', '/usr/local/include'].filter((d) => fs.existsSync(path.join(d, 'ATen', 'ATen.h')));
  if (!libDir || incs.length === 0) throw new Error('no libtorch.so and ATen headers under /usr or /usr/local');
  const inc = incs[0];
  const apiInc = path.join(inc, 'torch', 'csrc', 'api', 'include');
  return describe('system', path.dirname(inc), fs.existsSync(apiInc) ? [inc, apiInc] : [inc], libDir, {});
}

let cached: LibTorchInfo | undefined;

export interface LocateOptions {
  /** Search again instead of returning the first result. */
  refresh?: boolean;
  /** Python interpreters to ask, instead of PYTHON, the project's .venv and python3. */
  pythons?: string[];
  /** Skip the system's LibTorch (for tests). */
  noSystem?: boolean;
}

/** Finds LibTorch, or throws LibTorchNotFoundError naming the three ways to install it. */
export function locateLibTorch(opts: LocateOptions = {}): LibTorchInfo {
  if (cached && !opts.refresh && !opts.pythons && !opts.noSystem) return cached;
  const attempts: string[] = [];
  const env = process.env.LIBTORCH;
  if (env) {
    try {
      cached = fromRoot(path.resolve(env), 'LIBTORCH');
      return cached;
    } catch (e) {
      // A set but broken LIBTORCH is an error of its own: the user asked for that one.
      throw new LibTorchNotFoundError([`LIBTORCH=${env}: ${(e as Error).message}`]);
    }
  }
  attempts.push('LIBTORCH is not set');
  for (const py of opts.pythons ?? pythonCandidates()) {
    try {
      cached = fromPython(py);
      return cached;
    } catch (e) {
      attempts.push(`Python ${py}: ${(e as Error).message}`);
    }
  }
  if (!opts.noSystem) {
    try {
      cached = fromSystem();
      return cached;
    } catch (e) {
      attempts.push(`system: ${(e as Error).message}`);
    }
  }
  throw new LibTorchNotFoundError(attempts);
}

if (require.main === module) {
  try {
    const info = locateLibTorch();
    const i = process.argv.indexOf('--field');
    if (i > 0) {
      const v = (info as unknown as Record<string, unknown>)[process.argv[i + 1]];
      process.stdout.write(Array.isArray(v) ? v.join(' ') : String(v));
    } else if (process.argv.includes('--json')) {
      process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    } else {
      process.stdout.write(
        `LibTorch ${info.fullVersion} (${info.source}) at ${info.root}\n` +
          `  CUDA build: ${info.cuda ? `yes, CUDA ${info.cudaVersion ?? '?'}` : 'no'}\n` +
          `  _GLIBCXX_USE_CXX11_ABI=${info.cxx11Abi}, C++${info.cxxStandard}\n` +
          (info.cuda ? `  CUDA headers: ${info.cudaIncludeDirs.join(' ') || `none usable (${info.cudaHeadersNote}): no CUDA graphs`}\n` : ''),
      );
    }
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
}
