/** Errors of run configs: one issue per bad key, each naming the key path, what was expected and what was given. */
import { describeValue } from '../util/describe';

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

// The one rendering of a value in error messages (ts/util/describe.ts), re-exported where configs always had it.
export { describeValue } from '../util/describe';

/** A key path as in JavaScript: 'interrupted', 'config.preset.generator.children[0]', 'files["rng.safetensors"].bytes'. */
export function keyPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, k) => {
    if (typeof k === 'number') return `${acc}[${k}]`;
    const s = String(k);
    if (!/^[A-Za-z_$][\w$]*$/.test(s)) return `${acc}[${JSON.stringify(s)}]`;
    return acc ? `${acc}.${s}` : s;
  }, '');
}

/** The value at `path` in `input`, and whether it is there (own keys only). */
export function valueAt(input: unknown, path: readonly PropertyKey[]): { present: boolean; value: unknown } {
  let cur: unknown = input;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return { present: false, value: undefined };
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return { present: true, value: cur };
}

/**
 * Schema issues (each message the expected form, see config.ts) in the house style: key path,
 * expected form, the value got; a missing key says so. `top` names the whole input ('the file').
 */
export function describeIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string; code?: string; keys?: string[] }[],
  input: unknown,
  top: string,
): string[] {
  return issues.flatMap((issue) => {
    const p = issue.path;
    if (issue.code === 'unrecognized_keys') return (issue.keys ?? []).map((k) => `${keyPath(p) || top}: unknown key ${JSON.stringify(k)}`);
    const { present, value } = valueAt(input, p);
    if (!present && p.length > 0) {
      return [`${keyPath(p.slice(0, -1)) || top}: missing required key ${JSON.stringify(String(p[p.length - 1]))} (expected ${issue.message})`];
    }
    return [`${keyPath(p) || top}: expected ${issue.message}, got ${describeValue(value)}`];
  });
}
