#!/usr/bin/env node
// Builds the addon from source with cmake-js (offline: node-api-headers, via "binary.napi_versions").
// LibTorch is found by lib/native/locate-libtorch.js, which CMakeLists.txt runs itself (PYTHON or
// LIBTORCH pick another one).
//   node scripts/build-native.js [--out DIR]   DIR (default build) gets Release/libtorch_gan.node and
//                                              Release/libtorch-gan.json (what it was built against)
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

const root = path.resolve(__dirname, '..');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function parseOut(args) {
  if (args.length === 0) return 'build';
  if (args.length === 2 && args[0] === '--out' && args[1]) return args[1];
  console.error(`build-native: expected no option or --out DIR, got ${args.join(' ')}`);
  process.exit(2);
}

function main() {
  const out = parseOut(process.argv.slice(2));
  if (!['locate-libtorch.js', 'compat.js'].every((f) => fs.existsSync(path.join(root, 'lib', 'native', f)))) {
    console.error('lib/ is missing: run `npm run build:ts` first (`npm run build` does both, in that order)');
    process.exit(1);
  }
  // The sources as they are when the build starts (an edit during the build makes the binary stale).
  const { sourceHash } = require(path.join(root, 'lib', 'native', 'compat.js'));
  const hash = sourceHash(root);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'compile', '--out', out, `--CDNODE_EXECUTABLE=${process.execPath}`];
  if (hasNinja()) args.push('--generator', 'Ninja');
  if (process.env.LTG_DEBUG) args.push('--debug');
  const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL || String(require('node:os').availableParallelism());
  run(process.execPath, args, { env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs } });
  writeBuildInfo(hash, out);
}

function hasNinja() {
  return spawnSync('ninja', ['--version'], { stdio: 'ignore' }).status === 0;
}

// Record which LibTorch the binary was built against, next to it: the loader and scripts/install.js
// check it (lib/native/compat.js); prepack compares the source hash.
function writeBuildInfo(hash, out) {
  const { locateLibTorch } = require(path.join(root, 'lib', 'native', 'locate-libtorch.js'));
  const info = locateLibTorch();
  const file = path.resolve(root, out, 'Release', 'libtorch-gan.json');
  fs.writeFileSync(file, `${JSON.stringify(buildInfo(info, hash), null, 2)}\n`);
}

/** libtorch-gan.json's content for a binary built against LibTorch `info` from sources with hash `hash`. */
function buildInfo(info, hash) {
  return {
    libtorchVersion: info.version,
    cuda: info.cuda,
    cudaVersion: info.cudaVersion,
    cxx11Abi: info.cxx11Abi,
    // CMakeLists.txt compiles CUDA graphs in exactly when LibTorch is a CUDA build with usable headers
    cudaGraphs: info.cuda && info.cudaIncludeDirs.length > 0,
    sourceHash: hash,
    builtAt: new Date().toISOString(),
  };
}

module.exports = { buildInfo };
if (require.main === module) main();
