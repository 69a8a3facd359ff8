import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Message, Plugin } from 'esbuild';

/** Module format of a Node bundle: what `node main.js` loads (`type` of the shipped package.json). */
export type ModuleFormat = 'esm' | 'cjs';

/**
 * The module format an app declares, as Node decides it for its entry (Node docs "Modules: Packages",
 * "Determining module system"): `.mts`/`.mjs` entries are ESM, `.cts`/`.cjs` CommonJS; otherwise the `type`
 * field of the nearest package.json above the entry (searched up to the workspace root): `"module"` → ESM,
 * anything else → CommonJS.
 * @param main absolute path of the entry source file
 * @param workspaceRoot absolute path; the search stops there
 */
export function declaredModuleFormat(main: string, workspaceRoot: string): ModuleFormat {
  if (/\.m[jt]s$/.test(main)) return 'esm';
  if (/\.c[jt]s$/.test(main)) return 'cjs';
  const root = resolve(workspaceRoot);
  for (let dir = dirname(resolve(main)); ; dir = dirname(dir)) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      const pkg = JSON.parse(readFileSync(pj, 'utf8')) as { type?: unknown };
      return pkg.type === 'module' ? 'esm' : 'cjs';
    }
    if (dir === root || dirname(dir) === dir) return 'cjs';
  }
}

/**
 * First lines of an ESM bundle: a real `require` for the CommonJS packages bundled into it (esbuild's
 * `__require` shim calls the free `require`, which ESM does not have; esbuild renames any top-level
 * `require` of the app's own code, so this name never collides).
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __buildonceCreateRequire } from 'node:module';\nconst require = __buildonceCreateRequire(import.meta.url);";

const ESM_SHIM_SPECIFIER = 'buildonce:esm-shim';
const ESM_SHIM = `import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
const f = fileURLToPath(import.meta.url);
const d = dirname(f);
export { f as __filename, d as __dirname };
`;

/**
 * esbuild options that make an ESM bundle run CommonJS code: the `require` banner and an injected module
 * giving the free `__filename`/`__dirname` of bundled CommonJS files the bundle's own (injection only
 * replaces free references, so an app's own `const __dirname = …` keeps its name).
 */
export function esmInteropOptions(): { banner: { js: string }; inject: string[]; plugins: Plugin[] } {
  const plugin: Plugin = {
    name: 'buildonce-esm-shim',
    setup(build) {
      build.onResolve({ filter: /^buildonce:esm-shim$/ }, () => ({ path: 'esm-shim', namespace: 'buildonce' }));
      build.onLoad({ filter: /.*/, namespace: 'buildonce' }, () => ({ contents: ESM_SHIM, loader: 'js', resolveDir: __dirname }));
    },
  };
  return { banner: { js: ESM_REQUIRE_BANNER }, inject: [ESM_SHIM_SPECIFIER], plugins: [plugin] };
}

/**
 * esbuild warnings that mean the bundle breaks (or silently misbehaves) at run time, by message id
 * (esbuild's `Message.id`, e.g. `empty-import-meta`: `import.meta` is `{}` in a CommonJS bundle).
 */
export const RUNTIME_BREAKING_WARNINGS: ReadonlySet<string> = new Set([
  'empty-import-meta',
  'import-is-undefined',
  'commonjs-variable-in-esm',
  'call-import-namespace',
  'new-import-namespace',
  'unsupported-require-call',
  'unsupported-dynamic-import',
  'require-resolve-not-external',
]);

/** One line for an esbuild message: `text (file:line) [id]`. */
export function describeMessage(m: Message): string {
  return `${m.text}${m.location ? ` (${m.location.file}:${m.location.line})` : ''}${m.id ? ` [${m.id}]` : ''}`;
}

/** Splits esbuild warnings into those that break the bundle at run time and the rest (logged). */
export function classifyWarnings(warnings: readonly Message[]): { breaking: Message[]; other: Message[] } {
  const breaking = warnings.filter((w) => RUNTIME_BREAKING_WARNINGS.has(w.id));
  return { breaking, other: warnings.filter((w) => !breaking.includes(w)) };
}

/**
 * The package-manager independent spelling of a bundled path (relative to the workspace, `/`-separated):
 * pnpm's store layout `node_modules/.pnpm/<id>/node_modules/<pkg>/…` becomes `node_modules/<pkg>/…`
 * (npm's, yarn's node-modules linker's), and a package reached through a `node_modules` symlink that leaves
 * the workspace (`../../outside/node_modules/x/…`) becomes `node_modules/x/…`. Workspace files are unchanged.
 */
export function canonicalBundlePath(path: string): string {
  let p = path;
  if (p.startsWith('../')) {
    const i = p.indexOf('/node_modules/');
    if (i >= 0) p = p.slice(i + 1);
  }
  return p.replace(/(^|\/)node_modules\/\.pnpm\/[^/]+\/node_modules\//g, '$1node_modules/');
}

/**
 * Rewrites the paths esbuild wrote into a bundle (CommonJS wrapper names and path comments in unminified
 * code, the source map's `sources`) to their {@link canonicalBundlePath}, so the bytes do not depend on the
 * package manager's layout or where node_modules really lives.
 * @param inputs metafile input paths (relative to the working directory)
 * @param code the bundle's text
 * @param map the source map's JSON text (sources relative to `mapDir`), if any
 * @param workingDir esbuild's absWorkingDir; @param mapDir the directory of the map file
 */
export function canonicalizeBundle(
  inputs: readonly string[],
  code: string,
  map: string | undefined,
  workingDir: string,
  mapDir: string,
): { code: string; map?: string } {
  const renames = inputs.map((i) => [i, canonicalBundlePath(i)] as const).filter(([a, b]) => a !== b);
  // longest first, so a path is never rewritten through a prefix of it
  renames.sort((a, b) => b[0].length - a[0].length);
  if (renames.length === 0 && map === undefined) return { code };
  const lines = code.split('\n');
  // per line: [column in the original line where a rename ended, cumulative column shift from there on]
  const shifts: Array<Array<[number, number]>> = [];
  const out = lines.map((line, n) => {
    if (!renames.some(([from]) => line.includes(from))) return line;
    const marks: Array<[number, number]> = [];
    let result = '';
    let shift = 0;
    for (let i = 0; i < line.length;) {
      const hit = renames.find(([from]) => line.startsWith(from, i));
      if (hit) {
        result += hit[1];
        i += hit[0].length;
        shift += hit[1].length - hit[0].length;
        marks.push([i, shift]);
      } else result += line[i++];
    }
    shifts[n] = marks;
    return result;
  });
  if (map === undefined) return { code: out.join('\n') };
  const m = JSON.parse(map) as { sources?: string[]; mappings?: string };
  if (Array.isArray(m.sources)) {
    m.sources = m.sources.map((s) => {
      const rel = relative(workingDir, resolve(mapDir, s)).split(sep).join('/');
      const canon = canonicalBundlePath(rel);
      return canon === rel ? s : relative(mapDir, join(workingDir, canon)).split(sep).join('/');
    });
  }
  if (typeof m.mappings === 'string' && shifts.length) m.mappings = shiftGeneratedColumns(m.mappings, shifts);
  return { code: out.join('\n'), map: JSON.stringify(m) };
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function decodeVlq(segment: string): number[] {
  const values: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = B64.indexOf(ch);
    value += (digit & 31) << shift;
    if (digit & 32) shift += 5;
    else {
      values.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return values;
}

function encodeVlq(values: readonly number[]): string {
  let out = '';
  for (const v of values) {
    let x = v < 0 ? (-v << 1) | 1 : v << 1;
    do {
      let digit = x & 31;
      x >>>= 5;
      if (x > 0) digit |= 32;
      out += B64[digit];
    } while (x > 0);
  }
  return out;
}

/**
 * Moves the generated columns of source map segments (Source Map Revision 3: `mappings`, base64 VLQ, the
 * generated column relative to the previous segment of the same line) after text on their line changed length.
 * @param shifts per generated line: `[column where a change ended, total shift from there on]`, ascending
 */
export function shiftGeneratedColumns(mappings: string, shifts: ReadonlyArray<ReadonlyArray<readonly [number, number]> | undefined>): string {
  return mappings
    .split(';')
    .map((line, n) => {
      const marks = shifts[n];
      if (!marks?.length || !line) return line;
      let col = 0;
      let prevNew = 0;
      return line
        .split(',')
        .map((seg) => {
          const v = decodeVlq(seg);
          col += v[0]!;
          let shift = 0;
          for (const [at, s] of marks) if (col >= at) shift = s;
          const next = col + shift;
          v[0] = next - prevNew;
          prevNew = next;
          return encodeVlq(v);
        })
        .join(',');
    })
    .join(';');
}
