/** Errors of run configs: one issue per bad key, each naming the key path, what was expected and what was given. */

export interface ConfigIssue {
  /** Key path inside the config ([] for the whole config or the file). */
  path: (string | number)[];
  /** Self-contained message, e.g. 'config.batchSize: expected an integer >= 1, got 0'. */
  message: string;
}

/** A config that cannot be used. `message` lists every issue, one per line, prefixed by `source`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: ConfigIssue[];
  readonly source: string | undefined;

  constructor(issues: ConfigIssue[], source?: string) {
    super(issues.map((i) => (source ? `${source}: ${i.message}` : i.message)).join('\n'));
    this.issues = issues;
    this.source = source;
  }
}

/** 'config', 'config.batchSize', 'config.betas[1]', 'config.data.root'. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : `${acc}.${String(k)}`), 'config');
}

/** Short rendering of an offending value: 0, "abc", null, [0.5], an object, NaN. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let s: string | undefined;
    try {
      s = JSON.stringify(value);
    } catch {
      s = undefined;
    }
    return s !== undefined && s.length <= 40 ? s : `an array of ${value.length} items`;
  }
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
