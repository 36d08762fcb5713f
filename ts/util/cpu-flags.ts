/** The CPU's feature flags as Linux reports them (/proc/cpuinfo); empty where it cannot be read. */
import * as fs from 'node:fs';

let flags: ReadonlySet<string> | undefined;

export function cpuFlags(): ReadonlySet<string> {
  if (!flags) {
    let text = '';
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      // not Linux: nothing known
    }
    flags = new Set(/^flags\s*:\s*(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? []);
  }
  return flags;
}
