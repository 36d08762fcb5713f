/** The package's own folder and version (package.json beside lib/, or beside ts/ when run from source). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const packageRoot = path.resolve(__dirname, '..', '..');

/** package.json of the package at `root` (default: this one), parsed; throws naming the file when it cannot be read. */
export function readPackageJson(root = packageRoot): Record<string, unknown> & { version?: string; libtorch?: { version?: unknown } } {
  const file = path.join(root, 'package.json');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
}

let version: string | undefined;

/** The version in the package's package.json ('unknown' when it cannot be read). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      version = String(readPackageJson().version);
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
