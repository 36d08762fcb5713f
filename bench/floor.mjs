// The floor of a GAN step on this machine, for `npm run bench`: the time its matrix products (MLP steps)
// or convolutions (convolutional steps) take at the throughput measured for each of their shapes and
// directions, plus the Adam updates' memory traffic at the measured memory bandwidth (the better of a
// plain copy over the same bytes and the fused Adam kernel's own). Measured with the facade (torch.mm,
// F.conv2d and F.convTranspose2d with torch.autograd.grad for their two backward kernels, Tensor.copy_,
// optim.Adam) in a process of its own, on one thread's OpenMP team, as the fused step runs.

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
 * The passes of one fast-path step (native/fast_path.cc) for batch n, in order: G's fakes for both
 * updates at once (one batch when G reuses D's fake), D's update over the real and fake rows at once, then
 * G's update: D forward and input gradients, G backward. `visit(layer, rows, what, netInput)` sees each
 * layer's forward, weight gradient (dW) and input gradient (dx: below the first layer, and of D's first
 * layer in G's update, netInput true: a conditional D's for the image's features or channels only).
 */
function stepPasses(preset, n, nets, visit) {
  const forward = (net, rows) => {
    for (const l of nets[net]) visit(l, rows, 'forward', false);
  };
  const backward = (net, rows, weights, input) =>
    nets[net].forEach((l, i) => {
      if (weights) visit(l, rows, 'dW', false);
      if (i > 0 || input) visit(l, rows, 'dx', i === 0);
    });
  forward('g', preset.step.gNoise === 'reuse' ? n : 2 * n);
  forward('d', 2 * n);
  backward('d', 2 * n, true, false);
  forward('d', n);
  backward('d', n, false, true);
  backward('g', n, true, false);
}

/** The matrix products of one MLP step for batch n, as { m, k, n, what, count }: C[m, n] = A[m, k] B[k, n]. */
export function stepGemms(preset, n) {
  const classes = preset.step.conditioning?.classes ?? 0;
  const list = [];
  const add = (m, k, nn, what) => {
    const e = list.find((x) => x.m === m && x.k === k && x.n === nn && x.what === what);
    if (e) e.count++;
    else list.push({ m, k, n: nn, what, count: 1 });
  };
  // forward x W^T, dW = dY^T x, dx = dY W
  stepPasses(preset, n, { g: linears(preset.generator), d: linears(preset.discriminator) }, (l, rows, what, netInput) => {
    if (what === 'forward') add(rows, l.inF, l.outF, what);
    else if (what === 'dW') add(l.outF, rows, l.inF, what);
    else add(rows, l.outF, netInput ? l.inF - classes : l.inF, what);
  });
  return list;
}

const pairOf = (v, d) => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

/**
 * The convolutions of a net's spec for input samples of sizes [C, H, W], in order, with their
 * input and output sizes.
 */
function convLayers(spec, sample) {
  const out = [];
  let [h, w] = [sample[1], sample[2]];
  const walk = (s) => {
    if (s.type === 'Sequential') return s.children.forEach(walk);
    if (s.type !== 'Conv2d' && s.type !== 'ConvTranspose2d') return;
    const t = s.type === 'ConvTranspose2d';
    const [k, st, p, op, d] = [pairOf(s.kernelSize), pairOf(s.stride, 1), pairOf(s.padding, 0), pairOf(s.outputPadding, 0), pairOf(s.dilation, 1)];
    const size = (x, i) => (t ? (x - 1) * st[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 : Math.floor((x + 2 * p[i] - d[i] * (k[i] - 1) - 1) / st[i]) + 1);
    const l = { type: s.type, cin: s.inChannels, cout: s.outChannels, k, stride: st, padding: p, outputPadding: op, dilation: d, groups: s.groups ?? 1, h, w };
    [h, w] = [size(h, 0), size(w, 1)];
    out.push({ ...l, ho: h, wo: w });
  };
  walk(spec);
  return out;
}

const convName = (l) => `${l.type === 'Conv2d' ? 'conv' : 'convT'} ${l.cin}->${l.cout} k${l.k[0]} s${l.stride[0]} ${l.h}x${l.w}->${l.ho}x${l.wo}`;

/**
 * The convolutions of one step of the fast path (native/fast_path.cc) for a convolutional preset at
 * batch n, as { name, layer, rows, what, count, gflop }: `what` is forward, dx (the input's gradient) or
 * dW (the weight's). Each direction of a convolution costs the same multiply-adds.
 */
export function stepConvs(preset, n) {
  const classes = preset.step.conditioning?.classes ?? 0;
  const nz = preset.step.noise.shape ?? [preset.step.noise.dim, 1, 1];
  const g = convLayers(preset.generator, [nz[0] + classes, nz[1], nz[2]]);
  const d = convLayers(preset.discriminator, [preset.image.channels + classes, preset.image.size, preset.image.size]);
  const list = [];
  const add = (layer, rows, what) => {
    const e = list.find((x) => x.layer === layer && x.rows === rows && x.what === what);
    if (e) e.count++;
    else {
      const pixels = layer.type === 'Conv2d' ? layer.ho * layer.wo : layer.h * layer.w;
      const gflop = (2 * rows * pixels * layer.cin * (layer.cout / layer.groups) * layer.k[0] * layer.k[1]) / 1e9;
      list.push({ name: convName(layer) + (layer.note ?? ''), layer, rows, what, count: 1, gflop });
    }
  };
  stepPasses(preset, n, { g, d }, (l, rows, what, netInput) =>
    add(netInput && classes ? { ...l, cin: preset.image.channels, note: ` (the image's of ${l.cin} channels)` } : l, rows, what),
  );
  return list;
}

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

/**
 * The matrix product a convolution amounts to in one direction (im2col's [M, P] with M = rows x the
 * pixels the kernel visits, P = the thin side's channels x kernel pixels, Q = the other side's channels),
 * as [m, k, n] of C[m, n] = A[m, k] B[k, n].
 */
function productShape(e) {
  const l = e.layer;
  const t = l.type === 'ConvTranspose2d';
  const m = e.rows * (t ? l.h * l.w : l.ho * l.wo);
  const p = (t ? l.cout : l.cin) * l.k[0] * l.k[1];
  const q = t ? l.cin : l.cout;
  if (e.what === 'dW') return [q, m, p];
  // forward of a Conv2d and input gradient of a ConvTranspose2d: im2col rows times the weight; the others
  // the pixel rows times the weight, scattered back by col2im
  return (e.what === 'forward') !== t ? [m, p, q] : [m, q, p];
}

/**
 * Times each convolution of `convs` in the direction it names, channels-last as the fast path runs them
 * on the CPU (`ms`), and the matrix product it amounts to (`productMs`, im2col and col2im not counted):
 * its floor is the faster of the two.
 */
function timeConvs(lib, convs) {
  const { torch, F } = lib;
  const cl = (t) => t.contiguous({ memoryFormat: 'channelsLast' });
  for (const e of convs) {
    const l = e.layer;
    torch.scope(() => {
      const x = cl(torch.randn([e.rows, l.cin, l.h, l.w]));
      const wShape = l.type === 'Conv2d' ? [l.cout, l.cin / l.groups, ...l.k] : [l.cin, l.cout / l.groups, ...l.k];
      const w = torch.randn(wShape).mul(0.02);
      const opts = { stride: l.stride, padding: l.padding, dilation: l.dilation, groups: l.groups };
      const conv = (a, b) => (l.type === 'Conv2d' ? F.conv2d(a, b, null, opts) : F.convTranspose2d(a, b, null, { ...opts, outputPadding: l.outputPadding }));
      if (e.what === 'forward') {
        e.ms = timeIt(() => conv(x, w).dispose());
        return;
      }
      // one backward kernel: the gradient of the input or of the weight alone, from a retained graph
      const leaf = e.what === 'dx' ? x : w;
      leaf.requiresGrad = true;
      const y = conv(x, w);
      const go = cl(torch.randn(y.shape));
      e.ms = timeIt(() => torch.autograd.grad([y], [leaf], { gradOutputs: [go], retainGraph: true })[0].dispose());
    });
    const [m, k, n] = productShape(e);
    e.product = `${m}x${k}x${n}`;
    torch.scope(() => {
      const a = torch.randn([m, k]);
      const b = torch.randn([k, n]);
      e.productMs = timeIt(() => a.mm(b).dispose());
    });
    e.floorMs = Math.min(e.ms, e.productMs);
    e.gflops = e.gflop / (e.ms / 1e3);
    e.productGflops = e.gflop / (e.productMs / 1e3);
  }
}

/** Measures the floor of one step of `preset` at batch n (see the file's comment). */
export function measureFloor(lib, preset, n) {
  const { torch, optim, buildModels, imperativeStep } = lib;
  const conv = preset.discriminator.children?.[0]?.type === 'Conv2d';
  let gemms = null;
  let convs = null;
  if (conv) {
    convs = stepConvs(preset, n);
    timeConvs(lib, convs);
  } else {
    gemms = stepGemms(preset, n);
    for (const e of gemms) {
      // the operands' layouts as the path has them: forward x W^T, dW = dY^T x, dx = dY W
      const a = e.what === 'dW' ? torch.randn([e.k, e.m]).t() : torch.randn([e.m, e.k]);
      const b = e.what === 'forward' ? torch.randn([e.n, e.k]).t() : torch.randn([e.k, e.n]);
      e.ms = timeIt(() => a.mm(b).dispose());
      e.gflops = (2 * e.m * e.k * e.n) / (e.ms * 1e6);
    }
  }
  const productMs = conv ? convs.reduce((s, e) => s + e.count * e.floorMs, 0) : gemms.reduce((s, e) => s + e.count * e.ms, 0);
  torch.manualSeed(0);
  const { generator: G, discriminator: D } = buildModels(preset, 'cpu');
  const params = [...G.parameters(), ...D.parameters()].reduce((s, p) => s + p.numel(), 0);
  // Memory bandwidth: a copy over as many bytes as the updates touch (4 arrays of the parameters' size),
  // so caches help it as much as they help the updates.
  const src = torch.randn([2 * params]);
  const dst = torch.empty([2 * params]);
  const copyMs = timeIt(() => dst.copy_(src), 200);
  const copyBandwidth = (2 * 4 * 2 * params) / (copyMs * 1e6); // GB/s
  // The Adam updates: read param, grad, exp_avg, exp_avg_sq, write param, exp_avg, exp_avg_sq.
  const trafficMB = (7 * 4 * params) / 1e6;
  // The fused Adam updates themselves (what the step runs), on the preset's parameters with gradients.
  const o = preset.optimizer;
  const mk = (m) => new optim.Adam(m.parameters(), { lr: o.lr, betas: o.betas, eps: o.eps, fused: true });
  const optG = mk(G);
  const optD = mk(D);
  const real = conv ? torch.rand([n, preset.image.channels, preset.image.size, preset.image.size]) : torch.rand([n, 784]);
  const classes = preset.step.conditioning?.classes;
  imperativeStep(G, D, optG, optD, preset.step, real.mul(2).sub(1), { labels: classes ? torch.randint(0, classes, [n]) : undefined });
  const adamMs = timeIt(() => {
    optD.step();
    optG.step();
  });
  // The faster of the two bandwidths bounds the updates: the fused kernel streams its four arrays once.
  const adamBandwidth = trafficMB / adamMs;
  const bandwidth = Math.max(copyBandwidth, adamBandwidth);
  const updateFloorMs = trafficMB / bandwidth;
  return {
    gemms,
    convs: convs?.map(({ layer, ...e }) => e),
    gemmMs: productMs,
    productMs,
    copyBandwidth,
    adamBandwidth,
    bandwidth,
    params,
    trafficMB,
    updateFloorMs,
    adamMs,
    floorMs: productMs + updateFloorMs,
  };
}
