#!/usr/bin/env node
// Builds the prebuilt binary that the npm package ships, for this platform:
// prebuilds/<platform>-<arch>/libtorch-gan.node (stripped; Node-API 8, so any Node >= 20.19 loads it)
// plus prebuilds/<platform>-<arch>/libtorch-gan.json, the LibTorch it was built against and the hash of
// the native sources it was built from, which the loader and scripts/install.js compare with the
// LibTorch a user has (lib/native/compat.js).
//
//   node scripts/make-prebuild.js             `npm run prebuilds`: always builds
//   node scripts/make-prebuild.js --if-stale  prepack (npm pack, npm publish): builds only when the
//                                             prebuild is missing, for another LibTorch than the pinned
//                                             one (package.json "libtorch.version") or built from other
//                                             native sources; a current one is kept as it is
//   node scripts/make-prebuild.js --check     says whether the prebuild is current; exit 1 when not
//
// The prebuild is always built against the pinned LibTorch: with another one found this stops and says
// how to install the pinned one. prebuildify drives the build through scripts/prebuildify-cmake-shim.js
// (cmake-js instead of node-gyp). prebuildify moves build/Release/libtorch_gan.node into prebuilds/; a
// copy is put back afterwards so a source build in this checkout keeps working.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const platformDir = `${process.platform}-${process.arch}`;
const outDir = path.join(root, 'prebuilds', platformDir);
const rel = path.relative(root, outDir);
const release = path.join(root, 'build', 'Release');
const shim = path.join(__dirname, 'prebuildify-cmake-shim.js');
const MODES = ['--if-stale', '--check'];

// Everything goes to stderr (the build's output too), so `npm pack --json` prints only its JSON on stdout.
function log(msg) {
  console.error(`make-prebuild: ${msg}`);
}

function fail(msg) {
  console.error(`make-prebuild: ${msg}`);
  process.exit(1);
}

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['inherit', 2, 'inherit'] });
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

function parseMode(args) {
  for (const a of args) {
    if (!MODES.includes(a)) fail(`unknown option ${JSON.stringify(a)}; expected none, or one of ${MODES.join(', ')}`);
  }
  if (args.length > 1) fail(`expected at most one option, got ${args.join(' ')}`);
  return args[0] ?? 'always';
}

function ensureLib() {
  if (['locate-libtorch.js', 'compat.js'].every((f) => fs.existsSync(path.join(root, 'lib', 'native', f)))) return;
  log('lib/ is missing or incomplete: compiling the TypeScript (npm run build:ts)');
  run([require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', 'tsconfig.build.json']);
  run([path.join(root, 'scripts', 'esm-wrapper.js')]);
}

function main() {
  const mode = parseMode(process.argv.slice(2));
  ensureLib();
  const compat = require(path.join(root, 'lib', 'native', 'compat.js'));
  const { locateLibTorch, installCommand } = require(path.join(root, 'lib', 'native', 'locate-libtorch.js'));
  let pinned;
  try {
    pinned = compat.pinnedLibTorch(root);
  } catch (e) {
    fail(e.message);
  }
  const stale = compat.prebuildStaleness(root, outDir);
  if (mode === '--check') {
    if (stale) fail(`${rel} is not current: ${stale}`);
    return log(`${rel} is current (LibTorch ${pinned}, sources ${compat.sourceHash(root)})`);
  }
  if (mode === '--if-stale' && !stale) {
    return log(`${rel} is current (LibTorch ${pinned}, sources ${compat.sourceHash(root)}): packing it as it is`);
  }
  const why = stale ?? 'asked to build it';

  // What users get must fit the LibTorch the package pins (what scripts/setup.sh installs).
  let lt;
  try {
    lt = locateLibTorch();
  } catch (e) {
    fail(`${rel} needs building (${why}), but LibTorch is not here: ${e.message}`);
  }
  if (lt.version !== pinned) {
    fail(
      `${rel} needs building (${why}), and it must be built for the LibTorch the package pins, ${pinned} (package.json "libtorch.version"), ` +
        `but LibTorch ${lt.fullVersion} was found (${lt.source}: ${lt.root}).\n` +
        `Fix: install the pinned one (${installCommand(root)}) or point PYTHON or LIBTORCH at one, then run this again; ` +
        'or change "libtorch.version" in package.json (and the parity fixtures) to move the pin.',
    );
  }
  const missing = [];
  if (!(process.env.CXX || onPath('c++') || onPath('g++') || onPath('clang++'))) missing.push('a C++ compiler (c++, g++ or clang++)');
  if (!onPath('cmake')) missing.push('cmake');
  if (missing.length) fail(`${rel} needs building (${why}), which needs ${missing.join(' and ')} on PATH (e.g. sudo apt-get install g++ cmake)`);
  log(`${rel}: ${why}; building it for LibTorch ${lt.fullVersion} (a few minutes)`);
  if (!lt.cuda) log(`note: LibTorch ${lt.fullVersion} is CPU-only, so the prebuilt binary will be too`);

  // Old binaries here would be ambiguous: the loader takes the first *.node it finds.
  fs.mkdirSync(outDir, { recursive: true });
  for (const f of fs.readdirSync(outDir)) {
    if (f.endsWith('.node') || f === compat.BUILD_INFO_FILE) fs.rmSync(path.join(outDir, f));
  }
  fs.chmodSync(shim, 0o755); // prebuildify spawns it directly (no shell)

  const bin = require.resolve('prebuildify/bin.js', { paths: [root] });
  run([bin, '--napi', '--strip', '--target', `node@${process.versions.node}`, '--node-gyp', shim]);

  const built = fs.readdirSync(outDir).filter((f) => f.endsWith('.node'));
  if (built.length !== 1) throw new Error(`expected one .node in ${outDir}, found: ${built.join(', ') || 'none'}`);
  const info = path.join(release, compat.BUILD_INFO_FILE);
  if (!fs.existsSync(info)) throw new Error(`${info} is missing: scripts/build-native.js writes it`);
  fs.copyFileSync(info, path.join(outDir, compat.BUILD_INFO_FILE));
  fs.copyFileSync(path.join(outDir, built[0]), path.join(release, 'libtorch_gan.node'));

  const meta = JSON.parse(fs.readFileSync(info, 'utf8'));
  const size = (fs.statSync(path.join(outDir, built[0])).size / 1e6).toFixed(2);
  log(
    `${rel}/${built[0]} (${size} MB) + ${compat.BUILD_INFO_FILE}: LibTorch ${meta.libtorchVersion}, ` +
      `${meta.cuda ? `CUDA ${meta.cudaVersion}` : 'CPU-only'}, _GLIBCXX_USE_CXX11_ABI=${meta.cxx11Abi}, sources ${meta.sourceHash}`,
  );
  const after = compat.prebuildStaleness(root, outDir);
  if (after) fail(`the prebuild just built is not current: ${after} (did a native source change during the build?)`);
}

main();
