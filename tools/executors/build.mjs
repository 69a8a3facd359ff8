#!/usr/bin/env node
// Bundles every executor of the plugin (src/executors/<name>/executor.ts + the workspace libs it
// imports + their npm dependencies) into one CommonJS file, dist/<name>.js, with esbuild.
// Why: Nx would otherwise transpile the TypeScript of the executor and every lib on each task start
// (~350 ms with @swc-node/register on Node 20); the bundle loads in ~40 ms. esbuild (native binary)
// and modules loaded lazily at run time (AWS SDK clients, esbuild) stay in node_modules.
// Run by the `executors:bundle` target, which every target using the plugin depends on.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const { executors } = JSON.parse(readFileSync(join(root, 'executors.json'), 'utf8'));
const entryPoints = {};
for (const [name, def] of Object.entries(executors)) {
  const m = /^\.\/dist\/([a-z-]+)\.js$/.exec(def.implementation);
  if (!m || m[1] !== name) throw new Error(`executors.json: ${name}.implementation must be ./dist/${name}.js, got ${def.implementation}`);
  entryPoints[name] = join(root, 'src', 'executors', name, 'executor.ts');
}
rmSync(join(root, 'dist'), { recursive: true, force: true });
await build({
  entryPoints,
  outdir: join(root, 'dist'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  external: ['esbuild', 'nx', '@nx/devkit'],
  logLevel: 'warning',
});
console.log(`[executors] bundled ${Object.keys(entryPoints).length} executors into ${join(root, 'dist')}`);
