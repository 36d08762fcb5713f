#!/usr/bin/env node
// Trains a classifier that the quality metrics read features from (lib/quality/classifier.js), for
// MNIST (the default) or Fashion-MNIST (--dataset fashion-mnist), with the package's own facade, and
// writes models/<dataset>-classifier.safetensors and its record (sha256, accuracy, seed, per-epoch
// figures). Deterministic given --seed on a given machine and thread count (--threads N sets LibTorch's).
// Run: npm run train:classifier [-- --dataset mnist --seed 1 --epochs 4 --threads 2 --out models]
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { torch, optim, F, safetensors, data, info } = require(path.join(root, 'lib/index.js'));
const { classifierFor, classifierModel, featuresAndLogits } = require(path.join(root, 'lib/quality/classifier.js'));
const { sha256Hex } = require(path.join(root, 'lib/data/download.js'));
const { toFloat32 } = require(path.join(root, 'lib/util/pixels.js'));
const { writeFileAtomic } = require(path.join(root, 'lib/util/fs.js'));

const { values: args } = parseArgs({
  options: {
    dataset: { type: 'string', default: 'mnist' },
    seed: { type: 'string', default: '1' },
    epochs: { type: 'string', default: '4' },
    batch: { type: 'string', default: '128' },
    threads: { type: 'string' },
    out: { type: 'string', default: path.join(root, 'models') },
  },
});
const classifier = classifierFor(args.dataset);
if (args.threads !== undefined) torch.setNumThreads(Number(args.threads));
const seed = Number(args.seed);
const epochs = Number(args.epochs);
const batch = Number(args.batch);
// Adam at 1e-3, lowered for the last epochs: the step sizes of a short schedule that reaches > 99%
const lrAt = (epoch) => (epoch < epochs - 2 ? 1e-3 : epoch < epochs - 1 ? 3e-4 : 1e-4);

/** uint8 MNIST or Fashion-MNIST as float32 [N, 1, 28, 28] in '[-1,1]' and int64 labels. */
async function load(train) {
  const ds = await data.loadDataset(classifier.data, { train });
  const x = torch.tensor(toFloat32(ds.images, '[-1,1]'), [ds.length, 1, 28, 28]);
  const y = torch.tensor(
    BigInt64Array.from(ds.labels, (v) => BigInt(v)),
    [ds.length],
  );
  return { x, y, n: ds.length };
}

function accuracy(model, set) {
  model.eval();
  let right = 0;
  torch.noGrad(() => {
    for (let i = 0; i < set.n; i += 1000) {
      torch.scope(() => {
        const m = Math.min(1000, set.n - i);
        const { logits } = featuresAndLogits(model, set.x.narrow(0, i, m));
        right += logits
          .argmax(1)
          .eq(set.y.narrow(0, i, m))
          .sum()
          .item();
      });
    }
  });
  model.train();
  return right / set.n;
}

const t0 = performance.now();
const train = await load(true);
const test = await load(false);
torch.manualSeed(seed);
const model = classifierModel();
const opt = new optim.Adam(model.parameters(), { lr: lrAt(0) });
const log = [];
for (let epoch = 0; epoch < epochs; epoch++) {
  const e0 = performance.now();
  for (const g of opt.paramGroups) g.lr = lrAt(epoch);
  const perm = torch.randperm(train.n);
  let lossSum = 0;
  let steps = 0;
  for (let i = 0; i < train.n; i += batch) {
    torch.scope(() => {
      const idx = perm.narrow(0, i, Math.min(batch, train.n - i));
      const { logits } = featuresAndLogits(model, train.x.indexSelect(0, idx));
      const loss = F.crossEntropy(logits, train.y.indexSelect(0, idx));
      opt.zeroGrad();
      loss.backward();
      opt.step();
      lossSum += loss.item();
      steps++;
    });
  }
  perm.dispose();
  const acc = accuracy(model, test);
  const row = {
    epoch: epoch + 1,
    lr: lrAt(epoch),
    loss: +(lossSum / steps).toFixed(5),
    testAccuracy: acc,
    seconds: +((performance.now() - e0) / 1000).toFixed(1),
  };
  log.push(row);
  console.log(JSON.stringify(row));
}
const testAccuracy = accuracy(model, test);
const trainAccuracy = accuracy(model, train);
fs.mkdirSync(args.out, { recursive: true });
const weightsFile = path.join(args.out, `${classifier.name}.safetensors`);
const bytes = safetensors.save(model.stateDict(), { format: 'pt', architecture: classifier.architecture });
writeFileAtomic(weightsFile, bytes);
const rt = info();
const record = {
  ...(classifier.dataset === 'mnist' ? {} : { dataset: classifier.dataset }),
  sha256: sha256Hex(bytes),
  testAccuracy,
  trainAccuracy,
  seed,
  epochs,
  batch,
  optimizer: 'Adam(lr 1e-3, last two epochs 3e-4 and 1e-4)',
  parameters: model.numParameters(),
  perEpoch: log,
  seconds: +((performance.now() - t0) / 1000).toFixed(1),
  command: `npm run train:classifier -- ${classifier.dataset === 'mnist' ? '' : `--dataset ${classifier.dataset} `}--seed ${seed} --epochs ${epochs} --batch ${batch}${
    args.threads === undefined ? '' : ` --threads ${args.threads}`
  }`,
  trainedOn: {
    date: new Date().toISOString().slice(0, 10),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    threads: torch.getNumThreads(),
    libtorch: rt.libtorch.version,
  },
};
writeFileAtomic(path.join(args.out, `${classifier.name}.json`), `${JSON.stringify(record, null, 2)}\n`);
console.log(JSON.stringify({ testAccuracy, trainAccuracy, sha256: record.sha256, seconds: record.seconds }));
