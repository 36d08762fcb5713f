/**
 * The one rendering of an offending value in error messages (options, configs, run files, arguments),
 * the TypeScript side of js_args' describe(): short, and never the whole of a large value.
 */

/** 0, "abc", null, undefined, 5n, [0.5], an object, a Tensor, a Float32Array, a function (f), NaN. */
export function describeValue(value: unknown): string {
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  // JSON: quotes, and escapes a control character or a quote that would misprint the message
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (Array.isArray(value)) {
    let s: string | undefined;
    try {
      s = JSON.stringify(value);
    } catch {
      s = undefined; // cyclic, or holding BigInts
    }
    return s !== undefined && s.length <= 40 ? s : `an array of ${value.length} items`;
  }
  if (isPlainObject(value)) return 'an object';
  const name = (value as object).constructor?.name;
  return name ? `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}` : 'an object';
}

/** An object literal (or Object.create(null)), from any realm (a jest sandbox's too), not an instance of a class. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}
