/**
 * Data-parallel GanStep on loopback (Gloo, 2 processes): 2 ranks at batch 32 each reproduce 1 rank at
 * batch 64 on the same images and noise (an MLP without dropout or BatchNorm, where averaging the two
 * halves' gradients is exactly the whole batch's gradient): weights within 1e-5 after 6 steps, losses
 * reported as the ranks' means, rank 1's own initial weights replaced by rank 0's; with the recipes (hinge, a lazy
 * R1 penalty, dSteps, an EMA of G) too, the EMA generator's weights included.
 */
import * as path from 'node:path';
import { freePort, lastJson, run } from '../helpers/processes';

const lib = path.resolve(__dirname, '..', '..', 'lib', 'index.js');
const script = path.join(__dirname, 'gan-rank.cjs');

interface Out {
  rank: number;
  path: string;
  losses: number[][];
  params: number[];
}

const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('data-parallel GanStep (Gloo, 2 ranks)', () => {
  test.each([
    ['the MLP fast path', '1', 'fast'],
    ['the autograd path', '0', 'autograd: the fast path is off (fastPath: false)'],
    [
      'the recipes (hinge, lazy R1, dSteps 2, EMA: its weights from rank 0 too)',
      '2',
      "autograd: the fast path writes out only the BCE losses' gradients, not this step's loss",
    ],
  ])(
    '2 ranks at batch 32 reproduce 1 rank at batch 64 on %s: weights within 1e-5, losses the ranks mean',
    async (_, fast, want) => {
      const port = await freePort();
      const [one, r0, r1] = (
        await Promise.all([
          run(process.execPath, [script, lib, '0', '1', '0', fast]),
          run(process.execPath, [script, lib, '0', '2', String(port), fast]),
          run(process.execPath, [script, lib, '1', '2', String(port), fast]),
        ])
      ).map((r) => lastJson<Out>(r));
      expect(r0.path).toBe(want);
      const g = 8 * 32 + 32 + 32 * 16 + 16;
      expect(r0.params.length).toBe(g + 16 * 32 + 32 + 32 + 1 + (fast === '2' ? g : 0));
      // the ranks hold the same weights, bit for bit: the same averaged gradients and the same updates
      expect(maxDiff(r0.params, r1.params)).toBe(0);
      expect(maxDiff(r0.params, one.params)).toBeLessThan(1e-5);
      expect(r0.losses).toEqual(r1.losses);
      for (let s = 0; s < one.losses.length; s++) for (let k = 0; k < 4; k++) expect(Math.abs(r0.losses[s][k] - one.losses[s][k])).toBeLessThan(1e-5);
    },
    90_000,
  );
});
