#!/usr/bin/env node
// `npm run prebuilds`: builds the prebuilt binary that the npm package ships, for this platform:
// prebuilds/<platform>-<arch>/libtorch-gan.node (stripped; Node-API 8, so any Node >= 20.19 loads it)
// plus prebuilds/<platform>-<arch>/libtorch-gan.json, the LibTorch it was built against, which the
// loader and scripts/install.js compare with the LibTorch a user has.
// prebuildify drives the build through scripts/prebuildify-cmake-shim.js (cmake-js instead of node-gyp).
// prebuildify moves build/Release/libtorch_gan.node into prebuilds/; a copy is put back afterwards so a
// source build in this checkout keeps working.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const platformDir = `${process.platform}-${process.arch}`;
const outDir = path.join(root, 'prebuilds', platformDir);
const release = path.join(root, 'build', 'Release');
const shim = path.join(__dirname, 'prebuildify-cmake-shim.js');

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function main() {
  if (!fs.existsSync(path.join(root, 'lib', 'native', 'locate-libtorch.js'))) {
    console.log('lib/ is missing: compiling the TypeScript (npm run build:ts)');
    run([require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', 'tsconfig.build.json']);
    run([path.join(root, 'scripts', 'esm-wrapper.js')]);
  }
  // Old binaries here would be ambiguous: the loader takes the first *.node it finds.
  fs.mkdirSync(outDir, { recursive: true });
  for (const f of fs.readdirSync(outDir)) {
    if (f.endsWith('.node') || f === 'libtorch-gan.json') fs.rmSync(path.join(outDir, f));
  }
  fs.chmodSync(shim, 0o755); // prebuildify spawns it directly (no shell)

  const bin = require.resolve('prebuildify/bin.js', { paths: [root] });
  run([bin, '--napi', '--strip', '--target', `node@${process.versions.node}`, '--node-gyp', shim]);

  const built = fs.readdirSync(outDir).filter((f) => f.endsWith('.node'));
  if (built.length !== 1) throw new Error(`expected one .node in ${outDir}, found: ${built.join(', ') || 'none'}`);
  const info = path.join(release, 'libtorch-gan.json');
  if (!fs.existsSync(info)) throw new Error(`${info} is missing: scripts/build-native.js writes it`);
  fs.copyFileSync(info, path.join(outDir, 'libtorch-gan.json'));
  fs.copyFileSync(path.join(outDir, built[0]), path.join(release, 'libtorch_gan.node'));

  const meta = JSON.parse(fs.readFileSync(info, 'utf8'));
  const size = (fs.statSync(path.join(outDir, built[0])).size / 1e6).toFixed(2);
  console.log(
    `prebuilds/${platformDir}/${built[0]} (${size} MB) + libtorch-gan.json: LibTorch ${meta.libtorchVersion}, ` +
      `${meta.cuda ? `CUDA ${meta.cudaVersion}` : 'CPU-only'}, _GLIBCXX_USE_CXX11_ABI=${meta.cxx11Abi}`,
  );
}

main();
