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
import { exportOnnx, OnnxExportError } from '../../ts/run/export';
import { generate, loadGenerator } from '../../ts/run/sample';
import { readRunInfo } from '../../ts/run/run-dir';
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
    const G = loadGenerator(runDir, preset, 'cpu');
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
      'opset must be an integer in [13, 23], got 9',
    );
    expect(fs.existsSync(path.join(dir, 'x.onnx'))).toBe(false);
  });
});
