/** The package's own folder and version (package.json beside lib/, or beside ts/ when run from source). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const packageRoot = path.resolve(__dirname, '..', '..');

let version: string | undefined;

/** The version in the package's package.json ('unknown' when it cannot be read). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
