// One process of test/distributed/data-parallel.test.ts: a small MLP GAN trained STEPS steps on fixed images
// and noise, either alone on the whole batch of 64 (world 1) or as rank RANK of 2 on its half of
// each batch, data-parallel; on the MLP fast path (FAST 1), the autograd path (0), or with recipes (2: hinge, a
// lazy R1 penalty, 2 D steps per G step and an EMA of G, whose parameters are printed after G's and D's).
// Prints the final parameters and each step's losses as one JSON line.
const [lib, rank, world, port, fast] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a)));
const { dist, torch, nn, optim, GanStep, presets } = require(lib);

const STEPS = 6;
const BATCH = 64;
const flat = (t) => Array.from(t.toTypedArray());

(async () => {
  if (world > 1) await dist.initProcessGroup({ backend: 'gloo', initMethod: `tcp://127.0.0.1:${port}`, rank, worldSize: world, timeoutMs: 30000 });
  // Every rank draws the same images and noise; each takes its rows.
  torch.manualSeed(7);
  const real = torch.rand([STEPS, BATCH, 16]).mul(2).sub(1);
  const zD = torch.randn([STEPS, BATCH, 8]);
  const zG = torch.randn([STEPS, BATCH, 8]);
  // Rank 1 initializes differently on purpose: the start broadcast must give it rank 0's weights.
  torch.manualSeed(100 + rank);
  const G = new nn.Sequential(new nn.Linear(8, 32), new nn.LeakyReLU(0.2), new nn.Linear(32, 16), new nn.Tanh());
  const D = new nn.Sequential(new nn.Linear(16, 32), new nn.LeakyReLU(0.2), new nn.Linear(32, 1));
  const optG = new optim.Adam(G.parameters(), { lr: 2e-3, betas: [0.5, 0.999] });
  const optD = new optim.Adam(D.parameters(), { lr: 2e-3, betas: [0.5, 0.999] });
  const plain = { ...presets.vanilla.step, loss: 'bceWithLogits', noise: { dist: 'normal', dim: 8 } };
  const recipes = { ...plain, loss: 'hinge', penalty: { type: 'r1', weight: 1, every: 2 }, dSteps: 2, ema: { decay: 0.9 } };
  const gan = new GanStep(G, D, optG, optD, fast === 2 ? recipes : plain, { fastPath: fast !== 0, processGroup: world > 1 ? dist.group.WORLD : undefined });
  const rows = BATCH / world;
  const mine = (t, s) =>
    t
      .select(0, s)
      .narrow(0, rank * rows, rows)
      .contiguous();
  const losses = [];
  for (let s = 0; s < STEPS; s++) {
    const r = gan.step(mine(real, s), { zD: mine(zD, s), zG: mine(zG, s) });
    losses.push([r.dLoss, r.gLoss, r.dReal, r.dFake]);
  }
  const params = [...G.parameters(), ...D.parameters(), ...(gan.emaGenerator?.parameters() ?? [])].flatMap(flat);
  console.log(JSON.stringify({ rank, path: gan.path, losses, params }));
  if (world > 1) dist.destroyProcessGroup();
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
