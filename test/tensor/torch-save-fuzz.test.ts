/**
 * The torch.save reader under attack: thousands of damaged copies of real torch.save files (truncated,
 * bits flipped, zip size and offset fields edited, pickles spliced and rewritten, storage records cut or
 * grown, records deflated and then damaged), made from a fixed seed so that a failure is reproducible
 * (LTG_FUZZ_SEED picks another). Each case must either load or throw a JS Error: never crash, hang or
 * try to allocate more than it holds. The cases run in a child process whose data segment is limited
 * (ulimit -d), so that a memory blow-up fails the test instead of the machine.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import * as torch from '../../ts/tensor/torch';
import { saveBytes } from '../../ts/tensor/torch-save';
import { builtLib } from '../helpers/lib';
import { findPython, runPython } from '../helpers/python';

const SEED = Number(process.env.LTG_FUZZ_SEED ?? 20260601);
const CASES = 6000;
const DATA_LIMIT_KB = 2 * 1024 * 1024; // the child's data segment (node + LibTorch take about 0.65 GB of it)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-fuzz-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true })); // the cases take some 12 MB

/** mulberry32: a small seeded generator, the same sequence everywhere. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] };
}
type Rng = ReturnType<typeof rng>;

interface ZipRecord {
  name: string;
  method: number;
  data: Uint8Array; // what the file holds: the bytes, or the deflate stream
  size: number; // uncompressed
}
interface Zip {
  records: ZipRecord[];
  fields: { at: number; width: 2 | 4 | 8 }[]; // every size, count and offset field of the zip's structure
  pickle?: { at: number; length: number }; // data.pkl's bytes in the file, when stored
}

/** An independent reading of a (valid) zip, zip64 included: its records and where its fields lie. */
function readZip(b: Uint8Array): Zip {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number) => Number(dv.getBigUint64(o, true));
  let end = b.length - 22;
  while (u32(end) !== 0x06054b50) end--;
  const fields: Zip['fields'] = [8, 10, 12, 16].map((o) => ({ at: end + o, width: (o < 12 ? 2 : 4) as 2 | 4 }));
  let count = u16(end + 10);
  let cd = u32(end + 16);
  if (end >= 20 && u32(end - 20) === 0x07064b50) {
    const at = u64(end - 12);
    fields.push({ at: end - 12, width: 8 }, ...[24, 32, 40, 48].map((o) => ({ at: at + o, width: 8 as const })));
    count = u64(at + 32);
    cd = u64(at + 48);
  }
  const records: ZipRecord[] = [];
  let pickle: Zip['pickle'];
  for (let i = 0; i < count; i++) {
    const nameLen = u16(cd + 28);
    const extraLen = u16(cd + 30);
    const name = Buffer.from(b.subarray(cd + 46, cd + 46 + nameLen)).toString();
    let comp = u32(cd + 20);
    let size = u32(cd + 24);
    let local = u32(cd + 42);
    fields.push(...[20, 24, 28, 30, 42].map((o) => ({ at: cd + o, width: (o === 28 || o === 30 ? 2 : 4) as 2 | 4 })));
    for (let x = cd + 46 + nameLen; x < cd + 46 + nameLen + extraLen; x += 4 + u16(x + 2)) {
      if (u16(x) !== 1) continue;
      let f = x + 4;
      const wide = (v: number) => {
        if (v !== 0xffffffff) return v;
        fields.push({ at: f, width: 8 });
        f += 8;
        return u64(f - 8);
      };
      size = wide(size);
      comp = wide(comp);
      local = wide(local);
    }
    fields.push({ at: local + 26, width: 2 }, { at: local + 28, width: 2 });
    const start = local + 30 + u16(local + 26) + u16(local + 28);
    const method = u16(cd + 10);
    records.push({ name, method, data: b.subarray(start, start + comp), size });
    if (name.endsWith('/data.pkl') && method === 0) pickle = { at: start, length: comp };
    cd += 46 + nameLen + extraLen + u16(cd + 32);
  }
  return { records, fields, pickle };
}

/** A zip of `records` (32-bit fields; CRCs left 0, which neither LibTorch's reader nor ours checks). */
function writeZip(records: ZipRecord[]): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const r of records) {
    const name = Buffer.from(r.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(r.method, 8);
    local.writeUInt32LE(r.data.length, 18);
    local.writeUInt32LE(r.size, 22);
    local.writeUInt16LE(name.length, 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(r.method, 10);
    c.writeUInt32LE(r.data.length, 20);
    c.writeUInt32LE(r.size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(at, 42);
    parts.push(local, name, Buffer.from(r.data));
    central.push(c, name);
    at += 30 + name.length + r.data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(records.length, 8);
  end.writeUInt16LE(records.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(at, 16);
  return Buffer.concat([...parts, cd, end]);
}

const PICKLE_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, ...Buffer.from('()]}aestRbhqQNKJMX.cu'), 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x94, 0x95];

function flip(b: Uint8Array, r: Rng, from: number, length: number, bits: number): string {
  const at: number[] = [];
  for (let i = 0; i < bits; i++) {
    const p = from + r.int(length);
    b[p] ^= 1 << r.int(8);
    at.push(p);
  }
  return at.join(',');
}

function setField(b: Uint8Array, f: { at: number; width: number }, r: Rng): string {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const max = 2 ** (8 * Math.min(f.width, 6)) - 1;
  const old = f.width === 2 ? dv.getUint16(f.at, true) : f.width === 4 ? dv.getUint32(f.at, true) : Number(dv.getBigUint64(f.at, true));
  const v = Math.min(max, Math.max(0, r.pick([0, 1, old - 1, old + 1, old * 2, old + 64, old >> 1, max, 2 ** 31, r.int(2 ** 32)])));
  if (f.width === 2) dv.setUint16(f.at, v & 0xffff, true);
  else if (f.width === 4) dv.setUint32(f.at, v >>> 0, true);
  else dv.setBigUint64(f.at, r.next() < 0.2 ? 0xffffffffffffffffn : BigInt(v), true);
  return `field@${f.at}:${old}->${v}`;
}

/** One damaged copy of `base` and what was done to it. */
function mutate(base: Uint8Array, zip: Zip, r: Rng): { bytes: Uint8Array; what: string } {
  let b: Uint8Array = Uint8Array.from(base);
  let z = zip;
  let what = '';
  // some cases first rewrite the archive (a damaged pickle or record in an otherwise valid zip, or deflated records)
  const rewrite = r.int(10);
  if (rewrite < 3) {
    const records = z.records.map((x) => ({ ...x }));
    const p = records.find((x) => x.name.endsWith('/data.pkl') && x.method === 0);
    if (p) {
      const pk = Buffer.from(p.data);
      const i = r.int(pk.length);
      const j = Math.min(pk.length, i + 1 + r.int(40));
      const op = r.int(4);
      const next =
        op === 0
          ? Buffer.concat([pk.subarray(0, j), pk.subarray(i, j), pk.subarray(j)]) // duplicate a slice
          : op === 1
            ? Buffer.concat([pk.subarray(0, i), pk.subarray(j)]) // delete one
            : op === 2
              ? Buffer.concat([pk.subarray(0, i), Buffer.from(Array.from({ length: 1 + r.int(8) }, () => r.pick(PICKLE_BYTES))), pk.subarray(i)]) // insert opcodes
              : Buffer.concat([pk.subarray(0, i), Buffer.alloc(j - i, r.pick(PICKLE_BYTES)), pk.subarray(j)]); // overwrite
      p.data = next;
      p.size = next.length;
      what += `pickle op${op} ${i}-${j}; `;
    }
    b = writeZip(records);
    z = readZip(b);
  } else if (rewrite < 5) {
    const records = z.records.map((x) => ({ ...x }));
    const data = records.filter((x) => /\/data\/\d+$/.test(x.name) && x.method === 0);
    if (data.length) {
      const d = r.pick(data);
      const n = r.pick([0, 1, d.data.length - 1, d.data.length + 1, d.data.length >> 1, d.data.length * 2]);
      d.data = n <= d.data.length ? d.data.subarray(0, Math.max(0, n)) : Buffer.concat([d.data, Buffer.alloc(n - d.data.length)]);
      d.size = d.data.length;
      what += `${d.name} to ${d.size} bytes; `;
    }
    b = writeZip(records);
    z = readZip(b);
  } else if (rewrite < 6) {
    const records = z.records.map((x) => (x.method === 0 ? { ...x, method: 8, data: deflateRawSync(x.data) } : x));
    b = writeZip(records);
    z = readZip(b);
    what += 'deflated; ';
  }
  // then damage the bytes (the rewritten pickles sometimes go as they are)
  const damage = rewrite < 3 && r.next() < 0.5 ? -1 : r.int(5);
  if (damage === 0) {
    const n = r.int(b.length);
    b = b.subarray(0, n);
    what += `truncated to ${n}`;
  } else if (damage === 1) what += `bits ${flip(b, r, 0, b.length, 1 + r.int(4))}`;
  else if (damage === 2 && z.pickle) what += `pickle bits ${flip(b, r, z.pickle.at, z.pickle.length, 1 + r.int(3))}`;
  else if (damage === 3 && z.pickle) {
    const at = z.pickle.at + r.int(z.pickle.length);
    b[at] = r.pick(PICKLE_BYTES);
    what += `pickle byte ${at} = ${b[at]}`;
  } else if (damage >= 2) what += setField(b, r.pick(z.fields), r);
  return { bytes: b, what };
}

// loads every case of the file, reporting each before it runs (the last one named is the culprit of a crash)
const CHILD = `
const { loadBytes } = require(process.argv[2]);
const fs = require('node:fs');
const buf = fs.readFileSync(process.argv[3]);
const alloc = /bad_alloc|can't allocate|out of memory|Cannot allocate|allocation failed/i;
let loaded = 0, refused = 0;
const failures = [];
// the baseline: node with LibTorch loaded (the first load loads the addon); then the case that grew RSS most
try { loadBytes(new Uint8Array(4), 'warm-up'); } catch {}
const baseRSS = process.resourceUsage().maxRSS;
let peak = { rss: 0, caseIndex: -1 };
for (let off = 0, i = 0; off < buf.length; i++) {
  const n = buf.readUInt32LE(off);
  const bytes = buf.subarray(off + 4, off + 4 + n);
  off += 4 + n;
  fs.writeSync(1, 'case ' + i + '\\n');
  try {
    const sd = loadBytes(bytes, 'case ' + i);
    for (const t of Object.values(sd)) {
      t.toTypedArray(); // every element the view reaches
      t.dispose();
    }
    loaded++;
  } catch (e) {
    if (!(e instanceof Error)) failures.push('case ' + i + ' threw a non-Error: ' + String(e));
    else if (alloc.test(e.message)) failures.push('case ' + i + ' ran out of memory: ' + e.message);
    else refused++;
  }
  const rss = process.memoryUsage().rss;
  if (rss > peak.rss) peak = { rss, caseIndex: i };
}
fs.writeSync(1, JSON.stringify({ loaded, refused, failures, maxRSS: process.resourceUsage().maxRSS, baseRSS, peak }) + '\\n');
`;

// real torch.save files: PyTorch's (an OrderedDict state_dict with _metadata; views and shared storages;
// int64, half and bool tensors) when there is a Python with torch, and always the addon's own
const PY_CORPUS = `
import sys, torch, torch.nn as nn
torch.manual_seed(0)
m = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 2))
torch.save(m.state_dict(), sys.argv[1] + '/module.pth')
w = torch.randn(4, 6)
torch.save({'w': w, 't': w.t(), 's': w[1:3, ::2], 'n': torch.arange(5), 'h': torch.randn(3).half(), 'b': torch.tensor([True, False])}, sys.argv[1] + '/views.pth')
`;

test(`${CASES} damaged torch.save files (seed ${SEED}) each load or throw a JS Error, under a memory limit`, () => {
  const corpus: Uint8Array[] = [];
  const py = findPython(['torch']);
  if (py) {
    runPython(py, ['-c', PY_CORPUS, dir]);
    corpus.push(fs.readFileSync(path.join(dir, 'module.pth')), fs.readFileSync(path.join(dir, 'views.pth')));
  }
  torch.scope(() => {
    corpus.push(saveBytes({ w: torch.randn([3, 4]), b: torch.zeros([4]), n: torch.tensor(new Float32Array([1, 2, 3]), [3]).long() }));
  });
  const zips = corpus.map(readZip);
  const r = rng(SEED);
  const parts: Buffer[] = [];
  const whats: string[] = [];
  for (let i = 0; i < CASES; i++) {
    const k = r.int(corpus.length);
    const { bytes, what } = mutate(corpus[k], zips[k], r);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(bytes.length);
    parts.push(len, Buffer.from(bytes));
    whats.push(`corpus ${k}: ${what}`);
  }
  const cases = path.join(dir, 'cases.bin');
  fs.writeFileSync(cases, Buffer.concat(parts));
  const child = path.join(dir, 'child.js');
  fs.writeFileSync(child, CHILD);
  const started = Date.now();
  const run = spawnSync(
    'sh',
    ['-c', `ulimit -d ${DATA_LIMIT_KB} && exec "$@"`, 'sh', process.execPath, child, builtLib(path.join('lib', 'tensor', 'torch-save.js')), cases],
    {
      encoding: 'utf8',
      timeout: 100_000,
      maxBuffer: 1 << 26,
    },
  );
  const lines = run.stdout.trim().split('\n');
  const last = lines.at(-1) ?? '';
  if (run.status !== 0 || !last.startsWith('{')) {
    const i = Number(/case (\d+)/.exec(last)?.[1]);
    throw new Error(
      `the child ${run.signal ? `was killed by ${run.signal}` : `exited with ${run.status}`} after ${Date.now() - started} ms at ${last} (${whats[i] ?? '?'}), seed ${SEED}:\n${run.stderr.slice(-2000)}`,
    );
  }
  const summary = JSON.parse(last) as {
    loaded: number;
    refused: number;
    failures: string[];
    maxRSS: number;
    baseRSS: number;
    peak: { rss: number; caseIndex: number };
  };
  expect(summary.failures.map((f) => `${f} (${whats[Number(/case (\d+)/.exec(f)?.[1])]})`)).toEqual([]);
  expect(summary.loaded + summary.refused).toBe(CASES);
  expect(summary.loaded).toBeGreaterThan(CASES / 100); // damage that leaves a loadable file (tensor data, unused fields)
  expect(summary.refused).toBeGreaterThan(CASES / 2);
  // KiB over node + LibTorch's own (about 0.4 GB): no case took a gigabyte; the message names the case
  // after which RSS was highest, with its damage, to reproduce it
  const grownKiB = summary.maxRSS - summary.baseRSS;
  const peakCase = `case ${summary.peak.caseIndex} (${whats[summary.peak.caseIndex] ?? '?'})`;
  if (grownKiB >= 1024 * 1024) throw new Error(`RSS grew ${grownKiB} KiB over the baseline, highest after ${peakCase}, seed ${SEED}`);
  expect(summary.baseRSS).toBeGreaterThan(0);
}, 120_000);
