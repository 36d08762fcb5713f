/**
 * docs/ARCHITECTURE.md is the map of ts/: its floor diagram is the rule every import obeys, and every
 * file its tables name exists. The diagram is read from the document itself, so the map and the code
 * cannot drift apart without this test failing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
const doc = fs.readFileSync(path.join(root, 'docs', 'ARCHITECTURE.md'), 'utf8');

/** The floors, top first, and the folders beside them, from the document's first fenced block. */
function floorsFromDoc(): { floors: string[][]; beside: string[] } {
  const block = doc.match(/```\n([\s\S]*?)```/)?.[1];
  if (!block) throw new Error('docs/ARCHITECTURE.md has no floor diagram (a fenced block)');
  const floors: string[][] = [];
  let beside: string[] = [];
  for (const line of block.split('\n')) {
    // a line: tree drawing, then its folders ("nn/  optim/"), then what they hold
    const lead = line.match(/^[\s└─│├]*((?:[a-z]+\/\s*)+)(.*)$/);
    if (!lead) continue;
    const names = [...lead[1].matchAll(/([a-z]+)\//g)].map((m) => m[1]);
    if (/^beside\b/.test(lead[2])) beside = names;
    else floors.push(names);
  }
  return { floors, beside };
}

/** Every relative import of a TypeScript file: static, `import type`, export-from, import() and require(). */
function importsOf(src: string): string[] {
  return [...src.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]*)['"]/gm)].map((m) => m[1]);
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

const tsRoot = path.join(root, 'ts');
const { floors, beside } = floorsFromDoc();
const folderOf = (file: string) => {
  const rel = path.relative(tsRoot, file).split(path.sep);
  return rel.length > 1 ? rel[0] : null; // null: ts/index.ts, the package's entry, may import anything
};

describe('docs/ARCHITECTURE.md floors', () => {
  it('name every folder of ts/ once', () => {
    const named = [...floors.flat(), ...beside];
    const folders = fs
      .readdirSync(tsRoot, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect([...named].sort()).toEqual([...folders].sort());
    expect(new Set(named).size).toBe(named.length);
    expect(floors.length).toBeGreaterThanOrEqual(5);
  });

  it('hold for every import: down the floors or beside, never up or sideways', () => {
    const level = new Map<string, number>();
    floors.forEach((names, i) => {
      for (const n of names) level.set(n, i);
    });
    const bad: string[] = [];
    for (const file of tsFiles(tsRoot)) {
      const from = folderOf(file);
      if (from === null) continue;
      for (const spec of importsOf(fs.readFileSync(file, 'utf8'))) {
        const to = folderOf(path.resolve(path.dirname(file), spec));
        if (to === null) {
          bad.push(`${path.relative(root, file)} imports the package entry (${spec})`);
          continue;
        }
        if (to === from || to === 'util') continue;
        const why = beside.includes(from)
          ? 'a folder beside the floors imports only util/'
          : beside.includes(to)
            ? null
            : level.get(to)! > level.get(from)!
              ? null
              : level.get(to) === level.get(from)
                ? 'folders on one floor do not import each other'
                : 'an import goes up a floor';
        if (why) bad.push(`${path.relative(root, file)} imports ${spec} (${from}/ -> ${to}/): ${why}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('catch an upward import (the check itself)', () => {
    expect(importsOf("import { type Trainer } from '../run/trainer';\nexport { x } from './y';\nconst m = require('../cli/main');")).toEqual([
      '../run/trainer',
      './y',
      '../cli/main',
    ]);
  });

  it('leave printing to the CLI', () => {
    const prints: string[] = [];
    for (const file of tsFiles(tsRoot)) {
      if (folderOf(file) === 'cli') continue;
      // a file run as a script (the LibTorch locator, which CMake runs) prints in its main block only
      const src = fs.readFileSync(file, 'utf8').split(/^if \(require\.main === module\)/m)[0];
      if (/\bconsole\.|process\.(stdout|stderr)\b/.test(src)) prints.push(path.relative(root, file));
    }
    expect(prints).toEqual([]);
  });
});

describe('the house sizes', () => {
  // a file reads in one sitting; a folder (its own files, not its subfolders) in an afternoon's share
  it('no ts/ file over 400 lines, no folder over about 1,500', () => {
    const big: string[] = [];
    const perFolder = new Map<string, number>();
    for (const file of tsFiles(tsRoot)) {
      const lines = fs.readFileSync(file, 'utf8').split('\n').length - 1;
      if (lines > 400) big.push(`${path.relative(root, file)}: ${lines} lines`);
      const dir = path.relative(root, path.dirname(file));
      perFolder.set(dir, (perFolder.get(dir) ?? 0) + lines);
    }
    for (const [dir, lines] of perFolder) if (lines > 1600) big.push(`${dir}/: ${lines} lines`);
    expect(big).toEqual([]);
  });
});

describe('docs/ARCHITECTURE.md tables', () => {
  it('name only files that exist', () => {
    const missing: string[] = [];
    let folder = '';
    for (const line of doc.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      if (cells.length < 4 || /^-+$/.test(cells[1]) || cells[1] === 'folder') continue;
      const f = cells[1].match(/^`([a-z-]+)\/`/);
      if (f) folder = f[1];
      else if (cells[1] !== '') continue; // a row of another table
      for (const m of cells[2].matchAll(/`((?:[a-z]+\/)?[a-z0-9-]+\.(?:ts|cc|h))`/g)) {
        const dir = m[1].endsWith('.ts') ? path.join(tsRoot, folder) : path.join(root, 'native');
        if (!fs.existsSync(path.join(dir, m[1]))) missing.push(`${folder}/${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
