/** Facts about a finished training run, for {@link formatRunSummary}. */
export interface RunSummary {
  /** Epochs trained. */
  epochs: number;
  /** Optimizer steps taken (each one D and one G update). */
  steps?: number;
  /** Wall-clock training time in seconds. */
  seconds: number;
  /** Training images processed per second. */
  imagesPerSec?: number;
  /** Discriminator loss at the end (e.g. the last epoch's mean). */
  finalDLoss?: number;
  /** Generator loss at the end. */
  finalGLoss?: number;
  /** The last evaluation (--eval-every): classifier-FID and its real-data floor, IS, coverage, label accuracy. */
  quality?: { epoch: number; fid: number; floorFid: number; inceptionScore: number; coverage: number; labelAccuracy: number | null };
  /** Where it ran, e.g. 'cpu' or 'cuda:0' (and why on the CPU, when device auto fell back to it). */
  device?: string;
  /** The CUDA graph's state (GanStep.cudaGraph), e.g. 'replaying (batch 64)' or 'off: not on a CUDA device'. */
  cudaGraph?: string;
  /** Files written, as [label, path] pairs (or label -> path), e.g. ['Report', 'runs/x/report.html']. */
  files?: ReadonlyArray<readonly [string, string]> | Readonly<Record<string, string>>;
  /** First line. Default 'Training finished'. */
  title?: string;
}

/** Seconds as h:mm:ss, or m:ss under an hour ("0:07", "12:05", "1:02:03"). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A loss with 4 decimals, '-' when missing or not finite (NaN/Infinity print as such). */
export function formatLoss(v: number | undefined): string {
  if (v === undefined) return '-';
  return Number.isFinite(v) ? v.toFixed(4) : String(v);
}

/** Images per second without decimals above 100, with one below. */
export function formatRate(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return v >= 100 ? String(Math.round(v)) : v.toFixed(1);
}

/**
 * A short end-of-run table: epochs, steps, time, images/s, final losses, device, CUDA graph and where the
 * files are, two aligned columns, lines joined with '\n' (no trailing newline). Rows whose value
 * is not given are left out.
 */
export function formatRunSummary(s: RunSummary): string {
  const rows: [string, string][] = [['Epochs', String(s.epochs)]];
  if (s.steps !== undefined) rows.push(['Steps', String(s.steps)]);
  rows.push(['Time', `${formatDuration(s.seconds)} (${s.seconds.toFixed(1)} s)`]);
  if (s.imagesPerSec !== undefined) rows.push(['Images/s', formatRate(s.imagesPerSec)]);
  if (s.finalDLoss !== undefined) rows.push(['Final D loss', formatLoss(s.finalDLoss)]);
  if (s.finalGLoss !== undefined) rows.push(['Final G loss', formatLoss(s.finalGLoss)]);
  const q = s.quality;
  if (q) {
    rows.push(['Classifier-FID', `${q.fid.toFixed(2)} (epoch ${q.epoch}; real data ${q.floorFid.toFixed(2)})`]);
    rows.push(['IS', `${q.inceptionScore.toFixed(3)} (max 10)`], ['Coverage', q.coverage.toFixed(3)]);
    if (q.labelAccuracy !== null) rows.push(['Label accuracy', q.labelAccuracy.toFixed(4)]);
  }
  if (s.device !== undefined) rows.push(['Device', s.device]);
  if (s.cudaGraph !== undefined) rows.push(['CUDA graph', s.cudaGraph]);
  const files: [string, string][] = s.files
    ? Array.isArray(s.files)
      ? (s.files as ReadonlyArray<readonly [string, string]>).map(([k, v]) => [k, v])
      : Object.entries(s.files)
    : [];
  const width = Math.max(...rows.map(([k]) => k.length), ...files.map(([k]) => k.length + 2));
  const lines = [s.title ?? 'Training finished'];
  for (const [k, v] of rows) lines.push(`  ${k.padEnd(width)}  ${v}`);
  if (files.length) {
    lines.push('  Files');
    for (const [k, v] of files) lines.push(`    ${k.padEnd(width - 2)}  ${v}`);
  }
  return lines.join('\n');
}
