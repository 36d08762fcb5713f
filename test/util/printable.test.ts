import { printable } from '../../ts/util/printable';

describe('printable: user-controlled names for a terminal', () => {
  it('control characters become visible escapes; everything else is unchanged', () => {
    expect(printable('runs/run-1')).toBe('runs/run-1');
    expect(printable('chats, 猫 and ünïcödé 🐈')).toBe('chats, 猫 and ünïcödé 🐈');
    expect(printable('a\x1b[31mred\x1b[0m')).toBe('a\\x1b[31mred\\x1b[0m');
    expect(printable('line\nfake: ok\r\tx')).toBe('line\\nfake: ok\\r\\tx');
    expect(printable('\x00\x07\x7f\x9b')).toBe('\\x00\\x07\\x7f\\x9b');
    // bidirectional overrides and isolates reorder what is shown; line separators break lines
    expect(printable('abc\u202egnp.exe\u2066\u2028')).toBe('abc\\u202egnp.exe\\u2066\\u2028');
    // a lone surrogate (a name that is not valid UTF-16)
    expect(printable('x\ud800y')).toBe('x\\ud800y');
  });
});
