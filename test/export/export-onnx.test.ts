/**
 * ONNX export of every preset's generator: Python's onnx.checker accepts the file, and onnxruntime in
 * Python (PyPI) and in Node (onnxruntime-node) reproduce our generator's output for the same z (and
 * labels) within 1e-4. BatchNorm's running statistics are moved off their initial 0 and 1 first, so the
 * export's inference-mode BatchNorm is checked for real.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildModels } from '../../ts/gan/build';
import { presets } from '../../ts/gan/presets';
import { exportOnnx, exportPytorch, ExportTargetError, OnnxExportError } from '../../ts/export/index';
import { exportWeb } from '../../ts/export/web-page';
import { savePytorch } from '../../ts/tensor/torch-save';
import { generate } from '../../ts/gan/sample';
import { loadGeneratorModule } from '../../ts/store/generator';
import { readRunInfo } from '../../ts/store/run-dir';
import * as nn from '../../ts/nn/index';
import * as torch from '../../ts/tensor/torch';
import { runCli, tinyRun } from '../helpers/lib';
import { findPython, runPython } from '../helpers/python';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-onnx-'));
const N = 5;
const py = findPython(['onnx', 'onnxruntime', 'numpy']);

// onnxruntime-node on a model file, noise file, noise shape and labels; prints the images as JSON
const ORT_NODE = `
const fs = require('node:fs');
const ort = require(${JSON.stringify(require.resolve('onnxruntime-node'))});
const [file, zFile, shape, labels] = process.argv.slice(1);
(async () => {
  const s = await ort.InferenceSession.create(file);
  const b = fs.readFileSync(zFile);
  const feeds = { z: new ort.Tensor('float32', new Float32Array(b.buffer, b.byteOffset, b.length / 4), JSON.parse(shape)) };
  const l = JSON.parse(labels);
  if (l.length) feeds.label = new ort.Tensor('int64', BigInt64Array.from(l, BigInt), [l.length]);
  const out = (await s.run(feeds)).images;
  console.log(JSON.stringify({ dims: out.dims, data: Array.from(out.data) }));
})().catch((e) => { console.error(e.stack); process.exit(1); });
`;

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('exportOnnx', () => {
  test.each(Object.keys(presets))(
    '%s: onnx.checker accepts it; onnxruntime (Node and Python) gives our images within 1e-4',
    async (name) => {
      const preset = presets[name as keyof typeof presets];
      torch.manualSeed(11);
      const { generator: G } = buildModels(preset);
      const noiseShape = preset.step.noise.shape ?? [preset.step.noise.dim];
      const classes = preset.step.conditioning?.classes ?? 0;
      // a few forwards in train mode: BatchNorm's running statistics move
      torch.noGrad(() => {
        for (let i = 0; i < 3; i++) {
          torch.scope(() => {
            let x = torch.randn([16, ...noiseShape]);
            if (classes) x = torch.cat([x, torch.zeros([16, classes, ...noiseShape.slice(1)])], 1);
            G.forward(x);
          });
        }
      });
      const z = torch.randn([N, ...noiseShape]);
      const labels = Array.from({ length: N }, (_, i) => (i * 3) % Math.max(classes, 1));
      const y = classes ? torch.tensor(BigInt64Array.from(labels, BigInt), [N]) : undefined;
      const ours = generate(G, z, 'cpu', y && { y, classes });
      const file = path.join(dir, `${name}.onnx`);
      const out = exportOnnx(G, file, { preset });
      expect(out.bytes).toBe(fs.statSync(file).size);

      // onnxruntime-node in a process of its own: in jest's VM realm its typed-array checks fail
      fs.writeFileSync(path.join(dir, `${name}.z`), Buffer.from((z.toTypedArray() as Float32Array).buffer));
      const node = spawnSync(
        process.execPath,
        ['-e', ORT_NODE, file, path.join(dir, `${name}.z`), JSON.stringify([N, ...noiseShape]), JSON.stringify(classes ? labels : [])],
        {
          encoding: 'utf8',
          maxBuffer: 1 << 26,
        },
      );
      if (node.status !== 0) throw new Error(node.stderr);
      const images = JSON.parse(node.stdout) as { dims: number[]; data: number[] };
      expect(images.dims).toEqual([N, preset.image.channels, preset.image.size, preset.image.size]);
      expect(maxDiff(images.data, ours)).toBeLessThan(1e-4);
      // the images are not trivial: a generator at init still varies over its outputs
      expect(maxDiff(ours, new Float32Array(ours.length))).toBeGreaterThan(0.01);

      if (py) {
        const got = runPython(py, [
          '-c',
          `
import json, sys, numpy as np, onnx, onnxruntime as rt
f, zf, shape, labels = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
m = onnx.load(f)
onnx.checker.check_model(m, full_check=True)
meta = {p.key: p.value for p in m.metadata_props}
feeds = {'z': np.fromfile(zf, dtype=np.float32).reshape(shape)}
if labels: feeds['label'] = np.array(labels, dtype=np.int64)
out = rt.InferenceSession(f, providers=['CPUExecutionProvider']).run(['images'], feeds)[0]
print(json.dumps({'shape': list(out.shape), 'images': out.reshape(-1).tolist(), 'range': meta['libtorch-gan.range']}))
`,
          file,
          path.join(dir, `${name}.z`),
          JSON.stringify([N, ...noiseShape]),
          JSON.stringify(classes ? labels : []),
        ]);
        const r = JSON.parse(got) as { shape: number[]; images: number[]; range: string };
        expect(r.shape).toEqual(images.dims);
        expect(r.range).toBe(preset.normalize);
        expect(maxDiff(r.images, ours)).toBeLessThan(1e-4);
      }
      z.dispose();
      y?.dispose();
      G.dispose();
    },
    60_000,
  );

  test("libtorch-gan export RUN_DIR --onnx: the run's trained cgan generator, labels included", async () => {
    const runDir = tinyRun('cgan', fs.mkdtempSync(path.join(dir, 'run-')));
    const file = path.join(dir, 'cgan-run.onnx');
    const e = runCli(['export', runDir, '--onnx', file]);
    expect(e.status).toBe(0);
    expect(e.stdout).toContain('label [batch] int64 in [0, 10)');
    const preset = readRunInfo(runDir).config.preset;
    const G = loadGeneratorModule(runDir, preset, 'cpu');
    torch.manualSeed(5);
    const z = torch.randn([N, 100, 1, 1]);
    const labels = [0, 3, 5, 7, 9];
    const y = torch.tensor(BigInt64Array.from(labels, BigInt), [N]);
    const ours = generate(G, z, 'cpu', { y, classes: 10 });
    fs.writeFileSync(path.join(dir, 'run.z'), Buffer.from((z.toTypedArray() as Float32Array).buffer));
    const node = spawnSync(process.execPath, ['-e', ORT_NODE, file, path.join(dir, 'run.z'), JSON.stringify([N, 100, 1, 1]), JSON.stringify(labels)], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    expect(node.stderr).toBe('');
    expect(maxDiff((JSON.parse(node.stdout) as { data: number[] }).data, ours)).toBeLessThan(1e-4);
    G.dispose();
  }, 120_000);

  test('Unflatten, ConvTranspose2d, BatchNorm2d, Conv2d with padding same (odd and even kernels), Flatten: onnxruntime gives ours', () => {
    torch.manualSeed(3);
    const G = new nn.Sequential(
      new nn.Linear(8, 2 * 7 * 7),
      new nn.Unflatten(1, [2, 7, 7]),
      new nn.ConvTranspose2d(2, 4, 4, { stride: 2, padding: 1 }),
      new nn.BatchNorm2d(4),
      new nn.LeakyReLU(0.1),
      new nn.Conv2d(4, 3, 3, { padding: 'same' }),
      new nn.Conv2d(3, 1, 2, { padding: 'same', bias: false }),
      new nn.Flatten(),
      new nn.Sigmoid(),
    );
    torch.noGrad(() => torch.scope(() => G.forward(torch.randn([16, 8])))); // BatchNorm's statistics move
    const z = torch.randn([N, 8]);
    const ours = generate(G, z, 'cpu');
    const file = path.join(dir, 'layers.onnx');
    exportOnnx(G, file, { opset: 13 });
    fs.writeFileSync(path.join(dir, 'layers.z'), Buffer.from((z.toTypedArray() as Float32Array).buffer));
    const node = spawnSync(process.execPath, ['-e', ORT_NODE, file, path.join(dir, 'layers.z'), JSON.stringify([N, 8]), '[]'], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    expect(node.stderr).toBe('');
    const r = JSON.parse(node.stdout) as { dims: number[]; data: number[] };
    expect(r.dims).toEqual([N, 14 * 14]);
    expect(maxDiff(r.data, ours)).toBeLessThan(1e-5);
    z.dispose();
    G.dispose();
  });

  test('a layer it cannot express, or BatchNorm without running statistics, is an error naming the layer', () => {
    const emb = new nn.Sequential(new nn.Linear(4, 8), new nn.Embedding(8, 2));
    expect(() => exportOnnx(emb, path.join(dir, 'x.onnx'))).toThrow(OnnxExportError);
    expect(() => exportOnnx(emb, path.join(dir, 'x.onnx'))).toThrow('exportOnnx: 1 is a Embedding, which the export does not write');
    const bn = new nn.Sequential(new nn.Linear(4, 8), new nn.BatchNorm1d(8, { trackRunningStats: false }));
    expect(() => exportOnnx(bn, path.join(dir, 'x.onnx'))).toThrow('exportOnnx: 1 (BatchNorm1d) has no running statistics');
    expect(() => exportOnnx(new nn.Sequential(new nn.Linear(4, 8)), path.join(dir, 'x.onnx'), { opset: 9 })).toThrow(
      new RangeError('exportOnnx: opset: expected an integer from 13 to 23, got 9'),
    );
    expect(fs.existsSync(path.join(dir, 'x.onnx'))).toBe(false);
  });

  test('a preset that does not fit the generator is refused, naming the preset and both shapes; nothing written; modes restored', () => {
    torch.manualSeed(4);
    const vanilla = buildModels(presets.vanilla).generator;
    const dcgan = buildModels(presets.dcgan).generator;
    const cgan = buildModels(presets.cgan).generator;
    const file = path.join(dir, 'misfit.onnx');
    const misfit = (G: nn.Module, preset: (typeof presets)[keyof typeof presets], why: string) => {
      expect(() => exportOnnx(G, file, { preset })).toThrow(OnnxExportError);
      expect(() => exportOnnx(G, file, { preset })).toThrow(
        `exportOnnx: preset '${preset.name}' does not fit this generator: ${why}; pass the preset it was built from`,
      );
    };
    misfit(vanilla, presets.dcgan, 'the preset feeds it [batch, 100, 1, 1] (noise [100, 1, 1]), its first layer (0: Linear) takes [batch, 100]');
    misfit(dcgan, presets.vanilla, 'the preset feeds it [batch, 100] (noise [100]), its first layer (0: ConvTranspose2d) takes [batch, 100, H, W]');
    misfit(cgan, presets.dcgan, 'the preset feeds it [batch, 100, 1, 1] (noise [100, 1, 1]), its first layer (0: ConvTranspose2d) takes [batch, 110, H, W]');
    misfit(
      dcgan,
      presets.cgan,
      'the preset feeds it [batch, 110, 1, 1] (noise [100, 1, 1] and 10 one-hot classes), its first layer (0: ConvTranspose2d) takes [batch, 100, H, W]',
    );
    // the noise fits, the image does not: found by one forward
    misfit(vanilla, { ...presets.vanilla, image: { channels: 3, size: 28 } }, "the preset's images are [3, 28, 28], the generator gives [784] per image");
    misfit(dcgan, { ...presets.dcgan, image: { channels: 1, size: 32 } }, "the preset's images are [1, 32, 32], the generator gives [1, 28, 28] per image");
    // a first layer that does not say what it takes: the forward's own error, named
    const unflat = new nn.Sequential(new nn.Unflatten(1, [4, 1, 1]), new nn.ConvTranspose2d(4, 1, 28));
    expect(() => exportOnnx(unflat, file, { preset: presets.vanilla })).toThrow(
      /^exportOnnx: preset 'vanilla' does not fit this generator: the preset feeds it \[batch, 100\] \(noise \[100\]\), which it cannot run on \(.+\); pass the preset/,
    );
    expect(fs.existsSync(file)).toBe(false);
    // the check's forward runs in eval mode; each module's own mode comes back (one left in eval on purpose)
    vanilla.train();
    vanilla.children()[1]!.eval();
    expect(exportOnnx(vanilla, file, { preset: presets.vanilla }).bytes).toBe(fs.statSync(file).size);
    expect([...vanilla.namedModules()].map(([, m]) => m.training)).toEqual([true, true, false, true, true, true, true, true, true]);
    for (const G of [vanilla, dcgan, cgan, unflat]) G.dispose();
  });

  test('null and other non-values: TypeErrors naming the argument and what it takes', () => {
    const G = new nn.Sequential(new nn.Linear(4, 8));
    const file = path.join(dir, 'args.onnx');
    expect(() => exportOnnx(null as unknown as nn.Module, file)).toThrow(
      new TypeError('exportOnnx: source: expected a generator Module or the path of a run folder (a non-empty string), got null'),
    );
    expect(() => exportOnnx({} as nn.Module, file)).toThrow('exportOnnx: source: expected a generator Module or the path of a run folder');
    expect(() => exportOnnx(G, null as unknown as string)).toThrow(
      new TypeError('exportOnnx: file: expected the path to write (a non-empty string), got null'),
    );
    expect(() => exportPytorch(undefined as unknown as string, file)).toThrow(
      new TypeError('exportPytorch: runDir: expected the path of a run folder (a non-empty string), got undefined'),
    );
    expect(() => exportWeb(dir, '')).toThrow(new TypeError('exportWeb: dir: expected the folder to write into (a non-empty string), got ""'));
    expect(() => savePytorch(null as unknown as Record<string, never>, file)).toThrow(
      new TypeError('savePytorch: stateDict: expected an object of Tensors by name (module.stateDict()), got null'),
    );
    expect(() => savePytorch(G.stateDict(), 7 as unknown as string)).toThrow(
      new TypeError('savePytorch: file: expected the path to write (a non-empty string), got 7'),
    );
    expect(fs.existsSync(file)).toBe(false);
    G.dispose();
  });

  test("the API refuses what the CLI refuses: any run folder's files, folders, links into a run, web outputs colliding", () => {
    // a run folder as its marker file says (not the one exported: any run's files are kept)
    const run = path.join(dir, 'api-runs', 'run-7');
    fs.mkdirSync(path.join(run, 'samples'), { recursive: true });
    fs.writeFileSync(path.join(run, 'config.json'), JSON.stringify({ format: 'libtorch-gan-run/1' }));
    fs.writeFileSync(path.join(run, 'generator.safetensors'), 'weights');
    fs.writeFileSync(path.join(run, 'index.html'), 'a page someone wrote');
    const G = new nn.Sequential(new nn.Linear(4, 8));
    const refused = (fn: () => unknown, message: string, at: string) => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ExportTargetError);
      expect((err as Error).message).toContain(message);
      expect((err as ExportTargetError).path).toBe(at);
    };
    const weights = path.join(run, 'generator.safetensors');
    refused(
      () => exportOnnx(G, weights),
      `exportOnnx: file: ${weights} would overwrite generator.safetensors of the run folder ${run}; that would lose the generator's weights`,
      weights,
    );
    refused(
      () => exportPytorch(run, path.join(run, 'trainer.json')),
      `is the name of trainer.json of the run folder ${run}, where the run keeps the checkpoint record`,
      path.join(run, 'trainer.json'),
    );
    refused(() => exportOnnx(G, path.join(run, 'samples')), 'is a folder; give a file name', path.join(run, 'samples'));
    refused(
      () => exportWeb(run, run),
      `exportWeb: dir's index.html: ${path.join(run, 'index.html')} would overwrite index.html of the run folder ${run}`,
      path.join(run, 'index.html'),
    );
    const link = path.join(dir, 'to-weights.onnx');
    fs.symlinkSync(weights, link);
    refused(() => exportOnnx(G, link), `(through a symbolic link, ${weights})`, link);
    expect(fs.readFileSync(weights, 'utf8')).toBe('weights');
    expect(fs.readFileSync(path.join(run, 'index.html'), 'utf8')).toBe('a page someone wrote');
    // a new file in the run folder is fine
    const fresh = path.join(run, 'g.onnx');
    expect(exportOnnx(G, fresh).bytes).toBe(fs.statSync(fresh).size);
    G.dispose();
  });
});
