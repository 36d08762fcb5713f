/**
 * Your own images end to end through the CLI: a folder of PNG and JPEG files that this test makes (one
 * subfolder per class, RGB, of mixed sizes), trained with cgan at 32 pixels and dcgan at 64 pixels in
 * grayscale; the networks are built for the data, the grids decode at the data's size, sample --label
 * draws a class, and every bad folder or option is a clear error.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import sharp from 'sharp';

const repo = path.resolve(__dirname, '..', '..');
const MAIN = path.join(repo, 'lib', 'cli', 'main.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-e2e-folder-'));
const shapes = path.join(root, 'shapes');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const decodePng = (file: string) => PNG.sync.read(fs.readFileSync(file));

/** An RGB image of side s: a coloured disc or square on black. */
function shapeImage(kind: 'circles' | 'squares', s: number, i: number): Buffer {
  const px = Buffer.alloc(s * s * 3);
  const colour = [(i * 67) % 256, (i * 131 + 80) % 256, (i * 29 + 160) % 256];
  const r = s * (0.2 + ((i * 7) % 10) / 50);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const [dy, dx] = [y - s / 2, x - s / 2];
      const inside = kind === 'circles' ? dx * dx + dy * dy < r * r : Math.abs(dx) < r && Math.abs(dy) < r;
      if (inside) for (let k = 0; k < 3; k++) px[(y * s + x) * 3 + k] = colour[k];
    }
  }
  return px;
}

beforeAll(async () => {
  spawnSync(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: repo, stdio: 'ignore' });
  for (const kind of ['circles', 'squares'] as const) {
    fs.mkdirSync(path.join(shapes, kind), { recursive: true });
    for (let i = 0; i < 96; i++) {
      const s = 36 + (i % 5) * 6; // mixed sizes: each is resized and centre-cropped
      const raw = shapeImage(kind, s, i);
      const file = path.join(shapes, kind, `${String(i).padStart(3, '0')}`);
      if (i % 2) {
        const png = new PNG({ width: s, height: s, colorType: 2 });
        for (let p = 0; p < s * s; p++) {
          png.data[p * 4] = raw[p * 3];
          png.data[p * 4 + 1] = raw[p * 3 + 1];
          png.data[p * 4 + 2] = raw[p * 3 + 2];
          png.data[p * 4 + 3] = 255;
        }
        fs.writeFileSync(`${file}.png`, PNG.sync.write(png, { colorType: 2 }));
      } else {
        await sharp(raw, { raw: { width: s, height: s, channels: 3 } })
          .jpeg()
          .toFile(`${file}.jpg`);
      }
    }
  }
  fs.writeFileSync(path.join(shapes, 'squares', 'broken.png'), 'not a png');
}, 120000);

test('cgan on a folder of RGB classes at 32 pixels: networks for 3 x 32 x 32 and 2 classes, a grid row per class, sample --label', () => {
  const saveDir = path.join(root, 'runs-cgan');
  const r = cli(['train', '--preset', 'cgan', '--data', shapes, '--image-size', '32', '--epochs', '2', '--save-dir', saveDir, '--seed', '1', '--verbose', '1']);
  if (r.code !== 0) throw new Error(`train exited ${r.code}:\n${r.stderr}`);
  expect(r.stdout).toContain('folder, 192 of 192 images in 2 classes (circles, squares), 3 x 32 x 32');
  expect(r.stderr).toMatch(/1 of 193 files in .* could not be read and were skipped \(first: .*broken\.png: /);
  expect(r.stdout).toContain('ConvTranspose2d(102, 256, kernel_size=(4, 4)');
  expect(r.stdout).toContain('Conv2d(5, 64, kernel_size=(4, 4)');
  const run = path.join(saveDir, 'run-1');
  const config = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  expect(config.config.preset.image).toEqual({ channels: 3, size: 32 });
  expect(config.config.preset.step.conditioning).toEqual({ classes: 2 });
  expect(config.config.data).toMatchObject({ dataset: 'folder', root: shapes, imageSize: 32 });
  // the epoch grid: one row of 8 per class, 32-pixel RGB cells with 2-pixel padding
  const grid = decodePng(path.join(run, 'samples', 'epoch-002.png'));
  expect([grid.width, grid.height]).toEqual([8 * 34 + 2, 2 * 34 + 2]);
  const real = decodePng(path.join(run, 'real.png'));
  let coloured = 0;
  for (let i = 0; i < real.data.length; i += 4) if (real.data[i] !== real.data[i + 1] || real.data[i + 1] !== real.data[i + 2]) coloured++;
  expect(coloured).toBeGreaterThan(1000); // the training images went in as RGB
  const out = path.join(root, 'squares.png');
  expect(cli(['sample', run, '--label', '1', '--count', '16', '--out', out])).toMatchObject({
    code: 0,
    stdout: expect.stringContaining('16 samples of class 1'),
  });
  expect([decodePng(out).width, decodePng(out).height]).toEqual([8 * 34 + 2, 2 * 34 + 2]);
  const bad = cli(['sample', run, '--label', '2', '--out', out]);
  expect(bad.stderr).toContain("sample: label 2 is outside [0, 2) (the generator's 2 classes)");
}, 300000);

test('dcgan on the same folder in grayscale at 64 pixels: one more up-sampling block, 64 x 64 samples', () => {
  const saveDir = path.join(root, 'runs-dcgan');
  const r = cli([
    'train',
    '--preset',
    'dcgan',
    '--data',
    shapes,
    '--image-size',
    '64',
    '--channels',
    '1',
    '--epochs',
    '1',
    '--save-dir',
    saveDir,
    '--seed',
    '1',
  ]);
  if (r.code !== 0) throw new Error(`train exited ${r.code}:\n${r.stderr}`);
  const run = path.join(saveDir, 'run-1');
  const config = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  expect(config.config.preset.image).toEqual({ channels: 1, size: 64 });
  const g = config.config.preset.generator.children.filter((c: { type: string }) => c.type === 'ConvTranspose2d');
  expect(g.map((c: { inChannels: number; outChannels: number }) => [c.inChannels, c.outChannels])).toEqual([
    [100, 512],
    [512, 256],
    [256, 128],
    [128, 64],
    [64, 1],
  ]);
  const out = path.join(root, 'dcgan.png');
  expect(cli(['sample', run, '--count', '4', '--nrow', '2', '--out', out]).code).toBe(0);
  expect([decodePng(out).width, decodePng(out).height]).toEqual([2 * 66 + 2, 2 * 66 + 2]);
  expect(cli(['sample', run, '--label', '0', '--out', out]).stderr).toContain('labels apply to conditional presets (cgan); this generator is not conditional');
}, 300000);

test('bad folders and options are clear errors', () => {
  const empty = path.join(root, 'empty');
  fs.mkdirSync(empty);
  fs.writeFileSync(path.join(empty, 'notes.txt'), 'no images here');
  const flat = path.join(root, 'flat');
  fs.mkdirSync(flat);
  fs.copyFileSync(path.join(shapes, 'circles', '001.png'), path.join(flat, 'a.png'));
  fs.copyFileSync(path.join(shapes, 'circles', '003.png'), path.join(flat, 'b.png'));
  const saveDir = path.join(root, 'runs-bad');
  const run = (...args: string[]) => cli(['train', '--epochs', '1', '--save-dir', saveDir, '--verbose', '0', ...args]);
  expect(run('--data', empty).stderr).toMatch(/no images in .*empty: looked for \.png, \.jpg, \.jpeg files/);
  expect(run('--data', path.join(root, 'nope')).stderr).toContain('--data: "');
  expect(run('--data', path.join(root, 'nope')).stderr).toContain('is neither mnist, fashion-mnist nor an existing folder of images');
  expect(run('--data', shapes, '--image-size', '48').stderr).toContain(
    '--image-size: expected 28, 32 or 64 (the sizes the DCGAN networks are built for), got 48',
  );
  expect(run('--data', flat, '--preset', 'cgan').stderr).toContain(
    'preset cgan is conditional and needs images of at least 2 classes (one subfolder per class), got 0',
  );
  expect(run('--data', shapes, '--preset', 'vanilla').stderr).toContain('preset vanilla trains on 1 x 28 x 28 images');
  expect(run('--image-size', '32').stderr).toContain('imageSize and channels apply to dataset "folder" only');
}, 300000);

// Debian's dataset-fashion-mnist (scripts/setup.sh installs it where apt can)
const fashion = fs.existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz');
(fashion ? test : test.skip)(
  '--data fashion-mnist: cgan trains on the Debian package copy with its 10 classes',
  () => {
    const saveDir = path.join(root, 'runs-fashion');
    const r = cli(['train', '--data', 'fashion-mnist', '--limit', '1280', '--epochs', '1', '--save-dir', saveDir, '--seed', '1']);
    if (r.code !== 0) throw new Error(`train exited ${r.code}:\n${r.stderr}`);
    expect(r.stdout).toContain('Preset      cgan (1x28x28)');
    expect(r.stdout).toMatch(/Data {8}FashionMNIST train, 1280 of 60000 images \(package: \/usr\/share\/datasets\/fashion-mnist\)/);
    const grid = decodePng(path.join(saveDir, 'run-1', 'samples', 'epoch-001.png'));
    expect([grid.width, grid.height]).toEqual([8 * 30 + 2, 10 * 30 + 2]);
  },
  300000,
);
