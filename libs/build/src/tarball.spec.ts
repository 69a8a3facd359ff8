import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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
  w('apps/app/src/main.ts', "import { readFileSync } from 'node:fs';\nimport { join } from 'node:path';\nimport { greet } from '@fx/greet';\nconst info = JSON.parse(readFileSync(join(__dirname, 'artifact-info.json'), 'utf8'));\nconsole.log(greet('world') + ' ' + info.version);\n");
  return root;
}

function opts(root: string, over: Partial<NodeTarballBuild> = {}): NodeTarballBuild {
  return {
    project: 'app',
    version: '1234',
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
    expect(map.sources).toContain('../../../node_modules/@fx/greet/src/index.ts');
    expect(map.sourcesContent).toBeUndefined();
    expect(execFileSync(process.execPath, ['main.js'], { cwd: out, encoding: 'utf8' })).toBe(' hello world 1234\n');
  });

  it('gives the same sha256 from two workspaces at different paths', async () => {
    const a = await buildNodeTarball(opts(fixtureWorkspace('tb-x-')));
    const b = await buildNodeTarball(opts(fixtureWorkspace('tb-longer-prefix-')));
    expect(b.files[0]!.sha256).toBe(a.files[0]!.sha256);
    const c = await buildNodeTarball(opts(fixtureWorkspace('tb-y-'), { version: '99' }));
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
      outputs: { 'dist/main.js': { bytes: 1, inputs: {}, exports: [], imports: [{ path: 'fs', kind: 'require-call' as const, external: true }, { path: 'sharp', kind: 'require-call' as const, external: true }] } },
    };
    const problems = selfContainedProblems(metafile);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/native addon/);
    expect(problems[1]).toMatch(/"sharp" at run time/);
  });

  it('ships a package.json with no dependencies and detects local references', () => {
    const pkg = deploymentPackageJson({ project: 'p', entry: 'main.js', runtime: 'node>=20' });
    expect(workspaceReferences(pkg)).toEqual([]);
    expect(pkg).not.toHaveProperty('dependencies');
    expect(workspaceReferences({ dependencies: { a: 'workspace:*', b: '1.0.0', c: 'file:../c' }, optionalDependencies: { d: 'link:../d' } })).toEqual([
      'dependencies.a = "workspace:*"',
      'dependencies.c = "file:../c"',
      'optionalDependencies.d = "link:../d"',
    ]);
  });
});
