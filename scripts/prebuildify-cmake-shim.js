#!/usr/bin/env node
// Stands in for node-gyp when prebuildify builds (scripts/make-prebuild.js passes it as --node-gyp).
// prebuildify runs `<this> rebuild --target=... --devdir=... --arch=... --release` in the package root
// and then takes the first build/Release/*.node. The addon is built with cmake-js, not node-gyp, so
// the arguments are ignored (it is a Node-API addon: one binary serves every Node version) and
// scripts/build-native.js does the build, leaving build/Release/libtorch_gan.node and its
// build/Release/libtorch-gan.json.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  console.error(`prebuildify-cmake-shim: expected "rebuild", got: ${args.join(' ')}`);
  process.exit(1);
}
if (args.includes('--debug')) {
  console.error('prebuildify-cmake-shim: --debug is not supported (cmake-js writes Release builds here)');
  process.exit(1);
}
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.js')], { cwd: root, stdio: 'inherit' });
if (r.error) throw r.error;
process.exit(r.status ?? 1);
