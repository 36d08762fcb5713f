/**
 * The `libtorch-gan` command, run as users run it: the compiled lib/cli/main.js in a child
 * process (rebuilt from ts/ first when any source is newer).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { locateLibTorch } from '../../ts/native/locate-libtorch';
import { info } from '../../ts/native/info';
import { presets, PRESET_NAMES } from '../../ts/gan/presets';
import * as torch from '../../ts/tensor/torch';
import { nativeCudaReason } from '../helpers/cuda';
import { builtLib, runCli } from '../helpers/lib';

const repo = path.resolve(__dirname, '..', '..');
const MAIN = path.join(repo, 'lib', 'cli', 'main.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-cli-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

beforeAll(() => {
  builtLib(path.join('lib', 'cli', 'main.js'));
}, 120000);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  const env = { ...process.env, ...opts.env };
  if (!opts.env?.LTG_DEBUG) delete env.LTG_DEBUG;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd ?? root, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const pkgVersion = (JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string }).version;

describe('libtorch-gan: help, version, presets, info', () => {
  it('prints help overall and per command, and the version', async () => {
    const [main, train, helpSample, version, noArgs] = await Promise.all([
      cli(['--help']),
      cli(['train', '--help']),
      cli(['help', 'sample']),
      cli(['--version']),
      cli([]),
    ]);
    expect(main.code).toBe(0);
    expect(main.stdout).toMatch(/^Usage: libtorch-gan <command> \[options\]/);
    for (const c of ['train', 'sample', 'presets', 'info', 'report']) expect(main.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(train.code).toBe(0);
    for (const flag of [
      '--preset NAME',
      '--config FILE',
      '--epochs N',
      '--batch-size N',
      '--device DEVICE',
      '--save-dir DIR',
      '--seed N',
      '--verbose N',
      '--threads N',
      '--resume RUN_DIR',
      '--limit N',
    ]) {
      expect(train.stdout).toContain(flag);
    }
    expect(helpSample.code).toBe(0);
    expect(helpSample.stdout).toMatch(/^Usage: libtorch-gan sample --checkpoint RUN_DIR/);
    expect(version).toMatchObject({ code: 0, stdout: `${pkgVersion}\n`, stderr: '' });
    expect(noArgs.code).toBe(2);
    expect(noArgs.stderr).toMatch(/^Usage: libtorch-gan/);
  });

  it('presets: a table of name, seed, batch size, lr, epochs and description', async () => {
    const r = await cli(['presets']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+SEED\s+BATCH\s+LR\s+EPOCHS\s+DESCRIPTION$/);
    for (const name of PRESET_NAMES) {
      const p = presets[name];
      const line = lines.find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}* `));
      expect(line).toBeDefined();
      const cols = line!.split(/\s{2,}/);
      expect(cols.slice(1, 5)).toEqual([p.seed ?? '-', String(p.batchSize), String(p.optimizer.lr), String(p.epochs)]);
      expect(cols[5].length).toBeGreaterThan(20);
    }
    expect(r.stdout).toContain('cgan*');
    expect(r.stdout).toContain('* default preset');
    const json = await cli(['presets', '--json']);
    expect(JSON.parse(json.stdout).ganist.batchSize).toBe(128);
  });

  it('info: versions, LibTorch, CUDA, threads', async () => {
    const r = await cli(['info']);
    const i = info();
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`libtorch-gan ${pkgVersion}`);
    expect(r.stdout).toContain(`LibTorch     ${i.libtorch.fullVersion}`);
    expect(r.stdout).toMatch(/^CUDA {9}(available|not available)/m);
    expect(r.stdout).toMatch(/^threads {6}\d+ intra-op/m);
    // CUDA graphs are compiled in exactly when the LibTorch is a CUDA build whose CUDA headers were found
    const lt = locateLibTorch();
    expect(i.cuda.graphs).toBe(lt.cuda && lt.cudaIncludeDirs.length > 0);
    expect(r.stdout).toContain(`CUDA graphs ${i.cuda.graphs ? 'compiled in' : 'not compiled in'}`);
  });
});

describe('libtorch-gan: usage errors exit 2 and name the flag', () => {
  const bad = path.join(root, 'bad.json');
  beforeAll(() => fs.writeFileSync(bad, JSON.stringify({ epochs: 'x', bogus: 1 })));

  const cases: [string, string[], RegExp][] = [
    ['unknown flag', ['train', '--epoch', '3'], /^libtorch-gan train: unknown option --epoch \(did you mean --epochs\?\)/],
    ['bad integer', ['train', '--epochs', '0'], /--epochs: expected an integer >= 1, got "0"/],
    ['not a number', ['train', '--batch-size', 'ten'], /--batch-size: expected an integer >= 1, got "ten"/],
    ['missing value', ['train', '--epochs'], /option --epochs needs a value/],
    ['verbose range', ['train', '--verbose', '5'], /--verbose: expected an integer from 0 to 3, got "5"/],
    ['device', ['train', '--device', 'gpu'], /--device: expected one of auto, cpu, cuda, got "gpu"/],
    [
      'preset typo',
      ['train', '--preset', 'vanila'],
      /--preset: expected one of seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan, sngan, wgan-gp, got "vanila" \(did you mean vanilla\?\)/,
    ],
    ['positional', ['train', 'extra'], /unexpected argument "extra"/],
    ['config file missing', ['train', '--config', 'nope.json'], /nope\.json: config file not found/],
    [
      'config file values',
      ['train', '--config', 'bad.json'],
      /bad\.json: config\.epochs: expected an integer >= 1, got "x"[\s\S]*bad\.json: config: unknown key "bogus"/,
    ],
    ['unknown command', ['trian'], /unknown command "trian" \(did you mean train\?\)/],
    ['option before command', ['--epochs', '3'], /unknown option --epochs/],
    ['sample without run', ['sample', '--out', 'x.png'], /libtorch-gan sample: missing --checkpoint RUN_DIR/],
    ['sample count', ['sample', '--checkpoint', 'runs/run-1', '--count', '-3'], /option --count needs a value|--count: expected an integer >= 1/],
    ['report without run', ['report'], /libtorch-gan report: missing RUN_DIR/],
    ['flag value for boolean', ['info', '--json=1'], /option --json takes no value/],
  ];

  it.each(cases)('%s', async (_name, args, message) => {
    const r = await cli(args);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 2, stderr: expect.stringMatching(message) });
    expect(r.stderr).toMatch(/Run 'libtorch-gan( \w+)? --help' for usage\./);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.stdout).toBe('');
  });
});

describe('libtorch-gan train, sample, report (256 images, CPU)', () => {
  const saveDir = path.join(root, 'runs');
  let first: Run;
  let quiet: Run;
  const run1 = path.join(saveDir, 'run-1');
  beforeAll(async () => {
    first = await cli([
      'train',
      '--epochs',
      '1',
      '--limit',
      '256',
      '--preset',
      'vanilla',
      '--save-dir',
      saveDir,
      '--seed',
      '1',
      '--device',
      'cpu',
      '--verbose',
      '3',
    ]);
    fs.writeFileSync(path.join(root, 'udacity.json'), JSON.stringify({ preset: 'udacity', epochs: 5, sampleEvery: 0, verbose: 2 }));
    // flags override the file (epochs, verbose)
    quiet = await cli(['train', '--config', 'udacity.json', '--epochs', '1', '--limit', '256', '--save-dir', saveDir, '--seed', '1', '--verbose', '0']);
  }, 120000);

  it('trains, prints the architecture, progress and a summary, and writes the run folder', () => {
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Run folder {2}.*run-1$/m);
    expect(first.stdout).toContain('Generator:\nSequential(\n  (0): Linear(in_features=100, out_features=256, bias=true)');
    expect(first.stdout).toContain('Discriminator:\nSequential(');
    expect(first.stdout).toContain('Optimizer (G and D): Adam(lr=0.0002'); // verbose 2
    expect(first.stdout).toMatch(/^ {2}total\s+1,486,352$/m); // verbose 3: G's parameter count
    expect(first.stdout).toMatch(/^Training finished\n {2}Epochs +1\n {2}Steps +3$/m);
    // the start table and the summary name the device (asked for: no fallback) and the CUDA graph's state
    expect(first.stdout).toMatch(/^Device {6}cpu\nCUDA graph {2}off: not on a CUDA device\nData /m);
    expect(first.stdout).toMatch(/^ {2}Device {9}cpu\n {2}CUDA graph {5}off: not on a CUDA device\n {2}Files$/m);
    expect(first.stdout).toContain(`tensorboard --logdir ${run1}`);
    expect(first.stderr).toMatch(/^epoch 1\/1 step 1\/3 \(33%\) \| D \d\.\d{4} G \d\.\d{4}/m); // plain progress lines (not a TTY)
    expect(first.stderr).toMatch(/^epoch 1\/1 done in [\d.]+s \| D \d\.\d{4} G \d\.\d{4}/m);
    for (const f of [
      'config.json',
      'trainer.json',
      'generator.safetensors',
      'discriminator.safetensors',
      'optimizer_g.safetensors',
      'optimizer_d.safetensors',
      'rng.safetensors',
      'real.png',
      'samples/epoch-001.png',
      'loss.png',
      'loss.svg',
      'losses.csv',
      'report.html',
    ]) {
      expect({ f, exists: fs.existsSync(path.join(run1, f)) }).toEqual({ f, exists: true });
    }
    expect(fs.readdirSync(run1).some((f) => f.startsWith('events.out.tfevents.'))).toBe(true);
    const cfg = JSON.parse(fs.readFileSync(path.join(run1, 'config.json'), 'utf8'));
    expect(cfg.config).toMatchObject({ seed: 1, device: 'cpu', verbose: 3, preset: { name: 'vanilla', epochs: 1 } });
    expect(cfg.limit).toBe(256);
  });

  it('--config FILE with flags over it; --verbose 0 prints nothing; the next run gets the next folder', () => {
    expect(quiet).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(fs.existsSync(path.join(saveDir, 'run-2', 'trainer.json'))).toBe(true);
    const cfg = JSON.parse(fs.readFileSync(path.join(saveDir, 'run-2', 'config.json'), 'utf8'));
    expect(cfg.config).toMatchObject({ preset: { name: 'udacity', epochs: 1 }, sampleEvery: 0, verbose: 0, seed: 1 });
    expect(fs.existsSync(path.join(saveDir, 'run-2', 'samples'))).toBe(false);
  });

  it('sample writes a PNG grid that decodes; the same seed gives the same file', async () => {
    const [a, b] = await Promise.all([
      cli(['sample', '--checkpoint', run1, '--count', '16', '--out', 'a.png', '--seed', '3']),
      cli(['sample', run1, '--count', '16', '--out', 'b.png', '--seed', '3']),
    ]);
    expect(a).toMatchObject({ code: 0, stderr: '' });
    expect(a.stdout).toBe('Wrote 16 samples (seed 3) to a.png\n');
    const png = PNG.sync.read(fs.readFileSync(path.join(root, 'a.png')));
    expect([png.width, png.height]).toEqual([242, 62]); // 8 per row, 2 rows, 28 px + 2 px padding
    const gray = new Set<number>();
    for (let i = 0; i < png.data.length; i += 4) gray.add(png.data[i]);
    expect(gray.size).toBeGreaterThan(10);
    expect(b.code).toBe(0);
    expect(fs.readFileSync(path.join(root, 'b.png')).equals(fs.readFileSync(path.join(root, 'a.png')))).toBe(true);
  });

  it('report rewrites report.html; failures exit 1 with a message and no stack unless LTG_DEBUG', async () => {
    fs.rmSync(path.join(run1, 'report.html'));
    const [ok, missing, debug, noRun] = await Promise.all([
      cli(['report', run1]),
      cli(['report', path.join(root, 'missing')]),
      cli(['report', path.join(root, 'missing')], { env: { LTG_DEBUG: '1' } }),
      cli(['sample', '--checkpoint', path.join(root, 'missing')]),
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^Wrote .*report\.html \(1 sample grid, loss plot\)$/m);
    expect(fs.readFileSync(path.join(run1, 'report.html'), 'utf8')).toContain('samples/epoch-001.png');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^libtorch-gan: error: run folder .*missing does not exist\n$/);
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/\n\s+at /);
    expect(noRun.code).toBe(1);
    expect(noRun.stderr).toMatch(/^libtorch-gan: error: run folder .*missing does not exist\n$/);
  });

  it('refuses to resume with a different preset (exit 2, naming the flag)', async () => {
    const r = await cli(['train', '--resume', run1, '--preset', 'ganist']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--preset: the run in .*run-1 was trained with "vanilla", got "ganist"/);
  });
});

describe('libtorch-gan train: Ctrl-C', () => {
  it('the first SIGINT stops at a step boundary, saves a checkpoint, prints how to resume and exits 130', async () => {
    const saveDir = path.join(root, 'sigint');
    const child = spawn(
      process.execPath,
      [MAIN, 'train', '--preset', 'vanilla', '--epochs', '20', '--limit', '3000', '--save-dir', saveDir, '--seed', '2', '--device', 'cpu'],
      {
        cwd: root,
        env: { ...process.env, LTG_DEBUG: '' },
      },
    );
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!sent && /step \d+\/30/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const [code] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    const runDir = path.join(saveDir, 'run-1');
    expect(sent).toBe(true);
    expect({ code, stderr }).toMatchObject({ code: 130, stderr: expect.stringContaining(`Resume with: libtorch-gan train --resume ${runDir}`) });
    expect(stderr).toMatch(/Interrupted: stopping after the current step and saving a checkpoint/);
    expect(stdout).not.toContain('Training finished');
    const state = JSON.parse(fs.readFileSync(path.join(runDir, 'trainer.json'), 'utf8'));
    expect(state.globalStep).toBeGreaterThanOrEqual(1);
    expect(state.epoch).toBeLessThan(20);
    if (state.interrupted) expect(state.interrupted.epoch).toBe(state.epoch + 1);

    // and the printed command resumes it (here to a total of epoch+1 epochs)
    const r = await cli(['train', '--resume', runDir, '--epochs', String(state.epoch + 1), '--verbose', '0']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const after = JSON.parse(fs.readFileSync(path.join(runDir, 'trainer.json'), 'utf8'));
    expect(after).toMatchObject({ epoch: state.epoch + 1, interrupted: null });
    // the interrupted epoch was continued, not trained again: 30 steps per epoch in all
    expect(after.globalStep).toBe((state.epoch + 1) * 30);
    expect(state.globalStep).toBe(state.epoch * 30 + (state.interrupted?.steps ?? 0));
  }, 120000);
});

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

(torch.cuda.isAvailable() ? describe.skip : describe)('libtorch-gan without a usable GPU: the CPU fallback is said, --device cuda names why', () => {
  const saveDir = path.join(root, 'auto-runs');
  let why: string;
  let auto: ReturnType<typeof runCli>;
  beforeAll(() => {
    why = nativeCudaReason();
    // --device auto is the default: left out here
    auto = runCli(['train', '--preset', 'vanilla', '--limit', '256', '--epochs', '1', '--seed', '1', '--sample-every', '0', '--save-dir', saveDir]);
  }, 120000);

  it('device auto: the start table and the summary say the run is on the CPU and why; so do report.html and TrainResult', () => {
    expect(auto.status).toBe(0);
    const device = `cpu (device auto fell back to the CPU: CUDA is not available: ${why})`;
    expect(auto.stdout).toMatch(new RegExp(`^Device {6}${escapeRegExp(device)}\\nCUDA graph {2}off: not on a CUDA device$`, 'm'));
    expect(auto.stdout).toMatch(new RegExp(`^ {2}Device {9}${escapeRegExp(device)}\\n {2}CUDA graph {5}off: not on a CUDA device$`, 'm'));
    const runDir = path.join(saveDir, 'run-1');
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8')).device).toBe('cpu');
    const html = fs.readFileSync(path.join(runDir, 'report.html'), 'utf8');
    expect(html).toContain(
      `<p>Trained on <code>cpu</code>: device 'auto' fell back to the CPU because CUDA is not available: ${why}.</p>\n<p>CUDA graph: off: not on a CUDA device</p>`,
    );
  });

  it('--device cuda: exit 2 with the reason, no stack or C++ frames (train, sample, eval); sample --device auto notes the CPU', () => {
    const train = runCli(['train', '--device', 'cuda', '--limit', '256', '--save-dir', saveDir]);
    expect(train).toMatchObject({
      status: 2,
      stdout: '',
      stderr: `libtorch-gan train: --device: "cuda" was requested but CUDA is not available: ${why}; use "auto" or "cpu"\nRun 'libtorch-gan train --help' for usage.\n`,
    });
    const runDir = path.join(saveDir, 'run-1');
    for (const command of ['sample', 'eval']) {
      const r = runCli([command, runDir, '--device', 'cuda']);
      expect(r).toMatchObject({
        status: 2,
        stdout: '',
        stderr: `libtorch-gan ${command}: --device cuda: CUDA is not available: ${why}; use auto or cpu\nRun 'libtorch-gan ${command} --help' for usage.\n`,
      });
    }
    const out = path.join(root, 'auto-samples.png');
    const sampled = runCli(['sample', runDir, '--device', 'auto', '--count', '4', '--seed', '1', '--out', out]);
    expect(sampled).toMatchObject({ status: 0, stderr: `note: device auto runs on the CPU: CUDA is not available: ${why}\n` });
    expect(fs.existsSync(out)).toBe(true);
  });
});
