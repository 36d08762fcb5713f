import { Writable } from 'node:stream';
import { TrainingProgress, type StepEvent } from '../../ts/cli/progress';
import { formatDuration, formatRunSummary } from '../../ts/cli/summary';

class FakeStream extends Writable {
  chunks: string[] = [];
  constructor(
    public isTTY: boolean,
    public columns = 160,
  ) {
    super();
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk.toString());
    cb();
  }
  get text(): string {
    return this.chunks.join('');
  }
}

// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');

/** Feeds 2 epochs of 20 steps, one step per second of the fake clock. */
function run(p: TrainingProgress, clock: { t: number }, epochs = 2, steps = 20): void {
  for (let e = 1; e <= epochs; e++) {
    for (let s = 1; s <= steps; s++) {
      clock.t += 1000;
      const ev: StepEvent = { epoch: e, epochs, step: s, stepsPerEpoch: steps, dLoss: 1 / s, gLoss: 2 + s / 100, dReal: 0.75, dFake: 0.25, imagesPerSec: 64 };
      p.step(ev);
    }
    p.epochEnd({ epoch: e, epochs, dLoss: 0.5 * e, gLoss: 1.25, seconds: steps, imagesPerSec: 1234.4, samplePath: `samples/epoch-00${e}.png` });
  }
}

describe('TrainingProgress on a non-TTY stream (CI logs)', () => {
  it('prints the first step, every N steps and one line per epoch, with ETA', () => {
    const out = new FakeStream(false);
    const clock = { t: 0 };
    const p = new TrainingProgress(out, { everySteps: 5, now: () => clock.t });
    run(p, clock);
    p.close();
    const lines = out.text.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toEqual([
      // first event: no rate yet
      'epoch 1/2 step 1/20 (5%) | D 1.0000 G 2.0100 | 64.0 img/s | ETA --:--',
      // 4 steps in the 4 s since the first -> 1 s/step, 35 steps left -> 35 s
      'epoch 1/2 step 5/20 (25%) | D 0.2000 G 2.0500 | 64.0 img/s | ETA 0:35',
      'epoch 1/2 step 10/20 (50%) | D 0.1000 G 2.1000 | 64.0 img/s | ETA 0:30',
      'epoch 1/2 step 15/20 (75%) | D 0.0667 G 2.1500 | 64.0 img/s | ETA 0:25',
      // step 20 is left to the epoch line
      'epoch 1/2 done in 20.0s | D 0.5000 G 1.2500 | 1234 img/s | ETA 0:20 | samples samples/epoch-001.png',
      'epoch 2/2 step 5/20 (25%) | D 0.2000 G 2.0500 | 64.0 img/s | ETA 0:15',
      'epoch 2/2 step 10/20 (50%) | D 0.1000 G 2.1000 | 64.0 img/s | ETA 0:10',
      'epoch 2/2 step 15/20 (75%) | D 0.0667 G 2.1500 | 64.0 img/s | ETA 0:05',
      'epoch 2/2 done in 20.0s | D 1.0000 G 1.2500 | 1234 img/s | samples samples/epoch-002.png',
    ]);
  });

  it('also prints when everySeconds have passed, and D(x)/D(G(z)) at verbose 2', () => {
    const out = new FakeStream(false);
    const clock = { t: 0 };
    const p = new TrainingProgress(out, { verbose: 2, everySteps: 1000, everySeconds: 7, now: () => clock.t });
    run(p, clock, 1, 20);
    const lines = out.text.trimEnd().split('\n');
    expect(lines.map((l) => /step (\d+)\//.exec(l)?.[1] ?? 'end')).toEqual(['1', '8', '15', 'end']);
    expect(lines[1]).toContain('| D(x) 0.750 D(G(z)) 0.250 |');
    expect(lines[3]).toBe('epoch 1/1 done in 20.0s | D 0.5000 G 1.2500 | 1234 img/s | samples samples/epoch-001.png');
  });

  it('prints nothing at verbose 0, on either kind of stream', () => {
    for (const tty of [false, true]) {
      const out = new FakeStream(tty);
      const clock = { t: 0 };
      const p = new TrainingProgress(out, { verbose: 0, now: () => clock.t });
      run(p, clock);
      p.log('checkpoint saved');
      p.close();
      expect(out.chunks).toEqual([]);
    }
  });

  it('writes log messages as lines', () => {
    const out = new FakeStream(false);
    const p = new TrainingProgress(out);
    p.log('checkpoint saved to runs/a/ckpt');
    expect(out.text).toBe('checkpoint saved to runs/a/ckpt\n');
  });
});

describe('TrainingProgress on a TTY stream', () => {
  it('draws a cli-progress bar with epoch, steps, ETA, losses and images/s, then an epoch line', () => {
    const out = new FakeStream(true);
    const clock = { t: 0 };
    const p = new TrainingProgress(out, { now: () => clock.t });
    clock.t = 1000;
    p.step({ epoch: 1, epochs: 3, step: 1, stepsPerEpoch: 10, dLoss: 0.6931, gLoss: 0.7, imagesPerSec: 500 });
    clock.t = 5000;
    p.step({ epoch: 1, epochs: 3, step: 5, stepsPerEpoch: 10, dLoss: 0.5, gLoss: 1.5, imagesPerSec: 512.3 });
    p.close(); // final render of the bar, then cleared (clearOnComplete)
    const shown = stripAnsi(out.text);
    expect(shown).toContain(`Epoch 1/3 ${'\u2588'.repeat(2)}${'\u2591'.repeat(18)} 1/10 | ETA --:-- | D 0.6931 G 0.7000 | 500 img/s`);
    // 4 steps in 4 s -> 25 steps left -> 25 s
    expect(shown).toContain(`Epoch 1/3 ${'\u2588'.repeat(10)}${'\u2591'.repeat(10)} 5/10 | ETA 0:25 | D 0.5000 G 1.5000 | 512 img/s`);
    expect(out.text).toContain('\x1b['); // cursor control: a live bar, not plain lines
    expect(shown).not.toContain('\n'); // nothing but the bar so far

    const out2 = new FakeStream(true);
    const p2 = new TrainingProgress(out2, { now: () => clock.t });
    p2.step({ epoch: 2, epochs: 3, step: 1, stepsPerEpoch: 10, dLoss: 0.4, gLoss: 1.1 });
    p2.log('checkpoint saved');
    p2.epochEnd({ epoch: 2, epochs: 3, dLoss: 0.45, gLoss: 1.2, seconds: 3.21 });
    p2.close();
    const shown2 = stripAnsi(out2.text);
    // the message stays on its own line and the bar is drawn again after it
    expect(shown2).toMatch(/checkpoint saved\nEpoch 2\/3 \u2588{2}/);
    expect(shown2.endsWith('epoch 2/3 done in 3.2s | D 0.4500 G 1.2000 | ETA --:--\n')).toBe(true);
  });

  it('truncates the bar to the terminal width', () => {
    const out = new FakeStream(true, 40);
    const p = new TrainingProgress(out, { now: () => 0 });
    p.step({ epoch: 1, epochs: 1, step: 1, stepsPerEpoch: 10, dLoss: 1, gLoss: 1 });
    p.close();
    // each frame starts by moving the cursor to column 1
    // eslint-disable-next-line no-control-regex
    const frames = out.text
      .split(/\x1b\[1G/)
      .map(stripAnsi)
      .filter(Boolean);
    expect(frames.length).toBeGreaterThan(0);
    for (const f of frames) expect(f.length).toBeLessThanOrEqual(39);
  });
});

describe('formatRunSummary', () => {
  it('returns an aligned table of the run', () => {
    const text = formatRunSummary({
      epochs: 25,
      steps: 23450,
      seconds: 754.2,
      imagesPerSec: 1990.4,
      finalDLoss: 0.51234,
      finalGLoss: 1.2,
      device: 'cuda:0',
      files: [
        ['Run folder', 'runs/mnist-1'],
        ['Report', 'runs/mnist-1/report.html'],
      ],
    });
    expect(text).toBe(
      [
        'Training finished',
        '  Epochs        25',
        '  Steps         23450',
        '  Time          12:34 (754.2 s)',
        '  Images/s      1990',
        '  Final D loss  0.5123',
        '  Final G loss  1.2000',
        '  Device        cuda:0',
        '  Files',
        '    Run folder  runs/mnist-1',
        '    Report      runs/mnist-1/report.html',
      ].join('\n'),
    );
  });

  it('leaves out what is not given and shows NaN losses as NaN', () => {
    expect(formatRunSummary({ epochs: 1, seconds: 3725, finalDLoss: NaN, files: { Samples: 's/' }, title: 'Done' })).toBe(
      ['Done', '  Epochs        1', '  Time          1:02:05 (3725.0 s)', '  Final D loss  NaN', '  Files', '    Samples     s/'].join('\n'),
    );
    expect(formatDuration(7)).toBe('0:07');
    expect(formatDuration(NaN)).toBe('--:--');
  });
});
