// The floor of an MLP GAN step on this machine, for `npm run bench`: the time its matrix products take
// at the sgemm throughput measured for each of their shapes, plus the Adam updates' memory traffic at the
// measured memory bandwidth (the better of a plain copy over the same bytes and the fused Adam kernel's own). Measured with the facade (torch.mm, Tensor.copy_, optim.Adam) in a process
// of its own, on one thread's OpenMP team, as the fused step runs.

const linears = (spec) => {
  const out = [];
  const walk = (s) => {
    if (s.type === 'Sequential') s.children.forEach(walk);
    else if (s.type === 'Linear') out.push({ inF: s.inFeatures, outF: s.outFeatures });
  };
  walk(spec);
  return out;
};

/**
 * The matrix products of one step of the MLP fast path (native/mlp_path.cc) for batch n, as
 * { m, k, n, what, count }: C[m, n] = A[m, k] B[k, n].
 */
export function stepGemms(preset, n) {
  const g = linears(preset.generator);
  const d = linears(preset.discriminator);
  const reuse = preset.step.gNoise === 'reuse';
  const list = [];
  const add = (m, k, nn, what) => {
    const e = list.find((x) => x.m === m && x.k === k && x.n === nn && x.what === what);
    if (e) e.count++;
    else list.push({ m, k, n: nn, what, count: 1 });
  };
  const forward = (layers, rows) => {
    for (const l of layers) add(rows, l.inF, l.outF, 'forward');
  };
  // backward: weight gradients (dW = dY^T x) when asked, input gradients (dx = dY W) below the first layer unless asked
  const backward = (layers, rows, weights, input) =>
    layers.forEach((l, i) => {
      if (weights) add(l.outF, rows, l.inF, 'dW');
      if (i > 0 || input) add(rows, l.outF, l.inF, 'dx');
    });
  // G's fakes for both updates at once (one batch when G reuses D's fake), then D's update over the
  // real and fake rows at once
  forward(g, reuse ? n : 2 * n);
  forward(d, 2 * n);
  backward(d, 2 * n, true, false);
  // G's update: D forward and input gradients, G backward
  forward(d, n);
  backward(d, n, false, true);
  backward(g, n, true, false);
  return list;
}

const paramCount = (preset) => [...linears(preset.generator), ...linears(preset.discriminator)].reduce((a, l) => a + l.inF * l.outF + l.outF, 0);

function timeIt(fn, minMs = 60) {
  for (let i = 0; i < 3; i++) fn();
  let reps = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs || reps < 5) {
    fn();
    reps++;
    t = performance.now();
  }
  return (t - t0) / reps;
}

/** Measures the floor of one step of `preset` at batch n (see the file's comment). */
export function measureFloor(lib, preset, n) {
  const { torch, optim, buildModels, imperativeStep } = lib;
  const gemms = stepGemms(preset, n);
  for (const e of gemms) {
    // the operands' layouts as the path has them: forward x W^T, dW = dY^T x, dx = dY W
    const a = e.what === 'dW' ? torch.randn([e.k, e.m]).t() : torch.randn([e.m, e.k]);
    const b = e.what === 'forward' ? torch.randn([e.n, e.k]).t() : torch.randn([e.k, e.n]);
    e.ms = timeIt(() => a.mm(b).dispose());
    e.gflops = (2 * e.m * e.k * e.n) / (e.ms * 1e6);
  }
  const gemmMs = gemms.reduce((s, e) => s + e.count * e.ms, 0);
  // Memory bandwidth: a copy over as many bytes as the updates touch (4 arrays of the parameters' size),
  // so caches help it as much as they help the updates.
  const params = paramCount(preset);
  const src = torch.randn([2 * params]);
  const dst = torch.empty([2 * params]);
  const copyMs = timeIt(() => dst.copy_(src), 200);
  const copyBandwidth = (2 * 4 * 2 * params) / (copyMs * 1e6); // GB/s
  // The Adam updates: read param, grad, exp_avg, exp_avg_sq, write param, exp_avg, exp_avg_sq.
  const trafficMB = (7 * 4 * params) / 1e6;
  // The fused Adam updates themselves (what the step runs), on the preset's parameters with gradients.
  torch.manualSeed(0);
  const { generator: G, discriminator: D } = buildModels(preset, 'cpu');
  const o = preset.optimizer;
  const mk = (m) => new optim.Adam(m.parameters(), { lr: o.lr, betas: o.betas, eps: o.eps, fused: true });
  const optG = mk(G);
  const optD = mk(D);
  imperativeStep(G, D, optG, optD, preset.step, torch.rand([n, 784]).mul(2).sub(1));
  const adamMs = timeIt(() => {
    optD.step();
    optG.step();
  });
  // The faster of the two bandwidths bounds the updates: the fused kernel streams its four arrays once.
  const adamBandwidth = trafficMB / adamMs;
  const bandwidth = Math.max(copyBandwidth, adamBandwidth);
  const updateFloorMs = trafficMB / bandwidth;
  return { gemms, gemmMs, copyBandwidth, adamBandwidth, bandwidth, params, trafficMB, updateFloorMs, adamMs, floorMs: gemmMs + updateFloorMs };
}
