/**
 * The fused step's precision option (issue 26 items 3 and 4): what 'auto' picks on this machine and
 * says, the paths a bf16 step takes, trainEpoch equal to step() under autocast, and bad input (an
 * unknown precision, fp16 on the CPU) refused by name from the GanStep, the run config and the CLI.
 * Values against PyTorch: test/parity/precision.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseTrainArgs } from '../../ts/cli/commands/train-args';
import { parseConfig } from '../../ts/config/config';
import { GanStep, type StepResult } from '../../ts/gan/gan-step';
import { resolvePrecision } from '../../ts/gan/precision';
import { presets } from '../../ts/gan/presets';
import { fromSpec } from '../../ts/nn/from-spec';
import { Adam } from '../../ts/optim/optimizer';
import * as torch from '../../ts/tensor/torch';
import { cpuFlags, cpuVendor } from '../../ts/util/cpu-flags';
import { runCli } from '../helpers/lib';

function gan(base: 'vanilla' | 'dcgan', precision?: unknown, seed = 1): GanStep {
  torch.manualSeed(seed);
  const p = presets[base];
  const G = fromSpec(p.generator);
  const D = fromSpec(p.discriminator);
  return new GanStep(G, D, new Adam(G.parameters()), new Adam(D.parameters()), p.step, precision === undefined ? {} : ({ precision } as never));
}

describe('precision', () => {
  test("'auto' picks by what is known of this CPU and the model, and says why; fp32 is the default", () => {
    // This machine's pick, by the rule's own inputs: AMX, or AVX512-BF16 on AMD for a convolutional model.
    const flags = cpuFlags();
    const amdBf16 = flags.has('avx512_bf16') && cpuVendor() === 'AuthenticAMD';
    const mlp = gan('vanilla', 'auto');
    const conv = gan('dcgan', 'auto');
    expect(mlp.precision).toBe(flags.has('amx_bf16') ? 'bf16' : 'fp32');
    expect(conv.precision).toBe(flags.has('amx_bf16') || amdBf16 ? 'bf16' : 'fp32');
    for (const g of [mlp, conv]) expect(g.precisionReason).toMatch(/^auto: (bf16|fp32) \(.+\)$/);
    if (amdBf16 && !flags.has('amx_bf16')) {
      expect(mlp.precisionReason).toBe("auto: fp32 (an MLP: bf16 would leave the fp32 fast path; ask for 'bf16' to try it)");
      expect(conv.precisionReason).toBe('auto: bf16 (an AMD CPU with AVX512-BF16: convolutional steps measured 0.83-1.00x of fp32 time)');
      expect(conv.path).toBe('autograd: precision bf16 runs under autocast on the autograd path (the fast path computes in fp32)');
    }
    expect(resolvePrecision('auto', 'cuda', { convolutional: true }).precision).toBe('fp32');
    expect([gan('vanilla').precision, gan('vanilla').precisionReason]).toEqual(['fp32', 'asked']);
    expect([gan('dcgan').precision, gan('dcgan').path]).toEqual(['fp32', 'fast']);
  });

  test('bf16 takes the autograd path (the MLP fast path computes in fp32) and computes in bf16', () => {
    const g = gan('vanilla', 'bf16');
    expect(g.path).toBe('autograd: precision bf16 runs under autocast on the autograd path (the fast path computes in fp32)');
    expect(g.gradScale).toBeNull(); // fp16's loss scale only
    expect(gan('vanilla', 'fp32').path).toBe('fast');
    // the same step in fp32 and in bf16 from the same weights and draws: close, not equal
    const x = torch.rand([64, 784]).mul(2).sub(1);
    const run = (p: 'fp32' | 'bf16') => {
      const s = gan('dcgan', p, 3);
      torch.manualSeed(5);
      return s.step(x.reshape([64, 1, 28, 28]));
    };
    const [a, b] = [run('fp32'), run('bf16')];
    expect(a.dLoss).not.toBe(b.dLoss);
    expect(Math.abs(a.dLoss - b.dLoss)).toBeLessThan(0.05 * Math.abs(a.dLoss));
  });

  test('trainEpoch under bf16 equals the same step() calls', async () => {
    const data = torch
      .rand([64 * 3, 1, 28, 28])
      .mul(2)
      .sub(1);
    const a = gan('dcgan', 'bf16', 4);
    torch.manualSeed(9);
    const steps: StepResult[] = [0, 1, 2].map((i) => a.step(data.narrow(0, 64 * i, 64)));
    const b = gan('dcgan', 'bf16', 4);
    torch.manualSeed(9);
    const r = await b.trainEpoch(data, { batchSize: 64, shuffle: false, recordSteps: true });
    steps.forEach((s, i) => {
      expect(r.perStep![i * 4]).toBe(Math.fround(s.dLoss));
      expect(r.perStep![i * 4 + 1]).toBe(Math.fround(s.gLoss));
    });
    const wa = [...a.generator.parameters(), ...a.discriminator.parameters()];
    const wb = [...b.generator.parameters(), ...b.discriminator.parameters()];
    for (const [i, t] of wa.entries()) expect(t.allclose(wb[i]!, 0, 0)).toBe(true);
  });

  test('bad input is refused by name: unknown precision, fp16 on the CPU; from the config and the CLI too', () => {
    expect(() => gan('vanilla', 'bf8')).toThrow("GanStep(options): precision: expected 'auto', 'fp32', 'bf16' or 'fp16', got \"bf8\" (did you mean 'bf16'?)");
    expect(() => gan('vanilla', 'fp16')).toThrow("GanStep: precision 'fp16' needs a CUDA device");
    expect(() => parseConfig({ precision: 'half' })).toThrow(/config\.precision: expected 'auto', 'fp32', 'bf16', 'fp16'/);
    expect(() => parseTrainArgs(['--precision', 'half'])).toThrow(/--precision/);
    const ok = parseTrainArgs(['--precision', 'bf16']);
    expect(ok !== 'help' && ok.config.precision).toBe('bf16');
  });

  test('the CLI trains cgan in bf16 and says what auto picked', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-precision-'));
    try {
      const common = ['--limit', '128', '--epochs', '1', '--seed', '1', '--sample-every', '0', '--save-every', '1', '--save-dir', dir];
      const bf16 = runCli(['train', '--preset', 'cgan', '--precision', 'bf16', ...common]);
      expect(bf16.status).toBe(0);
      expect(bf16.stderr).not.toMatch(/error|warning/i); // progress only
      expect(bf16.stdout).toMatch(/^Precision {3}bf16\n/m);
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'run-1', 'config.json'), 'utf8')).config.precision).toBe('bf16');
      const auto = runCli(['train', '--preset', 'vanilla', '--precision', 'auto', ...common]);
      expect(auto.status).toBe(0);
      expect(auto.stdout).toContain(`Precision   ${gan('vanilla', 'auto').precision} (${gan('vanilla', 'auto').precisionReason})`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
