import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The installable @buildonce/nx tarball (pack.mjs over the bundle that `executors:bundle` builds; the
 * test target depends on it): real `npm pack`, real tar listing.
 */
/** tools/executors */
const here = resolve(__dirname, '..');
const repo = resolve(here, '..', '..');
let out: string;
let files: string[];
let pkg: Record<string, any>;

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'buildonce-pack-'));
  execFileSync(process.execPath, [join(here, 'pack.mjs'), '--out', out], { stdio: 'pipe' });
  const tgz = readdirSync(out).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error(`no tarball in ${out}`);
  files = execFileSync('tar', ['-tzf', join(out, tgz)], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .sort();
  pkg = JSON.parse(execFileSync('tar', ['-xzOf', join(out, tgz), 'package/package.json'], { encoding: 'utf8' }));
});

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('npm pack of @buildonce/nx', () => {
  it('is named buildonce-nx-<version>.tgz and ships the bundles, schemas, manifests, README and bin', () => {
    expect(readdirSync(out)).toContain(`buildonce-nx-${pkg.version}.tgz`);
    const executors = Object.keys(JSON.parse(readFileSync(join(here, 'executors.json'), 'utf8')).executors);
    expect(executors).toEqual(
      expect.arrayContaining(['cargo-lambda-zip', 'package-tarball', 'publish-artifact', 'promote', 'rollback', 'releases', 'resolve', 'retention']),
    );
    const expected = [
      'package/package.json',
      'package/README.md',
      'package/executors.json',
      'package/generators.json',
      'package/bin/buildonce.js',
      'package/dist/index.js',
      'package/dist/cli.js',
      'package/dist/rust-toolchain.js',
      'package/dist/generators/init/generator.js',
      'package/src/generators/init/schema.json',
      'package/src/hasher/version-hasher.js',
      ...executors.flatMap((e) => [`package/dist/${e}.js`, `package/src/executors/${e}/schema.json`]),
    ];
    expect(files).toEqual(expect.arrayContaining(expected));
  });

  it('ships no TypeScript, no tests, no build metadata', () => {
    expect(files.filter((f) => /\.ts$|\.spec\.|\.int\.|vitest|tsconfig|meta\.json$|build\.mjs|pack\.mjs/.test(f))).toEqual([]);
  });

  it('declares no private package, pins every npm package the bundle loads, and takes nx from the workspace', () => {
    expect(pkg.name).toBe('@buildonce/nx');
    expect(pkg.private).toBeUndefined();
    expect(pkg.devDependencies).toBeUndefined();
    const all = { ...pkg.dependencies, ...pkg.peerDependencies };
    expect(Object.keys(all).filter((d) => d.startsWith('@buildonce/'))).toEqual([]);
    expect(pkg.main).toBe('./dist/index.js');
    expect(pkg.bin).toEqual({ buildonce: './bin/buildonce.js' });
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(['@nx/devkit', 'nx']);
    for (const v of Object.values(pkg.dependencies)) expect(v).toMatch(/^\d+\.\d+\.\d+$/);
    // every bare require of the shipped code is a builtin, a dependency or a peer
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const required = new Set<string>();
    for (const f of files.filter((x) => x.endsWith('.js'))) {
      const code = readFileSync(join(out, f), 'utf8');
      // require("x"), lazyRequire("x"), (0, createRequire)(__filename)("x")
      for (const m of code.matchAll(/(?:\b\w*[Rr]equire|createRequire\)\(__filename\))\(\s*["']([^"'./][^"']*)["']\s*\)/g)) {
        const spec = m[1];
        if (!spec || builtins.has(spec)) continue;
        required.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
      }
    }
    expect(required.size).toBeGreaterThan(5);
    expect([...required].filter((r) => !(r in all))).toEqual([]);
  });

  it('runs the buildonce bin from the bundle (no TypeScript loader)', () => {
    const r = spawnSync(process.execPath, [join(out, 'package', 'bin', 'buildonce.js'), '--help'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: join(repo, 'node_modules'), NODE_OPTIONS: '' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: buildonce <command>/);
  });
});
