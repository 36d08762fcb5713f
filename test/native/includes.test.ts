/**
 * native/ has no include cycles (issue 24, item 3). A file pair (foo.h and foo.cc) is one unit: foo
 * depends on bar when either of its files includes "bar.h". A cycle of such units (gan_step.h including
 * fast_path.h while fast_path.cc includes gan_step.h, say) compiles, but neither side can be read, built or
 * changed without the other; the lower one should get what it needs from a smaller header or an
 * interface instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const nativeDir = path.join(__dirname, '..', '..', 'native');

/** An edge of the unit graph and the include line that makes it. */
interface Include {
  from: string; // unit (file name without extension)
  to: string;
  file: string; // the including file
  header: string; // the included header
}

const unitOf = (file: string) => file.replace(/\.(h|cc)$/, '');

/** The quoted includes of each file, as { file: [header, ...] }. */
function quotedIncludes(files: Record<string, string>): Include[] {
  const out: Include[] = [];
  for (const [file, src] of Object.entries(files)) {
    for (const m of src.matchAll(/^[ \t]*#[ \t]*include[ \t]*"([^"]+)"/gm)) {
      const header = m[1];
      const from = unitOf(file);
      const to = unitOf(header);
      if (from !== to) out.push({ from, to, file, header });
    }
  }
  return out;
}

/**
 * One cycle per strongly connected set of units (Tarjan), each as the include lines that close it,
 * in order: a -> b -> ... -> a.
 */
function includeCycles(includes: Include[]): Include[][] {
  const edges = new Map<string, Include[]>();
  for (const e of includes) {
    if (!edges.has(e.from)) edges.set(e.from, []);
    if (!edges.has(e.to)) edges.set(e.to, []);
    edges.get(e.from)?.push(e);
  }
  const units = [...edges.keys()].sort();
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const visit = (u: string) => {
    index.set(u, next);
    low.set(u, next);
    next++;
    stack.push(u);
    onStack.add(u);
    for (const e of edges.get(u) ?? []) {
      if (!index.has(e.to)) {
        visit(e.to);
        low.set(u, Math.min(low.get(u) as number, low.get(e.to) as number));
      } else if (onStack.has(e.to)) {
        low.set(u, Math.min(low.get(u) as number, index.get(e.to) as number));
      }
    }
    if (low.get(u) === index.get(u)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        comp.push(w);
      } while (w !== u);
      if (comp.length > 1) components.push(comp.sort());
    }
  };
  for (const u of units) if (!index.has(u)) visit(u);
  // Within a component every unit reaches every other: walk from its first unit back to it (BFS over
  // the component's edges gives the shortest such cycle through that unit).
  return components.map((comp) => {
    const inComp = new Set(comp);
    const start = comp[0];
    const via = new Map<string, Include>();
    const queue = [start];
    let closing: Include | undefined;
    while (queue.length > 0 && !closing) {
      const u = queue.shift() as string;
      for (const e of edges.get(u) ?? []) {
        if (!inComp.has(e.to)) continue;
        if (e.to === start) {
          closing = e;
          break;
        }
        if (!via.has(e.to)) {
          via.set(e.to, e);
          queue.push(e.to);
        }
      }
    }
    const cycle: Include[] = [];
    for (let e = closing; e; e = e.from === start ? undefined : via.get(e.from)) cycle.unshift(e);
    return cycle;
  });
}

/** "a -> b -> a (native/a.h includes b.h; native/b.cc includes a.h)" */
function describeCycle(cycle: Include[]): string {
  const units = [...cycle.map((e) => e.from), cycle[0].from].join(' -> ');
  return `${units} (${cycle.map((e) => `native/${e.file} includes ${e.header}`).join('; ')})`;
}

function nativeSources(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const f of fs.readdirSync(nativeDir).sort()) {
    if (/\.(h|cc)$/.test(f)) files[f] = fs.readFileSync(path.join(nativeDir, f), 'utf8');
  }
  return files;
}

describe('native/ include graph', () => {
  it('has no cycle among its file pairs', () => {
    const cycles = includeCycles(quotedIncludes(nativeSources())).map(describeCycle);
    expect(cycles).toEqual([]);
  });

  it('includes only headers that exist in native/ with quotes (LibTorch and N-API with <...>)', () => {
    const files = nativeSources();
    const missing = quotedIncludes(files)
      .filter((e) => !(e.header in files))
      .map((e) => `native/${e.file} includes "${e.header}"`);
    expect(missing).toEqual([]);
  });

  it('finds and names a cycle (the check itself)', () => {
    const includes = quotedIncludes({
      'a.h': '#include <vector>\n#include "b.h"\n',
      'a.cc': '#include "a.h"\n',
      'b.h': '#pragma once\n',
      'b.cc': '#include "b.h"\n  #include "c.h"\n',
      'c.h': '#include "a.h"\n',
      'd.cc': '#include "a.h"\n// #include "d.h" in a comment is not an include\n',
    });
    expect(includeCycles(includes).map(describeCycle)).toEqual([
      'a -> b -> c -> a (native/a.h includes b.h; native/b.cc includes c.h; native/c.h includes a.h)',
    ]);
    expect(includeCycles(quotedIncludes({ 'a.h': '#include "b.h"\n', 'b.cc': '#include "c.h"\n' }))).toEqual([]);
  });
});
