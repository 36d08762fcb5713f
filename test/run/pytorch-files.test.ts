/**
 * PyTorch checkpoints in and out. In: a G state_dict that PyTorch saved (torch.save, an OrderedDict with
 * its _metadata) from the seeds' own module classes (seed 004's hidden0 ... out blocks, seed 001's fc1 ...
 * fc4) samples here the images PyTorch's module gives for the same z; hostile, truncated and misfitting
 * files are errors naming the global, the archive or the key. Out: `export --pytorch` is read by
 * torch.load(weights_only=True) and holds the run's weights.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { presets } from '../../ts/gan/presets';
import { generate, loadPytorchGenerator } from '../../ts/run/sample';
import { loadPytorch } from '../../ts/tensor/torch-save';
import * as torch from '../../ts/tensor/torch';
import { runCli, tinyRun } from '../helpers/lib';
import { findPython, runPython } from '../helpers/python';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-pt-'));
const cli = path.resolve(__dirname, '..', '..', 'lib', 'cli', 'main.js');
const py = findPython(['torch', 'safetensors']);
const N = 6;

// The seeds' own generator classes (as their scripts define them), saved with torch.save(G.state_dict());
// G(z) in eval mode for z = torch.randn(N, 100) after manual_seed(3), as float32 bytes.
const SAVE = `
import sys, torch, torch.nn as nn, torch.nn.functional as F
class Seed004Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden0 = nn.Sequential(nn.Linear(100, 256), nn.LeakyReLU(0.2))
        self.hidden1 = nn.Sequential(nn.Linear(256, 512), nn.LeakyReLU(0.2))
        self.hidden2 = nn.Sequential(nn.Linear(512, 1024), nn.LeakyReLU(0.2))
        self.out = nn.Sequential(nn.Linear(1024, 784), nn.Tanh())
    def forward(self, x):
        return self.out(self.hidden2(self.hidden1(self.hidden0(x))))
class Seed001Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(100, 32); self.fc2 = nn.Linear(32, 64); self.fc3 = nn.Linear(64, 128); self.fc4 = nn.Linear(128, 784)
        self.dropout = nn.Dropout(0.3)
    def forward(self, x):
        x = self.dropout(F.leaky_relu(self.fc1(x), 0.2))
        x = self.dropout(F.leaky_relu(self.fc2(x), 0.2))
        x = self.dropout(F.leaky_relu(self.fc3(x), 0.2))
        return torch.tanh(self.fc4(x))
out = sys.argv[1]
for name, cls in [('vanilla', Seed004Generator), ('udacity', Seed001Generator)]:
    torch.manual_seed(1)
    G = cls().eval()
    torch.save(G.state_dict(), f'{out}/{name}.pth')
    torch.manual_seed(3)
    z = torch.randn(${N}, 100)
    z.numpy().tofile(f'{out}/{name}.z')
    with torch.no_grad():
        G(z).numpy().tofile(f'{out}/{name}.images')
`;

const floats = (file: string) => {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
};

(py ? describe : describe.skip)('PyTorch checkpoints', () => {
  beforeAll(() => runPython(py!, ['-c', SAVE, dir]));

  test.each(['vanilla', 'udacity'])("%s: the seed's own module classes' state_dict samples PyTorch's images", (name) => {
    const preset = presets[name as 'vanilla' | 'udacity'];
    const G = loadPytorchGenerator(path.join(dir, `${name}.pth`), preset, 'cpu');
    const z = torch.tensor(floats(path.join(dir, `${name}.z`)).slice(), [N, 100]);
    const ours = generate(G, z, 'cpu');
    const theirs = floats(path.join(dir, `${name}.images`));
    expect(ours.length).toBe(theirs.length);
    let max = 0;
    for (let i = 0; i < ours.length; i++) max = Math.max(max, Math.abs(ours[i] - theirs[i]));
    expect(max).toBeLessThan(1e-5);
    z.dispose();
    G.dispose();
  });

  test('sample --checkpoint G.pth --preset vanilla writes the grid; a file without --preset is refused', () => {
    const out = path.join(dir, 'grid.png');
    const r = spawnSync(
      process.execPath,
      [cli, 'sample', '--checkpoint', path.join(dir, 'vanilla.pth'), '--preset', 'vanilla', '--out', out, '--count', '16'],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(fs.readFileSync(out).subarray(1, 4).toString()).toBe('PNG');
    const bad = spawnSync(process.execPath, [cli, 'sample', '--checkpoint', path.join(dir, 'vanilla.pth')], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('is a file: give the preset whose generator it holds');
  });

  test("a state_dict that fits no preset's generator: an error naming the key and the shapes", () => {
    expect(() => loadPytorchGenerator(path.join(dir, 'udacity.pth'), presets.vanilla, 'cpu')).toThrow(
      "'fc1.weight' float32 [32, 100] does not fit the generator's '0.weight' float32 [256, 100] (tensor 1 of 8",
    );
    expect(() => loadPytorchGenerator(path.join(dir, 'vanilla.pth'), presets.ganist, 'cpu')).toThrow(/holds 8 tensors .* but the generator has \d+/);
  });

  test('a hostile pickle (a global that would run code) is refused, not run; a truncated file is an error', () => {
    const evil = path.join(dir, 'evil.pth');
    const marker = path.join(dir, 'pwned');
    runPython(py!, [
      '-c',
      `
import pickle, sys, zipfile
class Evil:
    def __reduce__(self):
        import os
        return (os.system, ('touch ' + sys.argv[2],))
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps({'w': Evil()}, protocol=2))
    z.writestr('archive/version', '3\\n')
`,
      evil,
      marker,
    ]);
    expect(() => loadPytorch(evil)).toThrow(/evil\.pth: not a torch\.save file LibTorch's unpickler accepts .*unknown type posix\.system/);
    expect(fs.existsSync(marker)).toBe(false);
    const cut = path.join(dir, 'cut.pth');
    fs.writeFileSync(cut, fs.readFileSync(path.join(dir, 'vanilla.pth')).subarray(0, 1000));
    expect(() => loadPytorch(cut)).toThrow(/cut\.pth: not a torch\.save file .*zip archive/);
  });

  test("export RUN_DIR --pytorch G.pt: torch.load(weights_only=True) reads the run's generator weights", () => {
    const runDir = tinyRun('ganist', fs.mkdtempSync(path.join(dir, 'runs-')));
    const file = path.join(dir, 'G.pt');
    const e = runCli(['export', runDir, '--pytorch', file]);
    expect(e.stderr).toBe('');
    const check = runPython(py!, [
      '-c',
      `
import sys, torch
from safetensors.torch import load_file
a = torch.load(sys.argv[1], weights_only=True)
b = load_file(sys.argv[2])
print(sorted(a) == sorted(b), all(torch.equal(a[k], b[k]) for k in b), len(a))
`,
      file,
      path.join(runDir, 'generator.safetensors'),
    ]);
    expect(check.trim()).toBe('True True 30'); // 4 blocks of Linear + BatchNorm1d (7 tensors each, running statistics included), the last Linear
  }, 60_000);
});
