import * as fs from 'node:fs';
import * as path from 'node:path';
import * as logging from '../../ts/logging';

describe('ts/logging public API', () => {
  it('re-exports the writers and helpers', () => {
    const fns = [
      'SummaryWriter',
      'makeGrid',
      'saveImageGrid',
      'encodePng',
      'pngInfo',
      'writeLossPlot',
      'renderLossPlot',
      'lossPlotSpec',
      'epochMeans',
      'writeReport',
    ];
    for (const name of fns) expect(typeof (logging as Record<string, unknown>)[name]).toBe('function');
    expect(logging.LOSS_SERIES).toEqual(['D loss', 'G loss', 'D loss (epoch mean)', 'G loss (epoch mean)']);
  });

  it('imports nothing from the tensor, nn, optim, train or cli layers', () => {
    const dir = path.join(__dirname, '..', '..', 'ts', 'logging');
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const src = fs.readFileSync(path.join(dir, f), 'utf8');
      const specs = [...src.matchAll(/(?:from|require\()\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
      for (const s of specs) expect({ file: f, spec: s, bad: /^\.\.\/(tensor|nn|optim|train|cli)(\/|$)/.test(s) }).toMatchObject({ bad: false });
      // the library never prints
      expect({ file: f, prints: /console\.|process\.(stdout|stderr)/.test(src) }).toMatchObject({ prints: false });
    }
  });
});
