/**
 * The one escaping of user-controlled names (class folders, file names, paths) for a terminal: a file
 * name may hold any byte but '/' and NUL, so printed raw it could move the cursor, recolour or clear the
 * screen (ESC sequences), fake a line of output (a newline) or reorder what is shown (bidirectional
 * overrides). Only the text shown is escaped; the names themselves (dataset classes, paths) stay as they are.
 */

// C0 and C1 controls and DEL; the invisible bidirectional marks, embeddings, overrides and isolates;
// the line and paragraph separators; lone UTF-16 surrogates (a file name that is not UTF-8)
const UNSAFE = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]|\p{Cs}/gu;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `s` with every character that could act on a terminal written as a visible escape: `\n`, `\r`, `\t`,
 * `\xHH` below U+0100 (ESC is `\x1b`), `\uHHHH` above. Text without such characters comes back unchanged.
 */
export function printable(s: string): string {
  return s.replace(UNSAFE, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
