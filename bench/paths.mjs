// The measured paths, shared by `npm run bench` (bench/run.mjs) and the GPU check (scripts/device/check.mjs):
// models built as each path trains, warm-ups that leave a CUDA graph replaying before any clock starts,
// and the facade's epoch loop. Each function takes the package (`lib`) as bench/floor.mjs does.

/** A convolutional discriminator takes [N, 1, 28, 28] batches, an MLP one [N, 784]. */
export const isConv = (p) => p.discriminator.children?.[0]?.type === 'Conv2d';

/**
 * G, D and their optimizers for `preset` on `device`, from seed 0 with the preset's init scheme. The
 * fused path trains as the Trainer does, with Adam({ fused: true }); the imperative path with the default
 * single-tensor Adam, like the PyTorch script.
 */
export function buildPath(lib, preset, device, fused = false) {
  const { torch, optim, getPreset, buildModels } = lib;
  const p = getPreset(preset);
  torch.manualSeed(0);
  const { generator: G, discriminator: D } = buildModels(p, device);
  const o = p.optimizer;
  const mk = (m) => new optim.Adam(m.parameters(), { lr: o.lr, betas: o.betas, eps: o.eps, fused });
  return { p, G, D, optG: mk(G), optD: mk(D) };
}

/** Whether the step has left its warm-up: a CUDA graph replaying, or none at all ('off: <why>'). */
export const graphSettled = (gan) => gan?.cudaGraph !== 'warming up';

/**
 * Warm-up before timing `step`: on CUDA, steps until the graph replays (its capture is not a step to
 * time), then `warmup` steps more. Returns the graph's status, which says whether it replays.
 */
export function warmSteps(gan, step, warmup, maxToCapture = 20) {
  for (let i = 0; i < maxToCapture && !graphSettled(gan); i++) step();
  for (let i = 0; i < warmup; i++) step();
  return gan?.cudaGraph;
}

/** Milliseconds per call of `fn` over `steps` calls, `sync` (the device's) at both ends. */
export function timeSteps(fn, steps, sync) {
  sync();
  const t = performance.now();
  for (let i = 0; i < steps; i++) fn();
  sync();
  return (performance.now() - t) / steps;
}

/**
 * Warms the fused step for an epoch at `batch`: a short epoch over the first images (as many batches as
 * the warm-up and capture take, and `warmup` more), again while the graph is still warming up. The graph
 * is kept across epochs, so the timed epoch replays from its first full batch.
 */
export async function warmEpoch(gan, images, { batch, warmup, labels, normalize }) {
  const n = Math.min(images.shape[0], batch * (warmup + 4));
  const opts = { batchSize: batch, labels: labels?.narrow(0, 0, n), shuffle: false, normalize };
  await gan.trainEpoch(images.narrow(0, 0, n), opts);
  for (let i = 0; i < 3 && !graphSettled(gan); i++) await gan.trainEpoch(images.narrow(0, 0, n), opts);
  return gan.cudaGraph;
}

/**
 * One shuffled epoch of the facade's imperative step over `images` (uint8, [N, 1, 28, 28], on the
 * models' device), batches gathered and normalized on the device as a script does; yields to the event
 * loop every 50 batches. Returns the seconds it took, `sync` at both ends.
 */
export async function facadeEpoch(lib, a, images, labels, batch, sync) {
  const { torch, imperativeStep } = lib;
  const conv = isConv(a.p);
  const cond = a.p.step.conditioning;
  sync();
  const t0 = performance.now();
  const perm = torch.randperm(images.shape[0]).to(images.device); // drawn on the CPU, as the PyTorch script's
  for (let i = 0; i < images.shape[0]; i += batch) {
    torch.scope(() => {
      const idx = perm.narrow(0, i, Math.min(batch, images.shape[0] - i));
      let xb = images.indexSelect(0, idx).float().div(255);
      if (!conv) xb = xb.flatten(1);
      const y = cond ? labels.indexSelect(0, idx) : undefined;
      imperativeStep(a.G, a.D, a.optG, a.optD, a.p.step, a.p.normalize === '[-1,1]' ? xb.sub(0.5).div(0.5) : xb, { labels: y });
    });
    if ((i / batch) % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  sync();
  return (performance.now() - t0) / 1000;
}
