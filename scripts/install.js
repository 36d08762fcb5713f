#!/usr/bin/env node
// npm's install hook (also what `npm rebuild libtorch-gan` and `libtorch-gan build` run). In order:
//   1. a git clone has no lib/: compile the TypeScript (needs the dev dependencies);
//   2. find LibTorch (lib/native/locate-libtorch.js); none found: print the one command that installs
//      the pinned version (package.json "libtorch.version") and where it looks, exit 1;
//   3. a binary built for that LibTorch (version, C++ ABI, CUDA: the rule in lib/native/compat.js, which
//      the loader applies too) is already here: build/Release (a source build) or one of
//      prebuilds/<platform>-<arch>/<tag> (shipped in the package): use it, after a quick load test;
//   4. otherwise build from source: cmake-js (scripts/build-native.js) when cmake and a C++ compiler are
//      on PATH, else node-gyp (binding.gyp, local Node headers only) when a compiler and make are;
//   5. otherwise fail with what was found, what the prebuild is for ("found X, prebuilt for Y"), and how
//      to fix it.
// Environment: LIBTORCH_GAN_SKIP_INSTALL=1 skips all of it (CI steps that build explicitly);
// LIBTORCH_GAN_BUILD_FROM_SOURCE=1 (or `npm install --build-from-source`) ignores binaries already here
// and builds. With install scripts off (--ignore-scripts, npm's allowScripts, pnpm) nothing runs here,
// and the loader (lib/native/load.js) still takes a matching prebuild at load time, or says what to run.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const sourceDir = path.join(root, 'build', 'Release');
const LIB_FILES = ['locate-libtorch.js', 'compat.js'];

function log(msg) {
  console.log(`libtorch-gan: ${msg}`);
}

function fail(msg) {
  console.error(`libtorch-gan: ${msg}`);
  process.exit(1);
}

function truthy(v) {
  return !!v && !/^(0|false|no|off)$/i.test(v);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) return { ok: false, why: r.error.message };
  return { ok: r.status === 0, why: r.status === null ? `killed by ${r.signal}` : `exit code ${r.status}` };
}

/** An executable named `name` on PATH (what `which` does, without needing `which`). */
function onPath(name) {
  if (name.includes('/')) return isExecutable(name) ? name : null;
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    if (isExecutable(file)) return file;
  }
  return null;
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function resolveFrom(id) {
  try {
    return require.resolve(id, { paths: [root] });
  } catch {
    return null;
  }
}

// 1. lib/ is the compiled TypeScript; the npm package ships it, a git clone does not.
function ensureLib() {
  if (LIB_FILES.every((f) => fs.existsSync(path.join(root, 'lib', 'native', f)))) return;
  const tsc = resolveFrom('typescript/bin/tsc');
  if (!tsc) fail('lib/ is missing and TypeScript is not installed: run `npm install` (with dev dependencies), then `npm run build:ts`.');
  log('lib/ is missing or incomplete: compiling the TypeScript (npm run build:ts)');
  let r = run(process.execPath, [tsc, '-p', 'tsconfig.build.json']);
  if (r.ok) r = run(process.execPath, [path.join(root, 'scripts', 'esm-wrapper.js')]);
  if (!r.ok) fail(`compiling the TypeScript failed (${r.why})`);
}

function describeLibTorch(lt) {
  return `LibTorch ${lt.fullVersion} at ${lt.root}`;
}

/** Loads the addon the way the package does, in a child process; returns an error message or null. */
function loadTest() {
  const addon = path.join(root, 'lib', 'native', 'load.js');
  const code = `try { require(${JSON.stringify(addon)}).loadAddon() } catch (e) { process.stderr.write(String(e && e.message || e)); process.exit(1) }`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8', timeout: 120000 });
  if (r.status === 0) return null;
  return (r.stderr || r.error?.message || `exit code ${r.status}`).trim().split('\n')[0];
}

// Node's headers, never downloaded: <prefix of this node>/include/node, else /usr/include/node.
function nodeDir() {
  const own = path.resolve(process.execPath, '..', '..');
  if (fs.existsSync(path.join(own, 'include', 'node', 'node_api.h'))) return own;
  if (fs.existsSync('/usr/include/node/node_api.h')) return '/usr';
  return null;
}

function findNodeGyp() {
  const candidates = [resolveFrom('node-gyp/bin/node-gyp.js'), process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) candidates.push(path.resolve(process.env.npm_execpath, '..', '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(path.resolve(process.execPath, '..', '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((f) => f?.endsWith('.js') && fs.existsSync(f)) ?? null;
}

function findCompiler() {
  const cxx = process.env.CXX?.trim().split(/\s+/)[0];
  if (cxx) return onPath(cxx);
  return onPath('c++') || onPath('g++') || onPath('clang++');
}

/** How this machine can build from source: { tool, run() } or { reason } when it cannot. */
function builder(lt) {
  const cxx = findCompiler();
  const cmake = onPath('cmake');
  if (cxx && cmake) {
    return {
      tool: 'cmake-js',
      run: () => run(process.execPath, [path.join(root, 'scripts', 'build-native.js')]),
    };
  }
  const missing = [];
  if (!cxx) missing.push('no C++ compiler (c++, g++ or clang++) on PATH');
  if (!cmake) missing.push('no cmake on PATH');
  if (!cxx) return { reason: missing.join(' and ') };
  // The node-gyp fallback: a compiler, make, Python (for gyp) and Node's headers.
  const nodeGyp = findNodeGyp();
  const dir = nodeDir();
  const python = process.env.PYTHON || lt.python || onPath('python3');
  const gypMissing = [];
  if (!onPath('make')) gypMissing.push('make');
  if (!nodeGyp) gypMissing.push('node-gyp');
  if (!python) gypMissing.push('python3');
  if (!dir) gypMissing.push(`Node's headers (include/node/node_api.h under ${path.resolve(process.execPath, '..', '..')} or /usr)`);
  if (gypMissing.length) return { reason: `${missing[0]}, and the node-gyp fallback lacks ${gypMissing.join(', ')}` };
  return {
    tool: 'node-gyp',
    run: () => {
      const jobs = String(require('node:os').availableParallelism());
      const hash = compat().sourceHash(root);
      const r = run(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${dir}`, `--python=${python}`, '-j', jobs], {
        env: { ...process.env, PYTHON: python },
      });
      if (r.ok) {
        const { buildInfo } = require('./build-native.js');
        fs.writeFileSync(path.join(sourceDir, compat().BUILD_INFO_FILE), `${JSON.stringify(buildInfo(lt, hash), null, 2)}\n`);
      }
      return r;
    },
  };
}

/** lib/native/compat.js: the binary-compatibility rule and the pinned LibTorch (after ensureLib). */
function compat() {
  return require(path.join(root, 'lib', 'native', 'compat.js'));
}

function main() {
  if (truthy(process.env.LIBTORCH_GAN_SKIP_INSTALL)) {
    log('LIBTORCH_GAN_SKIP_INSTALL is set: not looking for LibTorch or building the addon');
    return;
  }
  ensureLib();
  const { chooseBinary, noBinaryMessage, describeBuild, isSupported, supportedRange, binaryIn } = compat();
  let lt;
  try {
    lt = require(path.join(root, 'lib', 'native', 'locate-libtorch.js')).locateLibTorch();
  } catch (e) {
    fail(e.message);
  }

  const force = truthy(process.env.LIBTORCH_GAN_BUILD_FROM_SOURCE) || truthy(process.env.npm_config_build_from_source);
  const { binary, rejected } = chooseBinary(root, lt);
  let loadErr = null; // why a binary built for this LibTorch still does not load
  if (!force && binary) {
    loadErr = loadTest();
    const what = binary.kind === 'prebuild' ? `the prebuilt binary ${path.basename(path.dirname(binary.file))}` : 'the existing source build';
    if (!loadErr) return log(`using ${what} for ${describeBuild(binary.info)} (${describeLibTorch(lt)})`);
    log(`${what} does not load: ${loadErr}`);
  }
  if (!isSupported(lt.version, root)) {
    log(`note: LibTorch ${lt.version} is outside the range libtorch-gan supports (${supportedRange(root)}); building for it all the same`);
  }

  const b = builder(lt);
  if (b.run) {
    const why = force ? 'asked to build from source' : loadErr ? 'the binary here does not load' : `no binary here fits ${describeLibTorch(lt)}`;
    log(`building from source with ${b.tool} against ${describeLibTorch(lt)} (${why}); this takes a few minutes`);
    const r = b.run();
    if (!r.ok) fail(`building from source with ${b.tool} failed (${r.why}); see the output above`);
    const err = loadTest();
    if (err) fail(`the binary just built does not load: ${err}`);
    return log(`built ${path.relative(root, binaryIn(sourceDir, 'source').file)} for LibTorch ${lt.version}`);
  }
  if (loadErr) {
    fail(
      `found ${describeLibTorch(lt)}, but its binary does not load (${loadErr}); cannot build from source: ${b.reason}.\n` +
        'Fix: install g++ and cmake (e.g. sudo apt-get install g++ cmake), then run: npx libtorch-gan build',
    );
  }
  fail(`${noBinaryMessage(root, lt, rejected)}\nCannot build from source here: ${b.reason}.`);
}

main();
