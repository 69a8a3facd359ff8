import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Message } from 'esbuild';
import { canonicalBundlePath, canonicalizeBundle, classifyWarnings, declaredModuleFormat, shiftGeneratedColumns } from './node-bundle';
import { describeStack } from './start-check';

const root = mkdtempSync(join(tmpdir(), 'nb-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('declaredModuleFormat', () => {
  it('follows the entry extension, then the nearest package.json type, like Node', () => {
    const w = (p: string, t: string) => {
      mkdirSync(join(root, p, '..'), { recursive: true });
      writeFileSync(join(root, p), t);
    };
    w('package.json', JSON.stringify({ name: 'ws', type: 'module' }));
    w('apps/a/package.json', JSON.stringify({ name: 'a' }));
    w('apps/b/package.json', JSON.stringify({ name: 'b', type: 'module' }));
    expect(declaredModuleFormat(join(root, 'apps/a/src/main.ts'), root)).toBe('cjs');
    expect(declaredModuleFormat(join(root, 'apps/a/src/main.mts'), root)).toBe('esm');
    expect(declaredModuleFormat(join(root, 'apps/b/src/main.ts'), root)).toBe('esm');
    expect(declaredModuleFormat(join(root, 'apps/b/src/main.cts'), root)).toBe('cjs');
    // no package.json of its own: the workspace root's
    expect(declaredModuleFormat(join(root, 'apps/c/src/main.js'), root)).toBe('esm');
  });
});

describe('canonical bundle paths', () => {
  it('spells pnpm store paths and node_modules outside the workspace like npm', () => {
    const cases: Array<[string, string]> = [
      ['node_modules/express/index.js', 'node_modules/express/index.js'],
      ['node_modules/.pnpm/express@5.1.0/node_modules/express/index.js', 'node_modules/express/index.js'],
      ['node_modules/.pnpm/@types+x@1.0.0_peer@2/node_modules/@types/x/i.js', 'node_modules/@types/x/i.js'],
      ['node_modules/a/node_modules/b/i.js', 'node_modules/a/node_modules/b/i.js'],
      ['../../../outside/node_modules/qs/lib/index.js', 'node_modules/qs/lib/index.js'],
      ['../../../outside/node_modules/.pnpm/qs@6/node_modules/qs/lib/index.js', 'node_modules/qs/lib/index.js'],
      ['packages/util/src/index.ts', 'packages/util/src/index.ts'],
    ];
    for (const [from, to] of cases) expect(canonicalBundlePath(from), from).toBe(to);
  });

  it('rewrites the bundle text and keeps source map columns on the rewritten lines', () => {
    const long = 'node_modules/.pnpm/dep@1.0.0/node_modules/dep/index.js';
    const code = `var a = 1;\n  "${long}"(exports) { x(); y(); }\n`;
    const colX = code.split('\n')[1]!.indexOf('x()');
    const colY = code.split('\n')[1]!.indexOf('y()');
    expect(colX).toBeGreaterThan(15);
    const map = JSON.stringify({ version: 3, sources: ['../../../' + long], mappings: '' });
    const out = canonicalizeBundle([long], code, map, '/ws', '/ws/dist/apps/x');
    const line = out.code.split('\n')[1]!;
    expect(line).toContain('"node_modules/dep/index.js"');
    expect(JSON.parse(out.map!).sources).toEqual(['../../../node_modules/dep/index.js']);
    // a real mapping: the generated columns of x and y move left by exactly the shortening
    const delta = long.length - 'node_modules/dep/index.js'.length;
    const vlq = (n: number): string => {
      let x = n < 0 ? (-n << 1) | 1 : n << 1;
      let s = '';
      do {
        let d = x & 31;
        x >>>= 5;
        if (x > 0) d |= 32;
        s += 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'[d];
      } while (x > 0);
      return s;
    };
    const before = `AAAA;${vlq(colX)}AACA,${vlq(colY - colX)}AAAA`;
    const after = canonicalizeBundle([long], code, JSON.stringify({ version: 3, sources: [], mappings: before }), '/ws', '/ws/dist/apps/x');
    expect(JSON.parse(after.map!).mappings).toBe(`AAAA;${vlq(colX - delta)}AACA,${vlq(colY - colX)}AAAA`);
    expect(line.indexOf('x()')).toBe(colX - delta);
  });
});

describe('warnings and start-check lines', () => {
  it('fails on warnings that mean run-time breakage, logs the rest', () => {
    const msg = (id: string): Message => ({ id, pluginName: '', text: id, location: null, notes: [], detail: undefined });
    const { breaking, other } = classifyWarnings([msg('empty-import-meta'), msg('duplicate-object-key'), msg('import-is-undefined')]);
    expect(breaking.map((m) => m.id)).toEqual(['empty-import-meta', 'import-is-undefined']);
    expect(other.map((m) => m.id)).toEqual(['duplicate-object-key']);
  });

  it('names the error and its first own frame relative to the workspace', () => {
    const stack = ['Error: boom', '    at Object.<anonymous> (/ws/apps/api/src/main.ts:3:9)', '    at node:internal/modules/cjs/loader:1:1'].join('\n');
    expect(describeStack(stack, '/ws')).toBe('Error: boom at apps/api/src/main.ts:3:9');
    expect(describeStack('TypeError: x is not a function\n    at file:///ws/dist/apps/api/main.js:1:20', '/ws')).toBe(
      'TypeError: x is not a function at dist/apps/api/main.js:1:20',
    );
    expect(describeStack('just a string', '/ws')).toBe('just a string');
  });
});
