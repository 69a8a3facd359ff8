#!/usr/bin/env node
// Bundles the @buildonce/nx package with esbuild into CommonJS files under dist/:
//   dist/<executor>.js                  every executor of executors.json
//   dist/generators/<name>/generator.js every generator of generators.json (templates copied beside it)
//   dist/index.js                       the Nx plugin (createNodes / createNodesV2)
//   dist/cli.js                         the `buildonce` bin
// Workspace libraries (@buildonce/*, private) are inlined; every npm package stays external and is a
// declared runtime dependency of the packed package (dist/meta.json lists them for pack.mjs).
// Why a bundle: Nx would otherwise transpile the TypeScript of the executor and every lib on each task
// start (~350 ms with @swc-node/register on Node 20); the bundle loads in ~40 ms.
// Run by the `executors:bundle` target, which the inferred targets depend on in this repository.
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const readJson = (p) => JSON.parse(readFileSync(join(root, p), 'utf8'));
const { executors } = readJson('executors.json');
const { generators } = readJson('generators.json');

const entryPoints = {};
for (const [name, def] of Object.entries(executors)) {
  const m = /^\.\/dist\/([a-z-]+)\.js$/.exec(def.implementation);
  if (!m || m[1] !== name) throw new Error(`executors.json: ${name}.implementation must be ./dist/${name}.js, got ${def.implementation}`);
  entryPoints[name] = join(root, 'src', 'executors', name, 'executor.ts');
}
for (const [name, def] of Object.entries(generators)) {
  const m = /^\.\/src\/generators\/([a-z0-9-]+)\/generator(\.ts)?$/.exec(def.factory);
  if (!m || m[1] !== name) throw new Error(`generators.json: ${name}.factory must be ./src/generators/${name}/generator, got ${def.factory}`);
  entryPoints[`generators/${name}/generator`] = join(root, 'src', 'generators', name, 'generator.ts');
}
entryPoints.index = join(root, 'src', 'plugin', 'index.ts');
entryPoints.cli = join(root, 'src', 'cli', 'main.ts');
// the Rust toolchain identity command (an Nx runtime input of inferred Rust Lambda builds in installed workspaces)
entryPoints['rust-toolchain'] = join(root, '..', 'scripts', 'rust-toolchain.mjs');

const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
/**
 * npm packages loaded on first use instead of when an executor starts: each costs 200-1300 ms to load, and
 * most tasks need none of them (a no-op publish needs no AWS client, no process, no tar). Only packages
 * imported by name (no default import) whose import has no side effect the code relies on belong here.
 */
const LAZY = [/^@aws-sdk\/client-/, /^@aws-sdk\/lib-storage$/, /^execa$/, /^tar$/];
const requireHere = createRequire(import.meta.url);
/**
 * Inline @buildonce/* (private workspace libs) and relative imports; keep every npm package external, the
 * LAZY ones behind a proxy that requires the package at its first property access. esbuild reads named
 * imports as properties at each use, and its interop helper copies the export names as getters: those names
 * come from the package, read here once, so the copy does not load it.
 */
const externalNpm = {
  name: 'external-npm',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('@buildonce/') || builtins.has(args.path)) return undefined;
      if (args.namespace !== 'lazy' && LAZY.some((re) => re.test(args.path))) return { path: args.path, namespace: 'lazy' };
      return { path: args.path, external: true };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, (args) => {
      const mod = requireHere(args.path);
      const names = Object.keys(mod).filter((k) => k !== '__esModule' && k !== 'default');
      return {
        loader: 'js',
        contents: `let m;
const load = () => (m ??= require(${JSON.stringify(args.path)}));
const names = ${JSON.stringify(names)};
module.exports = new Proxy({}, {
  get: (_, k) => (k === '__esModule' ? ${JSON.stringify(!!mod.__esModule)} : load()[k]),
  has: (_, k) => names.includes(k) || k in load(),
  ownKeys: () => names,
  getOwnPropertyDescriptor: (_, k) => (names.includes(k) ? { configurable: true, enumerable: true, writable: false, value: undefined } : undefined),
});
`,
      };
    });
  },
};

rmSync(dist, { recursive: true, force: true });
const result = await build({
  entryPoints,
  outdir: dist,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  plugins: [externalNpm],
  metafile: true,
  logLevel: 'warning',
});

// npm packages the bundle loads at run time (package names, subpaths stripped)
const external = new Set();
for (const out of Object.values(result.metafile.outputs)) {
  for (const imp of out.imports) {
    if (!imp.external || builtins.has(imp.path) || imp.path.startsWith('.')) continue;
    const parts = imp.path.split('/');
    external.add(imp.path.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
  }
}
// packages required lazily at run time (createRequire(__filename)('<pkg>'), AWS SDK clients, esbuild) are
// invisible to the metafile: find `("<pkg>")` calls of any package the workspace depends on
const rootPkg = JSON.parse(readFileSync(join(root, '..', '..', 'package.json'), 'utf8'));
const known = Object.keys({ ...rootPkg.dependencies, ...rootPkg.devDependencies });
const code = Object.keys(result.metafile.outputs)
  .filter((f) => f.endsWith('.js'))
  .map((f) => readFileSync(f, 'utf8'))
  .join('\n');
for (const name of known) {
  const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  if (new RegExp(`\\(\\s*["']${escaped}["']\\s*\\)`).test(code)) external.add(name);
}
for (const name of Object.keys(generators)) {
  const files = join(root, 'src', 'generators', name, 'files');
  if (existsSync(files)) cpSync(files, join(dist, 'generators', name, 'files'), { recursive: true });
}
mkdirSync(dist, { recursive: true });
writeFileSync(join(dist, 'meta.json'), JSON.stringify({ external: [...external].sort() }, null, 2) + '\n');
console.log(`[executors] bundled ${Object.keys(entryPoints).length} entry points into ${dist} (external: ${[...external].sort().join(', ')})`);
