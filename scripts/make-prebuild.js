#!/usr/bin/env node
// Builds the prebuilt binaries the npm package ships for this platform, one per LibTorch version in
// package.json "libtorch.prebuilds": prebuilds/<platform>-<arch>/<tag>/libtorch-gan.node (stripped;
// Node-API 8, so any Node >= 20.19 loads it) plus libtorch-gan.json beside it (the LibTorch, CUDA
// version and native sources it was built from), which the loader compares with the LibTorch a user has
// (lib/native/compat.js). <tag> is torch-<version>-<cuXYZ|cpu>.
//
//   node scripts/make-prebuild.js [--torch V]             `npm run prebuilds`: builds them (or only V's)
//   node scripts/make-prebuild.js [--torch V] --if-stale  prepack (npm pack, npm publish): builds only
//                                                         the missing ones and those built from other
//                                                         native sources; current ones are kept
//   node scripts/make-prebuild.js [--torch V] --check     says whether they are current; exit 1 when not
//
// Each is built against that version's own headers (and the CUDA headers of the CUDA version that torch
// was built with) from the torch of a venv: for version V, the first of $PYTHON, .venv-torch/V and .venv
// whose torch is V. `bash scripts/torch-venv.sh V` makes .venv-torch/V. Builds go to build-prebuild/V
// (build/ is left alone), except that a current source build in build/Release for V is reused.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const MODES = ['--if-stale', '--check'];

// Everything goes to stderr (the build's output too), so `npm pack --json` prints only its JSON on stdout.
function log(msg) {
  console.error(`make-prebuild: ${msg}`);
}

function fail(msg) {
  console.error(`make-prebuild: ${msg}`);
  process.exit(1);
}

function run(args, env = process.env) {
  const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: ['inherit', 2, 'inherit'] });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function onPath(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const file = dir && path.join(dir, name);
    try {
      if (file && fs.statSync(file).isFile()) {
        fs.accessSync(file, fs.constants.X_OK);
        return file;
      }
    } catch {
      // not here
    }
  }
  return null;
}

function parseArgs(args) {
  let mode = 'always';
  let torch = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--torch') {
      torch = args[++i];
      if (!torch || !/^\d+\.\d+\.\d+$/.test(torch)) fail(`--torch needs a LibTorch version like 2.11.0, got ${JSON.stringify(torch ?? null)}`);
    } else if (MODES.includes(a)) {
      if (mode !== 'always') fail(`expected at most one of ${MODES.join(', ')}, got ${mode} and ${a}`);
      mode = a;
    } else {
      fail(`unknown option ${JSON.stringify(a)}; expected --torch V, ${MODES.join(', ')}`);
    }
  }
  return { mode, torch };
}

function ensureLib() {
  if (['locate-libtorch.js', 'compat.js'].every((f) => fs.existsSync(path.join(root, 'lib', 'native', f)))) return;
  log('lib/ is missing or incomplete: compiling the TypeScript (npm run build:ts)');
  run([require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', 'tsconfig.build.json']);
  run([path.join(root, 'scripts', 'esm-wrapper.js')]);
}

/** LibTorch `version` from one of the venvs (see the header), or null with what was tried. */
function libtorchFor(version, locate) {
  const tried = [];
  const candidates = [process.env.PYTHON, path.join(root, '.venv-torch', version, 'bin', 'python'), path.join(root, '.venv', 'bin', 'python')];
  for (const py of candidates) {
    if (!py || tried.some((t) => t.startsWith(`${py}:`))) continue;
    if (py.includes('/') && !fs.existsSync(py)) {
      tried.push(`${py}: missing`);
      continue;
    }
    try {
      const lt = locate({ refresh: true, pythons: [py], noSystem: true });
      if (lt.version === version) return { lt, python: py, tried };
      tried.push(`${py}: torch ${lt.fullVersion}`);
    } catch (e) {
      tried.push(`${py}: ${e.message.split('\n')[0]}`);
    }
  }
  return { lt: null, python: null, tried };
}

/** Copies `src` to `dest` without its symbols (strip --strip-unneeded), or as it is without strip. */
function stripCopy(src, dest) {
  const strip = onPath('strip');
  if (strip) {
    const r = spawnSync(strip, ['--strip-unneeded', '-o', dest, src], { stdio: ['ignore', 2, 'inherit'] });
    if (r.status === 0) return;
    log(`strip failed (exit ${r.status}); shipping the binary unstripped`);
  }
  fs.copyFileSync(src, dest);
}

function build(compat, version, why, locate) {
  const { lt, python, tried } = libtorchFor(version, locate);
  if (!lt) {
    fail(
      `the prebuild for LibTorch ${version} needs building (${why}), against torch ${version} itself, which is not here ` +
        `(${tried.join('; ')}).\nFix: bash scripts/torch-venv.sh ${version}   (a venv with torch==${version} in .venv-torch/${version}), then run this again.`,
    );
  }
  const missing = [];
  if (!(process.env.CXX || onPath('c++') || onPath('g++') || onPath('clang++'))) missing.push('a C++ compiler (c++, g++ or clang++)');
  if (!onPath('cmake')) missing.push('cmake');
  if (missing.length)
    fail(`the prebuild for LibTorch ${version} needs building (${why}), which needs ${missing.join(' and ')} on PATH (e.g. sudo apt-get install g++ cmake)`);
  if (!lt.cuda) log(`note: LibTorch ${lt.fullVersion} is CPU-only, so its prebuilt binary will be too`);
  if (lt.cuda && lt.cudaIncludeDirs.length === 0) log(`note: LibTorch ${lt.fullVersion}'s binary will have no CUDA graphs: ${lt.cudaHeadersNote}`);

  // A source build in build/Release made from these sources for this very LibTorch is the same binary.
  const hash = compat.sourceHash(root);
  const own = compat.binaryIn(path.join(root, 'build', 'Release'), 'source');
  let release;
  if (
    own?.info &&
    own.info.sourceHash === hash &&
    !compat.incompatibility(own.info, lt) &&
    own.info.cudaGraphs === (lt.cuda && lt.cudaIncludeDirs.length > 0)
  ) {
    log(`LibTorch ${version}: ${why}; taking the current source build in build/Release (built for LibTorch ${lt.fullVersion})`);
    release = path.dirname(own.file);
  } else {
    log(`LibTorch ${version}: ${why}; building it against LibTorch ${lt.fullVersion} (${python}) in build-prebuild/${version} (a few minutes)`);
    const env = { ...process.env, PYTHON: python };
    delete env.LIBTORCH;
    run([path.join(root, 'scripts', 'build-native.js'), '--out', path.join('build-prebuild', version)], env);
    release = path.join(root, 'build-prebuild', version, 'Release');
  }
  const info = JSON.parse(fs.readFileSync(path.join(release, compat.BUILD_INFO_FILE), 'utf8'));
  const outDir = path.join(compat.prebuildsRoot(root), compat.prebuildTag(info));
  // one prebuild per LibTorch version: drop an older one of another CUDA flavour
  for (const b of compat.listBinaries(root)) {
    if (b.kind === 'prebuild' && (b.info?.libtorchVersion === version || !b.info)) fs.rmSync(path.dirname(b.file), { recursive: true, force: true });
  }
  fs.mkdirSync(outDir, { recursive: true });
  stripCopy(path.join(release, 'libtorch_gan.node'), path.join(outDir, 'libtorch-gan.node'));
  fs.copyFileSync(path.join(release, compat.BUILD_INFO_FILE), path.join(outDir, compat.BUILD_INFO_FILE));
  const rel = path.relative(root, outDir);
  const size = (fs.statSync(path.join(outDir, 'libtorch-gan.node')).size / 1e6).toFixed(2);
  log(
    `${rel}/libtorch-gan.node (${size} MB) + ${compat.BUILD_INFO_FILE}: LibTorch ${info.libtorchVersion}, ` +
      `${info.cuda ? `CUDA ${info.cudaVersion}${info.cudaGraphs ? ' with CUDA graphs' : ', no CUDA graphs'}` : 'CPU-only'}, ` +
      `_GLIBCXX_USE_CXX11_ABI=${info.cxx11Abi}, sources ${info.sourceHash}`,
  );
  const after = compat.prebuildStaleness(root, version);
  if (after) fail(`the prebuild just made for LibTorch ${version} is not current: ${after} (did a native source change during the build?)`);
}

function main() {
  const { mode, torch } = parseArgs(process.argv.slice(2));
  ensureLib();
  const compat = require(path.join(root, 'lib', 'native', 'compat.js'));
  const { locateLibTorch } = require(path.join(root, 'lib', 'native', 'locate-libtorch.js'));
  let versions;
  try {
    versions = compat.prebuildVersions(root);
  } catch (e) {
    fail(e.message);
  }
  if (torch) {
    if (!compat.isSupported(torch, root))
      fail(`LibTorch ${torch} is outside the supported range ${compat.supportedRange(root)} (package.json "libtorch.supported")`);
    versions = [torch];
  }
  const stale = versions.map((v) => [v, compat.prebuildStaleness(root, v)]);
  const rel = path.relative(root, compat.prebuildsRoot(root));
  if (mode === '--check') {
    const bad = stale.filter(([, why]) => why);
    for (const [v, why] of stale) log(`${rel}: LibTorch ${v}: ${why ? `not current: ${why}` : `current (sources ${compat.sourceHash(root)})`}`);
    if (bad.length) process.exit(1);
    return;
  }
  for (const [v, why] of stale) {
    if (mode === '--if-stale' && !why) {
      log(`${rel}: LibTorch ${v}: current (sources ${compat.sourceHash(root)}): packing it as it is`);
      continue;
    }
    build(compat, v, why ?? 'asked to build it', locateLibTorch);
  }
}

main();
