#!/usr/bin/env node
// Builds the addon from source with cmake-js (offline: node-api-headers, via "binary.napi_versions").
// LibTorch is found by lib/native/locate-libtorch.js, which CMakeLists.txt runs itself.
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

function main() {
  if (!['locate-libtorch.js', 'compat.js'].every((f) => fs.existsSync(path.join(root, 'lib', 'native', f)))) {
    console.error('lib/ is missing: run `npm run build:ts` first (`npm run build` does both, in that order)');
    process.exit(1);
  }
  // The sources as they are when the build starts (an edit during the build makes the binary stale).
  const { sourceHash } = require(path.join(root, 'lib', 'native', 'compat.js'));
  const hash = sourceHash(root);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'compile', '--out', 'build', `--CDNODE_EXECUTABLE=${process.execPath}`];
  if (hasNinja()) args.push('--generator', 'Ninja');
  if (process.env.LTG_DEBUG) args.push('--debug');
  const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL || String(require('node:os').availableParallelism());
  run(process.execPath, args, { env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs } });
  writeBuildInfo(hash);
}

function hasNinja() {
  return spawnSync('ninja', ['--version'], { stdio: 'ignore' }).status === 0;
}

// Record which LibTorch the binary was built against, next to it: the loader and scripts/install.js
// check it (lib/native/compat.js); prepack compares the source hash.
function writeBuildInfo(hash) {
  const { locateLibTorch } = require(path.join(root, 'lib', 'native', 'locate-libtorch.js'));
  const info = locateLibTorch();
  const out = path.join(root, 'build', 'Release', 'libtorch-gan.json');
  fs.writeFileSync(out, `${JSON.stringify(buildInfo(info, hash), null, 2)}\n`);
}

/** libtorch-gan.json's content for a binary built against LibTorch `info` from sources with hash `hash`. */
function buildInfo(info, hash) {
  return {
    libtorchVersion: info.version,
    cuda: info.cuda,
    cudaVersion: info.cudaVersion,
    cxx11Abi: info.cxx11Abi,
    sourceHash: hash,
    builtAt: new Date().toISOString(),
  };
}

module.exports = { buildInfo };
if (require.main === module) main();
