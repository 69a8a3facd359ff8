import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractTarGz, listTarGz, sha256File } from '@buildonce/artifact';
import {
  NodeTarballError,
  buildNodeTarball,
  deploymentPackageJson,
  isNodeBuiltin,
  packageDirOf,
  runtimeForTarget,
  selfContainedProblems,
  workspaceReferences,
  type NodeTarballBuild,
} from './tarball';
import type { ProjectName, Version } from '@buildonce/values';

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A miniature workspace: an app importing a workspace lib (symlinked like npm workspaces) and an npm package. */
function fixtureWorkspace(prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  made.push(root);
  const w = (p: string, text: string) => {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), text);
  };
  w('libs/greet/package.json', JSON.stringify({ name: '@fx/greet', version: '0.1.0', main: './src/index.ts' }));
  w('libs/greet/src/index.ts', "import pad from 'left-pad-fx';\nexport const greet = (n: string): string => pad(`hello ${n}`, 12);\n");
  w('node_modules/left-pad-fx/package.json', JSON.stringify({ name: 'left-pad-fx', version: '1.3.0', license: 'WTFPL', main: 'index.js' }));
  w('node_modules/left-pad-fx/index.js', "module.exports = (s, n) => ' '.repeat(Math.max(0, n - s.length)) + s;\n");
  mkdirSync(join(root, 'node_modules/@fx'), { recursive: true });
  symlinkSync('../../libs/greet', join(root, 'node_modules/@fx/greet'), 'dir');
  w(
    'apps/app/src/main.ts',
    "import { readFileSync } from 'node:fs';\nimport { join } from 'node:path';\nimport { greet } from '@fx/greet';\nconst info = JSON.parse(readFileSync(join(__dirname, 'artifact-info.json'), 'utf8'));\nconsole.log(greet('world') + ' ' + info.version);\n",
  );
  return root;
}

function opts(root: string, over: Partial<NodeTarballBuild> = {}): NodeTarballBuild {
  return {
    project: 'app' as ProjectName,
    version: '1234' as Version,
    workspaceRoot: root,
    main: join(root, 'apps/app/src/main.ts'),
    outputDir: join(root, 'dist/apps/app'),
    tarballName: 'app-deployment.tar.gz',
    entry: 'main.js',
    target: 'node20',
    runtime: 'node>=20',
    architecture: 'x86_64',
    minify: true,
    sourcemap: true,
    log: () => undefined,
    ...over,
  };
}

describe('buildNodeTarball', () => {
  it('bundles the app, its workspace library and npm dependency into a tarball that runs with plain node', async () => {
    const root = fixtureWorkspace('tb-a-');
    const m = await buildNodeTarball(opts(root));
    expect(m).toMatchObject({ kind: 'node-tarball', entry: 'main.js', runtime: 'node>=20', version: '1234', architecture: 'x86_64' });
    expect(m.files[0]!.name).toBe('app-deployment.tar.gz');
    expect(m.toolchain).toMatch(/^node v\d+\.\d+\.\d+; esbuild \d+\.\d+\.\d+$/);
    expect(JSON.parse(readFileSync(join(root, 'dist/apps/app/artifact.json'), 'utf8'))).toEqual(m);

    const tarball = join(root, 'dist/apps/app/app-deployment.tar.gz');
    expect((await listTarGz(tarball)).map((e) => e.path)).toEqual(['artifact-info.json', 'main.js', 'main.js.map', 'package.json']);
    const out = mkdtempSync(join(tmpdir(), 'tb-run-'));
    made.push(out);
    await extractTarGz(tarball, out);
    const pkg = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8'));
    expect(pkg).toEqual({ name: 'app', private: true, type: 'commonjs', main: 'main.js', scripts: { start: 'node main.js' }, engines: { node: '>=20' } });
    const info = JSON.parse(readFileSync(join(out, 'artifact-info.json'), 'utf8'));
    expect(info).toMatchObject({ project: 'app', version: '1234', entry: 'main.js' });
    expect(info.bundled).toEqual([{ name: 'left-pad-fx', version: '1.3.0', license: 'WTFPL' }]);
    expect(info.workspaceLibraries).toEqual([{ name: '@fx/greet', version: '0.1.0' }]);
    const map = JSON.parse(readFileSync(join(out, 'main.js.map'), 'utf8'));
    expect(map.sources).toContain('../../../libs/greet/src/index.ts');
    expect(map.sources).toContain('../../../node_modules/left-pad-fx/index.js');
    expect(map.sourcesContent).toBeUndefined();
    expect(execFileSync(process.execPath, ['main.js'], { cwd: out, encoding: 'utf8' })).toBe(' hello world 1234\n');
  });

  it('gives the same sha256 from two workspaces at different paths', async () => {
    const a = await buildNodeTarball(opts(fixtureWorkspace('tb-x-')));
    const b = await buildNodeTarball(opts(fixtureWorkspace('tb-longer-prefix-')));
    expect(b.files[0]!.sha256).toBe(a.files[0]!.sha256);
    const c = await buildNodeTarball(opts(fixtureWorkspace('tb-y-'), { version: '99' as Version }));
    expect(c.files[0]!.sha256).not.toBe(a.files[0]!.sha256);
  });

  it('reports compile errors and bad entries as NodeTarballError', async () => {
    const root = fixtureWorkspace('tb-err-');
    writeFileSync(join(root, 'apps/app/src/main.ts'), "import 'not-installed-anywhere';\n");
    await expect(buildNodeTarball(opts(root))).rejects.toThrow(/\[app\] esbuild failed: .*not-installed-anywhere/);
    await expect(buildNodeTarball(opts(root, { entry: '../main.js' }))).rejects.toThrow(NodeTarballError);
  });
});

describe('tarball helpers', () => {
  it('maps targets to runtimes and recognizes builtins', () => {
    expect(runtimeForTarget('node20')).toBe('node>=20');
    expect(runtimeForTarget('node22.3')).toBe('node>=22');
    expect(isNodeBuiltin('fs')).toBe(true);
    expect(isNodeBuiltin('node:sqlite')).toBe(true);
    expect(isNodeBuiltin('express')).toBe(false);
  });

  it('finds the innermost package of an input path', () => {
    expect(packageDirOf('node_modules/express/lib/router.js')).toEqual({ name: 'express', dir: 'node_modules/express' });
    expect(packageDirOf('node_modules/a/node_modules/@s/b/x.js')).toEqual({ name: '@s/b', dir: 'node_modules/a/node_modules/@s/b' });
    expect(packageDirOf('apps/x/src/main.ts')).toBeUndefined();
  });

  it('flags native addons and unbundled imports', () => {
    const metafile = {
      inputs: { 'node_modules/x/build/addon.node': { bytes: 1, imports: [] } },
      outputs: {
        'dist/main.js': {
          bytes: 1,
          inputs: {},
          exports: [],
          imports: [
            { path: 'fs', kind: 'require-call' as const, external: true },
            { path: 'sharp', kind: 'require-call' as const, external: true },
          ],
        },
      },
    };
    const problems = selfContainedProblems(metafile);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/native addon/);
    expect(problems[1]).toMatch(/"sharp" at run time/);
  });

  it('ships a package.json with no dependencies and detects local references', () => {
    const pkg = deploymentPackageJson({ project: 'p' as ProjectName, entry: 'main.js', runtime: 'node>=20' });
    expect(workspaceReferences(pkg)).toEqual([]);
    expect(pkg).not.toHaveProperty('dependencies');
    expect(workspaceReferences({ dependencies: { a: 'workspace:*', b: '1.0.0', c: 'file:../c' }, optionalDependencies: { d: 'link:../d' } })).toEqual([
      'dependencies.a = "workspace:*"',
      'dependencies.c = "file:../c"',
      'optionalDependencies.d = "link:../d"',
    ]);
  });
});

/** Writes files into a workspace root. */
function put(root: string, files: Record<string, string>): void {
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), text);
  }
}

/** Builds, unpacks and runs the tarball; returns stdout and the unpacked directory. */
async function buildAndRun(
  root: string,
  over: Partial<NodeTarballBuild> = {},
): Promise<{ stdout: string; dir: string; manifest: Awaited<ReturnType<typeof buildNodeTarball>> }> {
  const manifest = await buildNodeTarball(opts(root, over));
  const dir = mkdtempSync(join(tmpdir(), 'tb-run-'));
  made.push(dir);
  await extractTarGz(join(root, 'dist/apps/app/app-deployment.tar.gz'), dir);
  return { stdout: execFileSync(process.execPath, ['main.js'], { cwd: dir, encoding: 'utf8' }), dir, manifest };
}

/** A CommonJS npm package using require, __dirname and __filename (what ESM bundles must still run). */
const CJS_DEP = {
  'node_modules/cjs-dep-fx/package.json': JSON.stringify({ name: 'cjs-dep-fx', version: '2.0.0', main: 'index.js' }),
  'node_modules/cjs-dep-fx/index.js':
    "const fs = require('fs');\nconst path = require('path');\nmodule.exports = () => typeof fs.readFileSync + ':' + path.basename(__filename) + ':' + (__dirname.length > 0);\n",
};

describe('module formats', () => {
  it('bundles a "type": "module" app as ESM: import.meta.url, top-level await, createRequire and CommonJS dependencies work', async () => {
    const root = fixtureWorkspace('tb-esm-');
    put(root, {
      ...CJS_DEP,
      'apps/app/package.json': JSON.stringify({ name: 'app', type: 'module' }),
      'apps/app/src/main.ts': [
        "import { createRequire } from 'node:module';",
        "import { dirname, join } from 'node:path';",
        "import { fileURLToPath } from 'node:url';",
        "import { readFileSync } from 'node:fs';",
        "import dep from 'cjs-dep-fx';",
        "import { greet } from '@fx/greet';",
        'const require = createRequire(import.meta.url);',
        'const __dirname = dirname(fileURLToPath(import.meta.url));',
        'const answer = await Promise.resolve(42);',
        "const info = JSON.parse(readFileSync(join(__dirname, 'artifact-info.json'), 'utf8'));",
        "console.log([greet('esm'), answer, dep(), typeof require('node:os').cpus, info.version].join(' '));",
        '',
      ].join('\n'),
    });
    const { stdout, dir } = await buildAndRun(root);
    expect(stdout).toBe('   hello esm 42 function:main.js:true function 1234\n');
    expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).type).toBe('module');
  });

  it('an .mts entry is ESM without a package.json type; format overrides the declaration', async () => {
    const root = fixtureWorkspace('tb-mts-');
    put(root, { 'apps/app/src/main.mts': "const x = await Promise.resolve('mts');\nconsole.log(x, typeof import.meta.url);\n" });
    expect((await buildAndRun(root, { main: join(root, 'apps/app/src/main.mts') })).stdout).toBe('mts string\n');
    put(root, { 'apps/app/src/main.ts': 'console.log(typeof import.meta.url);\n' });
    const { stdout, dir } = await buildAndRun(root, { format: 'esm' });
    expect(stdout).toBe('string\n');
    expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).type).toBe('module');
  });

  it('refuses, in one line, a CommonJS bundle of code that needs ESM (import.meta, top-level await)', async () => {
    const root = fixtureWorkspace('tb-meta-');
    put(root, { 'apps/app/src/main.ts': "import { fileURLToPath } from 'node:url';\nconsole.log(fileURLToPath(import.meta.url));\n" });
    const err = await buildNodeTarball(opts(root)).catch((e: Error) => e);
    expect(err).toBeInstanceOf(NodeTarballError);
    expect((err as Error).message).toMatch(
      /^\[app\] esbuild warns the bundle would fail at run time: .*import\.meta.*apps\/app\/src\/main\.ts:2.*\[empty-import-meta\].*"type": "module"/,
    );
    expect((err as Error).message).not.toContain('\n');
    put(root, { 'apps/app/src/main.ts': 'await Promise.resolve(1);\n' });
    await expect(buildNodeTarball(opts(root))).rejects.toThrow(/esbuild failed: .*[Tt]op-level await/);
  });
});

describe('start check', () => {
  it('a bundle that throws at import gets no version: one line with the source location, nothing left in the output', async () => {
    const root = fixtureWorkspace('tb-throw-');
    put(root, { 'apps/app/src/main.ts': "const url = process.env.DATABASE_URL;\nif (!url) throw new Error('DATABASE_URL is not set');\nconsole.log(url);\n" });
    const err = await buildNodeTarball(opts(root, { startCheck: {} })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(NodeTarballError);
    expect((err as Error).message).toMatch(
      /^\[app\] start check: importing main\.js threw Error: DATABASE_URL is not set at apps\/app\/src\/main\.ts:2:\d+; .*"startCheck": false/,
    );
    expect((err as Error).message).not.toContain('\n');
    expect(existsSync(join(root, 'dist/apps/app'))).toBe(false);
    // opted out: the same bundle builds
    await expect(buildNodeTarball(opts(root))).resolves.toMatchObject({ version: '1234' });
  });

  it('passes a server that listens on PORT at import, and times out an import that never settles', async () => {
    const root = fixtureWorkspace('tb-serve-');
    put(root, {
      'apps/app/src/main.ts': "import { createServer } from 'node:http';\ncreateServer((_q, s) => s.end('ok')).listen(Number(process.env.PORT ?? 3000));\n",
    });
    const logs: string[] = [];
    await buildNodeTarball(opts(root, { startCheck: {}, log: (l) => logs.push(l) }));
    expect(logs.join('\n')).toMatch(/\[app\] start check: main\.js loaded in \d+ ms/);
    put(root, { 'apps/app/package.json': JSON.stringify({ name: 'app', type: 'module' }), 'apps/app/src/main.ts': 'await new Promise(() => undefined);\n' });
    await expect(buildNodeTarball(opts(root, { startCheck: { timeoutMs: 1500 } }))).rejects.toThrow(
      /^\[app\] start check: importing main\.js did not finish within 1500 ms/,
    );
    put(root, { 'apps/app/package.json': JSON.stringify({ name: 'app' }), 'apps/app/src/main.ts': "console.error('bad config');\nprocess.exit(3);\n" });
    await expect(buildNodeTarball(opts(root, { startCheck: {} }))).rejects.toThrow(/start check: main\.js exited with code 3 while loading \(bad config\)/);
  });
});

describe('library shapes and package managers', () => {
  it('resolves package exports through the workspace customConditions (the library is not built)', async () => {
    const root = fixtureWorkspace('tb-cond-');
    put(root, {
      'libs/greet/package.json': JSON.stringify({
        name: '@fx/greet',
        version: '0.2.0',
        type: 'module',
        exports: { '.': { '@fx/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' } },
      }),
    });
    await expect(buildNodeTarball(opts(root))).rejects.toThrow(/Could not resolve "@fx\/greet"|dist\/index\.js/);
    const { stdout, dir } = await buildAndRun(root, { conditions: ['@fx/source'] });
    expect(stdout).toBe(' hello world 1234\n');
    expect(JSON.parse(readFileSync(join(dir, 'artifact-info.json'), 'utf8')).workspaceLibraries).toEqual([{ name: '@fx/greet', version: '0.2.0' }]);
  });

  it('resolves tsconfig paths (integrated style: no package.json, no workspace link)', async () => {
    const root = fixtureWorkspace('tb-paths-');
    put(root, {
      'tsconfig.base.json': JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { '@fx/shout': ['libs/shout/src/index.ts'] } } }),
      'apps/app/tsconfig.json': JSON.stringify({ extends: '../../tsconfig.base.json' }),
      'libs/shout/src/index.ts': "export const shout = (s: string): string => s.toUpperCase() + '!';\n",
      'apps/app/src/main.ts': "import { shout } from '@fx/shout';\nconsole.log(shout('paths'));\n",
    });
    expect((await buildAndRun(root)).stdout).toBe('PATHS!\n');
  });

  it("a pnpm layout (symlinks into node_modules/.pnpm) bundles to the same bytes as npm's flat one", async () => {
    const app = "import dep from 'cjs-dep-fx';\nimport pad from 'left-pad-fx';\nconsole.log(pad(dep(), 30));\n";
    const npmRoot = fixtureWorkspace('tb-npm-');
    put(npmRoot, { ...CJS_DEP, 'apps/app/src/main.ts': app });
    const pnpmRoot = fixtureWorkspace('tb-pnpm-');
    rmSync(join(pnpmRoot, 'node_modules/left-pad-fx'), { recursive: true });
    const store = (name: string) => `node_modules/.pnpm/${name}@1.0.0/node_modules/${name}`;
    put(pnpmRoot, {
      'apps/app/src/main.ts': app,
      ...Object.fromEntries(Object.entries(CJS_DEP).map(([p, t]) => [p.replace('node_modules/cjs-dep-fx', store('cjs-dep-fx')), t])),
      [`${store('left-pad-fx')}/package.json`]: JSON.stringify({ name: 'left-pad-fx', version: '1.3.0', license: 'WTFPL', main: 'index.js' }),
      [`${store('left-pad-fx')}/index.js`]: "module.exports = (s, n) => ' '.repeat(Math.max(0, n - s.length)) + s;\n",
    });
    symlinkSync(`.pnpm/cjs-dep-fx@1.0.0/node_modules/cjs-dep-fx`, join(pnpmRoot, 'node_modules/cjs-dep-fx'), 'dir');
    symlinkSync(`.pnpm/left-pad-fx@1.0.0/node_modules/left-pad-fx`, join(pnpmRoot, 'node_modules/left-pad-fx'), 'dir');
    for (const minify of [true, false]) {
      const a = await buildAndRun(npmRoot, { minify });
      const b = await buildAndRun(pnpmRoot, { minify });
      expect(b.stdout).toBe(a.stdout);
      for (const f of ['main.js', 'main.js.map', 'artifact-info.json'])
        expect(readFileSync(join(b.dir, f), 'utf8'), f).toBe(readFileSync(join(a.dir, f), 'utf8'));
      expect(b.manifest.files[0]!.sha256).toBe(a.manifest.files[0]!.sha256);
    }
    expect(readFileSync(join(npmRoot, 'dist/apps/app/app-deployment.tar.gz')).length).toBeGreaterThan(0);
  });
});
