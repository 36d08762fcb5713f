#!/usr/bin/env node
// Writes lib/index.mjs (+ .d.mts): the ES module entry re-exports the CommonJS build's named exports,
// so `import { torch } from 'libtorch-gan'` and `require('libtorch-gan')` share one instance.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const lib = path.resolve(__dirname, '..', 'lib');
const names = Object.keys(require(path.join(lib, 'index.js'))).filter((n) => n !== 'default' && n !== '__esModule');
const mjs = `import cjs from './index.js';\nexport const { ${names.join(', ')} } = cjs;\nexport default cjs;\n`;
fs.writeFileSync(path.join(lib, 'index.mjs'), mjs);
fs.writeFileSync(path.join(lib, 'index.d.mts'), "export * from './index.js';\nimport * as all from './index.js';\nexport default all;\n");
// lib/cli/main.js is the package's bin: `npx libtorch-gan` in a clone runs it directly, and tsc writes it
// without the execute bit (npm sets it only when linking an installed package's bins).
fs.chmodSync(path.join(lib, 'cli', 'main.js'), 0o755);
