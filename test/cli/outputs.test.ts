/**
 * What the CLI writes never replaces a run's own files, a folder, or another output of the same command
 * (export, sample --out); a resume with nothing to train says so; names from a hostile image folder are
 * escaped. Run as users run it (the built CLI in a child process).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { runCli, tinyRun } from '../helpers/lib';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-cli-outputs-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** SHA-256 of every file of a folder (recursively), by relative path: what a refused command must leave as it was. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out[path.relative(dir, p)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  }
  return out;
}

let run: string;
let before: Record<string, string>;
beforeAll(() => {
  run = tinyRun('vanilla', path.join(root, 'runs'));
  before = snapshot(run);
}, 120_000);

describe('export: no output replaces a run file, a folder or another output (exit 2, nothing written)', () => {
  const refused = (args: string[], ...parts: (string | RegExp)[]) => {
    const was = snapshot(run);
    const r = runCli(['export', run, ...args]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    for (const p of parts) expect(r.stderr).toMatch(typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
    expect(r.stderr).toContain("Run 'libtorch-gan export --help' for usage.");
    expect(snapshot(run)).toEqual(was);
    return r.stderr;
  };

  it('--onnx RUN/generator.safetensors and --pytorch RUN/trainer.json: named with the run folder and what would be lost; sample still works', () => {
    refused(
      ['--onnx', path.join(run, 'generator.safetensors')],
      `--onnx: ${path.join(run, 'generator.safetensors')} would overwrite generator.safetensors of the run folder ${run}; ` +
        "that would lose the generator's weights of the latest checkpoint, which sample, export and resume read",
    );
    refused(
      ['--pytorch', path.join(run, 'trainer.json')],
      `--pytorch: ${path.join(run, 'trainer.json')} would overwrite trainer.json of the run folder ${run}`,
      'neither resume nor be sampled',
    );
    refused(['--onnx', path.join(run, 'config.json')], "the run's config");
    // a name the run keeps files under, even while absent: the run would overwrite the export or take it for its own
    refused(['--pytorch', path.join(run, 'generator.safetensors.prev')], `is the name of generator.safetensors.prev of the run folder ${run}`);
    refused(['--onnx', path.join(run, 'samples', 'epoch-009.png')], "the run's sample grids");
    const s = runCli(['sample', run, '--count', '4', '--seed', '1', '--out', path.join(root, 'after.png')]);
    expect(s.status).toBe(0);
  });

  it('two outputs on one path, --web whose index.html or model another output writes: refused before anything is written', () => {
    const x = path.join(root, 'x.out');
    refused(['--onnx', x, '--pytorch', x], `--pytorch and --onnx both write ${x}: the second would replace the first`);
    const web = path.join(root, 'web');
    refused(['--web', web, '--onnx', path.join(web, 'generator.onnx')], `--web's generator.onnx and --onnx both write ${path.join(web, 'generator.onnx')}`);
    refused(['--web', web, '--pytorch', path.join(web, 'index.html')], `--web's index.html and --pytorch both write ${path.join(web, 'index.html')}`);
    // the same file under two spellings: through a symbolic link to its folder
    fs.mkdirSync(path.join(root, 'real'));
    fs.symlinkSync(path.join(root, 'real'), path.join(root, 'alias'));
    refused(['--onnx', path.join(root, 'real', 'g.bin'), '--pytorch', path.join(root, 'alias', 'g.bin')], `both write ${path.join(root, 'real', 'g.bin')}`);
    expect(fs.existsSync(x) || fs.existsSync(web) || fs.existsSync(path.join(root, 'real', 'g.bin'))).toBe(false);
  });

  it('a folder target, and links that point into any run folder (not only the one exported)', () => {
    refused(['--onnx', root], `--onnx: ${root} is a folder; give a file name`);
    refused(['--pytorch', `${path.join(root, 'new')}/`], 'names a folder; give a file name');
    // the atomic write renames over its target: /dev/null would be replaced by a file
    refused(['--onnx', '/dev/null'], '--onnx: /dev/null is not a regular file (a device, FIFO or socket); give a file name');
    // another run folder: recognised by its marker file, not by being the source
    const other = path.join(root, 'elsewhere', 'my-run');
    fs.mkdirSync(other, { recursive: true });
    fs.writeFileSync(path.join(other, 'trainer.json'), JSON.stringify({ format: 'libtorch-gan-checkpoint/1', epoch: 3 }));
    fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
    refused(['--onnx', path.join(other, 'notes.txt')], `would overwrite notes.txt of the run folder ${other}; that would lose its current contents`);
    const link = path.join(root, 'innocent.onnx');
    fs.symlinkSync(path.join(other, 'trainer.json'), link);
    refused(
      ['--onnx', link],
      `--onnx: ${link} would overwrite trainer.json (through a symbolic link, ${path.join(other, 'trainer.json')}) of the run folder ${other}`,
    );
    // a dangling link into a run folder counts too
    const dangling = path.join(root, 'dangling.pt');
    fs.symlinkSync(path.join(run, 'losses.csv.prev'), dangling);
    refused(['--pytorch', dangling], 'losses.csv.prev (through a symbolic link');
    expect(fs.readFileSync(path.join(other, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('new files inside a run folder, and outputs elsewhere, are written', () => {
    const r = runCli(['export', run, '--onnx', path.join(run, 'exported.onnx'), '--pytorch', path.join(root, 'G.pt')]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(fs.statSync(path.join(run, 'exported.onnx')).size).toBeGreaterThan(1000);
    // written once, it is now a file of the run folder: a second export there is refused
    refused(['--onnx', path.join(run, 'exported.onnx')], `would overwrite exported.onnx of the run folder ${run}`);
    fs.rmSync(path.join(run, 'exported.onnx'));
    expect(snapshot(run)).toEqual(before);
  });
});

describe('sample --out never replaces a run file', () => {
  it('--out RUN/generator.safetensors is refused (exit 2); a grid of its own in the run folder may be rewritten', () => {
    const r = runCli(['sample', run, '--count', '4', '--out', path.join(run, 'generator.safetensors')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--out: ${path.join(run, 'generator.safetensors')} would overwrite generator.safetensors of the run folder ${run}`);
    expect(snapshot(run)).toEqual(before);
    const grid = path.join(run, 'grid.png');
    for (let i = 0; i < 2; i++) expect(runCli(['sample', run, '--count', '4', '--seed', '1', '--out', grid]).status).toBe(0);
    fs.rmSync(grid);
  });

  it('--count 0 is a usage error, not an empty grid', () => {
    const r = runCli(['sample', run, '--count', '0']);
    expect([r.status, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toContain('sample: --count: expected an integer >= 1, got "0"');
  });
});

describe('train --resume with nothing to train', () => {
  it('says where the run is and how to ask for more; exit 0; the run folder untouched', () => {
    for (const [args, asked] of [
      [['--epochs', '1'], 'of the 1 asked for'],
      [[], 'of the 1 in its config'],
    ] as const) {
      const r = runCli(['train', '--resume', run, ...args]);
      expect(r).toMatchObject({ status: 0, stderr: '' });
      expect(r.stdout).toBe(`${run} is already at epoch 1 ${asked}; nothing to train. Ask for more: --epochs 2\n`);
      expect(snapshot(run)).toEqual(before);
    }
    // a key a resume may not change is still an error
    const bad = runCli(['train', '--resume', run, '--epochs', '1', '--lr', '0.5']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--lr: the run in');
  });
});

describe('train --data on a hostile folder', () => {
  it('a FIFO, a link to /dev/zero, a link loop and a class name with ESC and a newline: trains, warns with counts, prints names escaped', () => {
    const data = path.join(root, 'hostile');
    const png = (file: string, v: number) => {
      const p = new PNG({ width: 4, height: 4 });
      p.data.fill(v);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, PNG.sync.write(p));
    };
    const evil = 'evil\x1b[2J\nclass';
    for (let i = 0; i < 4; i++) png(path.join(data, 'a', `${i}.png`), 40 * i);
    for (let i = 0; i < 4; i++) png(path.join(data, evil, `${i}.png`), 200 - 40 * i);
    expect(spawnSync('mkfifo', [path.join(data, 'a', 'pipe.png')]).status).toBe(0);
    fs.symlinkSync('/dev/zero', path.join(data, evil, 'zero.png'));
    fs.symlinkSync(path.join('..', 'a'), path.join(data, evil, 'loop'));
    const r = spawnSync(
      process.execPath,
      [
        path.join(__dirname, '..', '..', 'lib', 'cli', 'main.js'),
        'train',
        '--data',
        data,
        '--preset',
        'cgan',
        '--epochs',
        '1',
        '--batch-size',
        '8',
        '--sample-every',
        '0',
        '--save-dir',
        path.join(root, 'hostile-runs'),
        '--seed',
        '1',
        '--verbose',
        '1',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('folder, 8 of 8 images in 2 classes (a, evil\\x1b[2J\\nclass), 3 x 28 x 28');
    expect(r.stderr).toContain(`2 of 10 files in ${data} are not regular files (FIFOs, devices or sockets) and were skipped unread`);
    expect(r.stderr).toContain(`1 file or folder in ${data} was reached again through links and not read again`);
    expect(r.stderr).toContain(`(first: ${data}/evil\\x1b[2J\\nclass/loop is ${data}/a)`);
    expect(`${r.stdout}${r.stderr}`).not.toContain('\x1b[2J');
  }, 150_000);
});
