// One process of test/distributed/nccl.test.ts, on a GPU. MODE 'collectives': the one rank of an NCCL group,
// printing what allReduce, broadcast, allGather and barrier gave on CUDA tensors. MODE 'trainer': one
// seeded epoch of vanilla on synthetic images, trained alone and then as the one rank of an NCCL group
// (the Trainer's start agreement, rank RNG gathering and GanStep's gradient averaging on CUDA tensors),
// printing both runs' losses and weights and what the group's checkpoint stored. One JSON line each.
const fs = require('node:fs');
const path = require('node:path');
const [lib, mode, port, saveDir] = process.argv.slice(2);
const { dist, torch, Trainer } = require(lib);
const { loadCheckpoint } = require(path.join(path.dirname(lib), 'run', 'checkpoint.js'));

const join = () => dist.initProcessGroup({ backend: 'nccl', initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1, timeoutMs: 60_000 });
const values = (t) => Array.from(t.toTypedArray());

async function collectives() {
  await join();
  const pg = dist.group.WORLD;
  const f = (a) => torch.tensor(Float32Array.from(a), [a.length], { device: 'cuda' });
  const sum = f([1, 10]);
  await dist.allReduce(sum);
  const max = f([3, -2]);
  await dist.allReduce(max, 'max');
  const avg = f([5]);
  await dist.allReduce(avg, 'avg');
  const b = f([7, 8]);
  await dist.broadcast(b, 0);
  const g = await dist.allGather(f([2.5, 1]));
  await dist.barrier();
  let cpuError = '';
  try {
    await dist.allReduce(torch.tensor(Float32Array.from([1]), [1]));
  } catch (e) {
    cpuError = e.message;
  }
  const out = {
    backend: pg.backend,
    device: pg.device,
    tensorDevice: sum.device,
    sum: values(sum),
    max: values(max),
    avg: values(avg),
    b: values(b),
    g: g.map(values),
    gDevice: g[0].device,
    cpuError,
  };
  dist.destroyProcessGroup();
  return out;
}

// 600 images of 28 x 28 (6 steps of vanilla's batch of 100), the same in both runs.
function images() {
  torch.manualSeed(11);
  const n = 600;
  const px = torch.randint(0, 256, [n, 784], { dtype: 'uint8' });
  return {
    name: 'mnist',
    split: 'train',
    images: px.toTypedArray(),
    labels: new Uint8Array(n),
    length: n,
    channels: 1,
    height: 28,
    width: 28,
    classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    source: 'synthetic',
    sourceKind: 'root',
    files: { images: 'synthetic', labels: null },
  };
}

async function epoch(dir, processGroup) {
  const config = { preset: 'vanilla', epochs: 1, seed: 5, device: 'cuda', cudaGraphs: false, saveDir: dir, saveEvery: 1, sampleEvery: 0, verbose: 0 };
  const t = await Trainer.create(config, { dataset: images(), processGroup });
  const r = await t.train();
  // one row per step: step numbers and losses
  const losses = fs.readFileSync(path.join(r.runDir, 'losses.csv'), 'utf8').trim().split('\n').slice(1);
  const weights = [...t.generator.parameters(), ...t.discriminator.parameters()].flatMap(values);
  const device = t.data.device;
  t.dispose();
  return { losses, weights, runDir: r.runDir, device };
}

async function trainer() {
  const alone = await epoch(path.join(saveDir, 'alone'));
  await join();
  const ranked = await epoch(path.join(saveDir, 'nccl'), dist.group.WORLD);
  dist.destroyProcessGroup();
  // written through gatherRngStates: every rank's CPU and GPU generator states, gathered on the GPU
  const ckpt = loadCheckpoint(ranked.runDir);
  return {
    alone: { losses: alone.losses, weights: alone.weights, device: alone.device },
    nccl: { losses: ranked.losses, weights: ranked.weights, device: ranked.device },
    rng: { cuda: ckpt.rng.cuda ? values(ckpt.rng.cuda).length : 0, ranks: ckpt.rng.ranks.length },
  };
}

(mode === 'collectives' ? collectives() : trainer()).then(
  (out) => console.log(JSON.stringify(out)),
  (e) => {
    console.error(e.stack || e.message);
    process.exit(1);
  },
);
