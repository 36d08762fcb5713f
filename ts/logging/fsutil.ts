import * as fs from 'node:fs';
import * as path from 'node:path';

let tmpCounter = 0;

/**
 * Writes `data` to `file` atomically: the bytes go to a temporary file in the same folder, which is
 * then renamed over `file` (a reader sees either the old file or the complete new one, never a
 * partial write). Missing parent folders are created.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${++tmpCounter}.tmp`);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // the temporary file was never created or is already gone
    }
    throw err;
  }
}
