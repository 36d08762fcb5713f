/** The CPU's feature flags and vendor as Linux reports them (/proc/cpuinfo); empty where it cannot be read. */
import * as fs from 'node:fs';

let info: { flags: ReadonlySet<string>; vendor: string } | undefined;

function read(): { flags: ReadonlySet<string>; vendor: string } {
  if (!info) {
    let text = '';
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      // not Linux: nothing known
    }
    info = {
      flags: new Set(/^flags\s*:\s*(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? []),
      vendor: /^vendor_id\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? '',
    };
  }
  return info;
}

export function cpuFlags(): ReadonlySet<string> {
  return read().flags;
}

/** 'GenuineIntel', 'AuthenticAMD', ... ('' where unknown). */
export function cpuVendor(): string {
  return read().vendor;
}
