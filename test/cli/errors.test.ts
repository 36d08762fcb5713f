/**
 * The CLI's messages for bad paths and resources, run in-process through main(argv, io) with
 * captured streams: a --save-dir that is a file, a --data-root that does not exist, --threads above
 * the cores (a warning) or past the limit, sample --out DIR, and a full disk (ENOSPC simulated
 * through the atomic write's hook).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { main } from '../../ts/cli/main';
import { type CliIO } from '../../ts/cli/commands/common';
import * as torch from '../../ts/tensor/torch';
import { atomicWriteFs } from '../../ts/util/fs';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-cli-errors-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const stream = (add: (s: string) => void) =>
    ({
      write(chunk: string | Uint8Array) {
        add(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
        return true;
      },
    }) as unknown as NodeJS.WritableStream;
  const io: CliIO = { stdout: stream((s) => (stdout += s)), stderr: stream((s) => (stderr += s)), env: {} };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

const tiny = (saveDir: string) => ['train', '--epochs', '1', '--limit', '100', '--save-dir', saveDir, '--seed', '1', '--device', 'cpu', '--verbose', '0'];

describe('train: paths', () => {
  it('--save-dir that is a file: exit 1, naming it, before any data is loaded', async () => {
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'x');
    const r = await cli(tiny(file));
    expect(r).toEqual({ code: 1, stdout: '', stderr: `libtorch-gan: error: cannot create save folder ${file}: ${file} exists and is not a folder\n` });
    const below = path.join(file, 'runs');
    expect((await cli(tiny(below))).stderr).toBe(`libtorch-gan: error: cannot create save folder ${below}: ${file} exists and is not a folder\n`);
  });

  it('--data-root that does not exist, or is a file, is an error (not silently another copy of MNIST)', async () => {
    const saveDir = path.join(root, 'data-root-runs');
    const missing = path.join(root, 'no-such-data');
    const r = await cli([...tiny(saveDir), '--data-root', missing]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `libtorch-gan: error: MNIST root ${missing} does not exist: give the folder that holds train-images-idx3-ubyte and train-labels-idx1-ubyte (optionally .gz; or torchvision's <root>/MNIST/raw/)\n`,
    });
    const file = path.join(root, 'a-data-file');
    fs.writeFileSync(file, 'x');
    expect((await cli([...tiny(saveDir), '--dataset', 'fashion-mnist', '--data-root', file])).stderr).toMatch(
      new RegExp(`^libtorch-gan: error: FashionMNIST root ${file} is not a folder: `),
    );
    expect(fs.readdirSync(saveDir)).toEqual([]); // no run folder was started
  });
});

describe('train: --threads', () => {
  const before = torch.getNumThreads();
  afterAll(() => torch.setNumThreads(before));

  it('above the cores: trains, with a warning on stderr', async () => {
    const cores = os.availableParallelism();
    const saveDir = path.join(root, 'threads-runs');
    const r = await cli([...tiny(saveDir), '--threads', String(cores + 1)]);
    expect(r).toEqual({
      code: 0,
      stdout: '',
      stderr: `warning: threads ${cores + 1} is more than the ${cores} CPU cores here: LibTorch's threads will compete for them (usually slower)\n`,
    });
    expect(fs.existsSync(path.join(saveDir, 'run-1', 'trainer.json'))).toBe(true);
  });

  it('past the limit (OpenMP would abort the process): a usage error', async () => {
    const r = await cli(['train', '--threads', '20000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^libtorch-gan train: --threads: expected an integer from 1 to 1024, got "20000"\n/);
  });
});

describe('sample --out', () => {
  const saveDir = path.join(root, 'sample-runs');
  const run = path.join(saveDir, 'run-1');
  beforeAll(async () => {
    expect((await cli(tiny(saveDir))).code).toBe(0);
  });

  it('an existing folder, or a name ending in /, gets samples.png inside it (as --help says)', async () => {
    expect((await cli(['sample', '--help'])).stdout).toMatch(
      /--out FILE +PNG file to write \(default samples\.png\); a folder \(one that exists, or a\n +name ending in \/\) gets samples\.png inside it\n/,
    );
    const dir = path.join(root, 'out-folder');
    fs.mkdirSync(dir);
    const r = await cli(['sample', run, '--count', '4', '--seed', '1', '--out', dir]);
    expect(r).toEqual({ code: 0, stdout: `Wrote 4 samples (seed 1) to ${path.relative(process.cwd(), path.join(dir, 'samples.png'))}\n`, stderr: '' });
    const png = PNG.sync.read(fs.readFileSync(path.join(dir, 'samples.png')));
    expect([png.width, png.height]).toEqual([122, 32]); // 4 images in one row: 4 * 30 + 2, 30 + 2
    const fresh = path.join(root, 'new-out', 'sub');
    expect((await cli(['sample', run, '--count', '4', '--seed', '1', '--out', `${fresh}/`])).code).toBe(0);
    expect(fs.readFileSync(path.join(fresh, 'samples.png')).equals(fs.readFileSync(path.join(dir, 'samples.png')))).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['samples.png']);
  });

  it('a file in the way of its folder is named', async () => {
    const file = path.join(root, 'plain');
    fs.writeFileSync(file, 'x');
    const r = await cli(['sample', run, '--count', '4', '--out', path.join(file, 'x.png')]);
    expect(r).toEqual({ code: 1, stdout: '', stderr: `libtorch-gan: error: cannot create folder ${file}: ${file} exists and is not a folder\n` });
  });
});

describe('a full disk', () => {
  const real = atomicWriteFs.write;
  afterEach(() => {
    atomicWriteFs.write = real;
  });
  /** Writes to temporary files of `target` fail as on a full disk (the fd's path from /proc/self/fd). */
  const fullFor = (target: string) => {
    atomicWriteFs.write = (fd, data, offset, length) => {
      if (path.basename(fs.readlinkSync(`/proc/self/fd/${fd}`)).startsWith(`.${target}.`)) {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      }
      return real(fd, data, offset, length);
    };
  };

  it('during a checkpoint: exit 1, the message names the file, no temporary file is left', async () => {
    const saveDir = path.join(root, 'full-runs');
    fullFor('generator.safetensors');
    const r = await cli(tiny(saveDir));
    const run = path.join(saveDir, 'run-1');
    expect(r).toEqual({ code: 1, stdout: '', stderr: `libtorch-gan: error: cannot write ${run}/generator.safetensors: no space left on device (ENOSPC)\n` });
    expect(fs.readdirSync(run).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(fs.existsSync(path.join(run, 'trainer.json'))).toBe(false);
  });

  it('while sampling', async () => {
    const saveDir = path.join(root, 'full-sample-runs');
    expect((await cli(tiny(saveDir))).code).toBe(0);
    const out = path.join(root, 'full.png');
    fullFor('full.png');
    const r = await cli(['sample', path.join(saveDir, 'run-1'), '--count', '4', '--out', out]);
    expect(r).toEqual({ code: 1, stdout: '', stderr: `libtorch-gan: error: cannot write ${out}: no space left on device (ENOSPC)\n` });
    expect(fs.existsSync(out)).toBe(false);
  });
});
