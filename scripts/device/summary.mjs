// The GPU check's short summary (scripts/device/check.mjs): Markdown, printed last and written to
// summary.md. Phases with their status and seconds, every check with its largest difference and bound,
// ms/step and epoch seconds per path (the best of the rounds), the CUDA epoch target.

const fmt = (v, d = 3) => (v === undefined || v === null ? 'n/a' : typeof v === 'number' ? String(Number(v.toPrecision(d))) : String(v));
const PATH_ORDER = ['fused', 'fusedEager', 'facade', 'torch'];

/** The summary of check.json's `state` after `seconds`; ok: every phase completed and no check failed. */
export function summarize(state, seconds) {
  const recs = (phase) => state.records.filter((r) => r.phase === phase);
  const rt = state.records.find((r) => r.name === 'runtime');
  const lines = [
    `## Device check${state.dryRun ? ' (dry run on the CPU)' : ''}, ${state.started.slice(0, 10)}`,
    '',
    rt
      ? `${rt.gpus?.length ? rt.gpus.join(', ') : 'no GPU'}; LibTorch ${rt.libtorch} (${rt.cudaBuild ? `CUDA ${rt.cudaVersion}` : 'CPU'} build, CUDA graphs ${rt.cudaGraphs ? 'compiled in' : 'not compiled in'}); binary ${rt.binary.file} (${rt.binary.kind}${rt.binarySources && rt.binarySources !== 'current' ? `, ${rt.binarySources}` : ''}); NCCL ${rt.nccl?.available ? rt.nccl.version : 'not available'}; Node ${rt.node}`
      : 'runtime: unknown (the info phase did not report)',
    '',
    '| phase | status | seconds | budget |',
    '|---|---|---|---|',
    ...state.phases.map((p) => `| ${p.name} | ${p.status}${p.reason ? `: ${p.reason}` : ''} | ${fmt(p.seconds)} | ${p.budgetS ?? ''} |`),
    '',
  ];
  const checks = recs('correctness')
    .concat(recs('nccl'))
    .filter((r) => r.name !== 'tf32');
  if (checks.length) {
    lines.push('| check | status | max abs diff | bound |', '|---|---|---|---|');
    for (const r of checks)
      lines.push(
        `| ${r.name} | ${r.status}${r.reason ? `: ${r.reason}` : r.error ? `: ${r.error.split('\n')[0]}` : ''} | ${fmt(r.maxAbsDiff)} | ${fmt(r.bound)} |`,
      );
    lines.push('');
  }
  const table = (kind, unit, value) => {
    const rows = state.records.filter((r) => r.kind === kind && r.status === 'pass');
    if (!rows.length) return;
    const keys = [...new Set(rows.map((r) => `${r.preset} ${r.batch}`))];
    lines.push(
      state.dryRun
        ? `| ${unit} | fused | fused, eager | facade | PyTorch eager | fused vs PyTorch |`
        : `| ${unit} | fused + graph | fused, eager | facade | PyTorch eager | graph vs PyTorch |`,
      '|---|---|---|---|---|---|',
      ...keys.map((k) => {
        const by = Object.fromEntries(PATH_ORDER.map((p) => [p, rows.filter((r) => `${r.preset} ${r.batch}` === k && r.path === p).map(value)]));
        const best = Object.fromEntries(PATH_ORDER.map((p) => [p, by[p].length ? Math.min(...by[p]) : null]));
        const x = best.fused && best.torch ? `${fmt(best.torch / best.fused, 2)}x faster` : 'n/a';
        return `| ${k.replace(' ', ' batch ')} | ${PATH_ORDER.map((p) => fmt(best[p])).join(' | ')} | ${x} |`;
      }),
      '',
    );
  };
  table('stepMs', 'ms/step', (r) => r.ms);
  table('epochS', `epoch s (${state.dryRun ? '64 images' : '60,000 images'})`, (r) => r.seconds);
  // The CUDA target (docs/DEVELOPMENT.md, "Targets"): a full epoch at least 10x faster than PyTorch eager and under 0.1 s.
  if (!state.dryRun) {
    const epochs = state.records.filter((r) => r.kind === 'epochS' && r.status === 'pass');
    for (const k of [...new Set(epochs.map((r) => `${r.preset} ${r.batch}`))]) {
      const best = (p) => Math.min(...epochs.filter((r) => `${r.preset} ${r.batch}` === k && r.path === p).map((r) => r.seconds));
      const [g, t] = [best('fused'), best('torch')];
      if (Number.isFinite(g) && Number.isFinite(t))
        lines.push(
          `target full epoch >= 10x faster than PyTorch eager and under 0.1 s (${k.replace(' ', ', batch ')}): ${fmt(t / g, 3)}x, ${fmt(g)} s, ${t / g >= 10 && g < 0.1 ? 'met' : 'not met'}`,
        );
    }
    if (epochs.length) lines.push('');
  }
  const bad = state.records.filter((r) => r.status === 'fail' || r.status === 'error');
  const phaseBad = state.phases.filter((p) => !['ok', 'skipped'].includes(p.status) || (p.status === 'skipped' && !state.dryRun));
  lines.push(
    `${bad.length ? `${bad.length} check(s) failed or errored` : 'no check failed'}; ${phaseBad.length ? `phases not completed: ${phaseBad.map((p) => `${p.name} (${p.status})`).join(', ')}` : 'every phase completed'}; ${seconds} s in all. Full figures: check.json, log: check.log.`,
  );
  return { text: lines.join('\n'), ok: !bad.length && !phaseBad.length };
}
