import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCachedWorkspace, type CachedWorkspace } from '@buildonce/testing';

/**
 * "Same version ⇒ same bytes", through the real nx CLI in a temp copy of this workspace: the inferred
 * build of express-api (package-tarball) gets a new version exactly when something that makes its
 * bytes changes (its code, a workspace library, the packaging code, the plugin's version), and keeps
 * it for docs and workspace files that cannot change the bytes (README, .gitignore).
 */
let ws: CachedWorkspace;

function version(): string {
  const r = ws.runResult('npx', ['nx', 'run', 'express-api:build', '--output-style=stream'], { NX_CACHE_DIRECTORY: ws.cache });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return JSON.parse(readFileSync(join(ws.root, 'dist/apps/express-api/artifact.json'), 'utf8')).version as string;
}

function edit(rel: string, f: (text: string) => string): () => void {
  const path = join(ws.root, rel);
  const before = readFileSync(path, 'utf8');
  writeFileSync(path, f(before));
  return () => writeFileSync(path, before);
}

beforeAll(() => {
  ws = makeCachedWorkspace('buildonce-version-');
});

afterAll(() => ws?.dispose());

describe('inferred targets through nx show project', () => {
  it('infers the buildonce targets, and explicit project.json configuration wins', () => {
    const undo = edit('apps/express-api/project.json', (t) => {
      const pj = JSON.parse(t);
      pj.targets.build = { options: { minify: false } };
      pj.targets.retention = { executor: 'nx:noop' };
      return JSON.stringify(pj);
    });
    try {
      const shown = JSON.parse(ws.run('npx', ['nx', 'show', 'project', 'express-api', '--json'], { NX_CACHE_DIRECTORY: ws.cache }));
      const t = shown.targets;
      expect(Object.keys(t)).toEqual(
        expect.arrayContaining(['build', 'publish', 'promote', 'rollback', 'releases', 'resolve', 'retention', 'package', 'test']),
      );
      expect(t.build.executor).toBe('./tools/executors:package-tarball');
      expect(t.build.options).toMatchObject({ minify: false });
      expect(t.retention.executor).toBe('nx:noop');
      expect(t.promote).toMatchObject({ executor: './tools/executors:promote', options: { target: 'ec2' } });
      expect(t.promote.dependsOn).toEqual(['publish', { projects: ['executors'], target: 'bundle' }]);
      const scorer = JSON.parse(ws.run('npx', ['nx', 'show', 'project', 'rust-scorer', '--json'], { NX_CACHE_DIRECTORY: ws.cache }));
      expect(scorer.targets.build).toMatchObject({
        executor: './tools/executors:cargo-lambda-zip',
        options: { architecture: 'arm64', runtime: 'provided.al2023', binary: 'bootstrap' },
      });
    } finally {
      undo();
    }
  });
});

describe('inferred build inputs (express-api)', () => {
  let v0 = '';

  it('keeps the version for README and .gitignore edits', () => {
    v0 = version();
    expect(v0).toMatch(/^\d+$/);
    writeFileSync(join(ws.root, 'apps/express-api/README.md'), '# express-api\n\nnotes that ship nowhere\n');
    expect(version()).toBe(v0);
    appendFileSync(join(ws.root, '.gitignore'), '\n# an unrelated ignore\n*.swp\n');
    expect(version()).toBe(v0);
  });

  it('gives a new version when the plugin version is bumped, and the old one back when reverted', () => {
    const undo = edit('tools/executors/package.json', (t) => t.replace('"version": "0.1.0"', '"version": "0.1.1"'));
    const v1 = version();
    expect(v1).not.toBe(v0);
    undo();
    expect(version()).toBe(v0);
  });

  it('gives a new version when a workspace library the app imports changes', () => {
    const undo = edit('libs/artifact/src/index.ts', (t) => `${t}\n// a change in a library the app bundles\n`);
    expect(version()).not.toBe(v0);
    undo();
    expect(version()).toBe(v0);
  });

  it('gives a new version when the packaging code (bundled into the executor) changes', () => {
    const undo = edit('libs/node-package/src/tarball.ts', (t) => `${t}\n(globalThis as Record<string, unknown>).__buildonceProbe = 1;\n`);
    expect(version()).not.toBe(v0);
    undo();
    expect(version()).toBe(v0);
  });
});

describe('inferred build inputs (rust-scorer)', () => {
  const rustVersion = () => {
    const r = ws.runResult('npx', ['nx', 'run', 'rust-scorer:build', '--output-style=stream'], {
      NX_CACHE_DIRECTORY: ws.cache,
      BUILDONCE_CARGO_OFFLINE_REGISTRY: process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? '/usr/share/cargo/registry',
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    return JSON.parse(readFileSync(join(ws.root, 'dist/apps/rust-scorer/artifact.json'), 'utf8')).version as string;
  };

  it('keeps Rust versions when tsconfig.base.json gains a library path or a compiler option changes (TypeScript configuration is no Rust input)', () => {
    // x86_64: the host's own target builds fastest; the versions compared below are all of this crate
    edit('apps/rust-scorer/Cargo.toml', (t) => t.replace('architecture = "arm64"', 'architecture = "x86_64"'));
    const r0 = rustVersion();
    const ts0 = version();
    // what `nx g @nx/js:lib` writes into a paths-style (integrated) workspace
    const undo = edit('tsconfig.base.json', (t) => {
      const json = JSON.parse(t);
      json.compilerOptions.paths = { ...json.compilerOptions.paths, '@acme/new-lib': ['libs/new-lib/src/index.ts'] };
      return JSON.stringify(json, null, 2);
    });
    try {
      expect(rustVersion()).toBe(r0);
      expect(version(), 'the same edit is an input of the TypeScript service').not.toBe(ts0);
    } finally {
      undo();
    }
    // compiler options (what a TypeScript upgrade or a stricter workspace writes) are no Rust input either
    const undoOptions = edit('tsconfig.base.json', (t) => {
      const json = JSON.parse(t);
      json.compilerOptions = { ...json.compilerOptions, noUnusedLocals: !json.compilerOptions.noUnusedLocals };
      return JSON.stringify(json, null, 2);
    });
    try {
      expect(rustVersion()).toBe(r0);
    } finally {
      undoOptions();
    }
  }, 600_000);
});
