import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isTempFile, writeFileAtomic, writeFileAtomicAsync, writeTempFile } from '../../ts/util/fs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-fs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the one atomic write (util/fs.ts)', () => {
  it('writeFileAtomic creates the folders, replaces the file and leaves no temporary file', () => {
    const p = path.join(tmp, 'sync', 'a', 'f.bin');
    writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    writeFileAtomic(p, [new Uint8Array([4, 5]), new Uint8Array([6])]);
    expect(Array.from(fs.readFileSync(p))).toEqual([4, 5, 6]);
    writeFileAtomic(p, 'text');
    expect(fs.readFileSync(p, 'utf8')).toBe('text');
    expect(fs.readdirSync(path.dirname(p))).toEqual(['f.bin']);
  });

  it('writeFileAtomicAsync does the same without blocking', async () => {
    const p = path.join(tmp, 'async', 'f.bin');
    await writeFileAtomicAsync(p, new Uint8Array([1, 2, 3]));
    await writeFileAtomicAsync(p, [new Uint8Array([4]), new Uint8Array([5])]);
    expect(Array.from(fs.readFileSync(p))).toEqual([4, 5]);
    expect(fs.readdirSync(path.dirname(p))).toEqual(['f.bin']);
  });

  it('a failed rename (the target is a folder) keeps the target and removes the temporary file', async () => {
    const dir = path.join(tmp, 'fail');
    const target = path.join(dir, 'is-a-dir');
    fs.mkdirSync(target, { recursive: true });
    expect(() => writeFileAtomic(target, 'x')).toThrow(/EISDIR|EEXIST|ENOTEMPTY|EPERM/);
    await expect(writeFileAtomicAsync(target, 'x')).rejects.toThrow(/EISDIR|EEXIST|ENOTEMPTY|EPERM/);
    expect(fs.readdirSync(dir)).toEqual(['is-a-dir']);
    expect(fs.statSync(target).isDirectory()).toBe(true);
  });

  it('temporary files are named so that they can be recognized (and cleaned up) later', () => {
    const target = path.join(tmp, 'named', 'weights.safetensors');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const t = writeTempFile(target, 'abc');
    expect(path.dirname(t)).toBe(path.dirname(target));
    expect(isTempFile(path.basename(t), 'weights.safetensors')).toBe(true);
    expect(isTempFile(path.basename(t), 'other')).toBe(false);
    expect(isTempFile('weights.safetensors')).toBe(false);
    expect(fs.readFileSync(t, 'utf8')).toBe('abc');
  });
});
