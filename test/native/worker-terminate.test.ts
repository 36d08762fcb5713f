/**
 * worker.terminate() while a Worker runs tensor ops (ops that succeed, ops that throw, tensors handed
 * back to JS): the Worker ends, the process lives on. A native call that an ending Worker cannot take
 * an exception from must not abort the whole process.
 */
import { spawnSync } from 'node:child_process';
import { builtLib } from '../helpers/lib';

const lib = builtLib();

const child = `
const { Worker } = require('node:worker_threads');
const code = ${JSON.stringify(`
const { torch } = require(${JSON.stringify(lib)});
const { parentPort } = require('node:worker_threads');
parentPort.postMessage('running');
let a = torch.randn([32, 32]);
for (;;) {
  a = torch.tanh(a.matmul(a)).add(1);
  a.sum().item();
  torch.tensor(Float32Array.from([1, 2, 3]), [3]).mul(2).toTypedArray();
  try { torch.randn([3, 4]).matmul(torch.randn([5, 6])); } catch (e) {}
  try { torch.randn([2]).reshape([7]); } catch (e) {}
}
`)};
(async () => {
  for (let i = 0; i < 10; i++) {
    const w = new Worker(code, { eval: true });
    await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await new Promise((r) => setTimeout(r, 200));
    await w.terminate();
  }
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('a Worker terminated mid-op', () => {
  it('ends cleanly, ten times over: the process prints ok and exits 0', () => {
    const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', timeout: 120_000 });
    expect({ code: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(r.stdout.trim()).toBe('ok');
  }, 150_000);
});
