#!/usr/bin/env node
// Packs the installable @buildonce/nx tarball from the bundle (run build.mjs first; the `executors:pack`
// target depends on `executors:bundle`):
//   <out>/package/         the staged package: dist/ (bundles, generator templates), executors.json,
//                          generators.json (factories pointing into dist/), schemas, the version hasher,
//                          bin/buildonce.js, README.md, and a package.json whose dependencies are exactly
//                          the npm packages the bundle leaves external (versions pinned by the workspace's
//                          package.json); no private @buildonce/* package, no TypeScript, no tests
//   <out>/buildonce-nx-<version>.tgz   `npm pack` of it
// usage: node tools/executors/pack.mjs [--out <dir>]   (default <workspace>/dist/packages/buildonce-nx)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const workspace = resolve(root, '..', '..');
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? resolve(process.argv[outArg + 1]) : join(workspace, 'dist', 'packages', 'buildonce-nx');
const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));

const fail = (msg) => {
  process.stderr.write(`pack: ${msg}\n`);
  process.exit(1);
};
if (!existsSync(join(root, 'dist', 'meta.json'))) fail('tools/executors/dist is not built: run `npx nx run executors:bundle` first');

const src = readJson(join(root, 'package.json'));
const rootPkg = readJson(join(workspace, 'package.json'));
const pinned = { ...rootPkg.devDependencies, ...rootPkg.dependencies };
const { external } = readJson(join(root, 'dist', 'meta.json'));
/** provided by the workspace that installs the plugin (its Nx), never a second copy */
const PEERS = ['nx', '@nx/devkit'];
const nxVersion = pinned.nx;
const dependencies = {};
for (const name of external) {
  if (name.startsWith('@buildonce/')) fail(`the bundle leaves the private package ${name} external: inline it (build.mjs)`);
  if (PEERS.includes(name)) continue;
  if (!pinned[name]) fail(`the bundle loads ${name} at run time but the workspace package.json pins no version of it: add it to dependencies`);
  dependencies[name] = pinned[name];
}
const [nxMajor] = nxVersion.split('.');

const pkg = {
  name: src.name,
  version: src.version,
  description: src.description,
  license: src.license,
  keywords: ['nx', 'nx-plugin', 'build-once', 'artifact', 'promotion', 'aws-lambda', 'deployment'],
  main: './dist/index.js',
  executors: './executors.json',
  generators: './generators.json',
  bin: src.bin,
  files: ['dist', 'bin', 'src/**/schema.json', 'src/hasher/*.js', 'executors.json', 'generators.json', 'README.md', '!**/*.spec.*', '!dist/meta.json'],
  engines: rootPkg.engines,
  dependencies: Object.fromEntries(Object.entries(dependencies).sort(([a], [b]) => a.localeCompare(b))),
  peerDependencies: {
    nx: `>=${Number(nxMajor) - 1}.0.0 <${Number(nxMajor) + 1}.0.0`,
    '@nx/devkit': `>=${Number(nxMajor) - 1}.0.0 <${Number(nxMajor) + 1}.0.0`,
  },
};

const stage = join(out, 'package');
rmSync(out, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
cpSync(join(root, 'dist'), join(stage, 'dist'), { recursive: true, filter: (p) => !p.endsWith('meta.json') });
cpSync(join(root, 'bin'), join(stage, 'bin'), { recursive: true });
cpSync(join(root, 'src', 'hasher'), join(stage, 'src', 'hasher'), { recursive: true, filter: (p) => !/\.spec\./.test(p) });
cpSync(join(root, 'README.md'), join(stage, 'README.md'));
const executors = readJson(join(root, 'executors.json'));
const generators = readJson(join(root, 'generators.json'));
for (const def of Object.values(executors.executors)) {
  mkdirSync(dirname(join(stage, def.schema)), { recursive: true });
  cpSync(join(root, def.schema), join(stage, def.schema));
}
for (const [name, def] of Object.entries(generators.generators)) {
  mkdirSync(dirname(join(stage, def.schema)), { recursive: true });
  cpSync(join(root, def.schema), join(stage, def.schema));
  def.factory = `./dist/generators/${name}/generator.js`;
}
writeFileSync(join(stage, 'executors.json'), JSON.stringify(executors, null, 2) + '\n');
writeFileSync(join(stage, 'generators.json'), JSON.stringify(generators, null, 2) + '\n');
writeFileSync(join(stage, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');

const stdout = execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: stage, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const [{ filename, size, entryCount }] = JSON.parse(stdout);
const tgz = join(out, readdirSync(out).find((f) => f === filename) ?? filename);
console.log(`[executors] packed ${pkg.name}@${pkg.version}: ${tgz} (${entryCount} files, ${(size / 1024).toFixed(1)} kB)`);
