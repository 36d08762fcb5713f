/**
 * Every environment variable the package, its scripts, the benchmark, CI and the tests read is listed
 * in the README's "Environment variables" table. Reads the sources; fast.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '..', '..');
// Set by the system or by npm for every script, not options of ours.
const NOT_OURS = new Set(['PATH', 'HOME', 'TMPDIR', 'LANG', 'npm_execpath', 'npm_config_node_gyp', 'npm_config_build_from_source']);
const SOURCES = ['ts', 'scripts', 'bench', 'test', '.ci'];
const EXTENSIONS = /\.(ts|js|mjs|cjs|sh)$|^run$/;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const f = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!['node_modules', 'fixtures'].includes(e.name)) out.push(...files(f));
    } else if (EXTENSIONS.test(e.name)) out.push(f);
  }
  return out;
}

/** Names read as process.env.X, env.X (an env object passed in), process.env['X'] or ${X:-...} in shell. */
function envNames(text: string): string[] {
  const names = new Set<string>();
  for (const re of [
    /\bprocess\.env\.([A-Za-z_][A-Za-z0-9_]*)/g,
    /\benv\.([A-Z][A-Z0-9_]+)\b/g,
    /process\.env\[['"]([A-Za-z_][A-Za-z0-9_]*)['"]\]/g,
    /\$\{([A-Z][A-Z0-9_]*):[-=]/g,
  ]) {
    for (const m of text.matchAll(re)) names.add(m[1]);
  }
  return [...names];
}

function readmeTable(): string {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const start = readme.indexOf('## Environment variables');
  if (start < 0) throw new Error('README.md has no "## Environment variables" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

test('the scan finds the variables it should (so the next test can fail)', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, as setup.sh writes it
  expect(envNames("if (process.env.LIBTORCH) x(env.LTG_DEBUG, process.env['PYTHON']); PY=${PYTHON_BOOTSTRAP:-python3}").sort()).toEqual([
    'LIBTORCH',
    'LTG_DEBUG',
    'PYTHON',
    'PYTHON_BOOTSTRAP',
  ]);
});

test('every environment variable read by the sources is in the README table, with a default', () => {
  const table = readmeTable();
  const found = new Map<string, string>();
  for (const dir of SOURCES) {
    for (const f of files(path.join(repo, dir))) {
      if (f === __filename) continue; // this scanner's own examples
      for (const name of envNames(fs.readFileSync(f, 'utf8'))) if (!found.has(name)) found.set(name, path.relative(repo, f));
    }
  }
  // Sanity: the scan sees the package's own variables.
  expect([...found.keys()]).toEqual(expect.arrayContaining(['LIBTORCH', 'PYTHON', 'LIBTORCH_GAN_SKIP_INSTALL', 'LTG_APT']));
  const missing = [...found].filter(([name]) => !NOT_OURS.has(name) && !new RegExp(`\\b${name}\\b`).test(table)).map(([n, f]) => `${n} (read in ${f})`);
  expect(missing).toEqual([]);
  // Each row has three cells: variable, default, what it does.
  for (const row of table.split('\n').filter((l) => l.startsWith('| `'))) {
    expect({ row, cells: row.split('|').length - 2 }).toEqual({ row, cells: 3 });
  }
});
