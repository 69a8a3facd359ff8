import { readJson, writeJson, type Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { ARTIFACT_INFO_FILE, DEPLOYED_MANIFEST_PATH } from '@buildonce/artifact';
import { detectNodeApp } from '../../plugin/detect';
import { nodeServiceGenerator, workspaceGlobCovers } from './generator';

/** A root like create-nx-workspace --preset=ts writes: scoped name, npm workspaces, TS project references. */
function tsPresetRoot(tree: Tree): void {
  writeJson(tree, 'package.json', { name: '@acme/source', private: true, workspaces: ['packages/*'], devDependencies: { nx: '23.2.1' } });
  writeJson(tree, 'tsconfig.json', { extends: './tsconfig.base.json', files: [], references: [{ path: './packages/util' }] });
}

describe('node-service generator', () => {
  let tree: Tree;
  beforeEach(() => {
    tree = createTreeWithEmptyWorkspace();
  });

  it('writes an Express service whose package.json opts into buildonce under the workspace scope', async () => {
    tsPresetRoot(tree);
    await nodeServiceGenerator(tree, { name: 'api', skipInstall: true });
    const files = tree
      .listChanges()
      .map((c) => c.path)
      .filter((p) => p.startsWith('apps/'))
      .sort();
    expect(files).toEqual(['README.md', 'package.json', 'src/app.ts', 'src/main.ts', 'src/release.ts', 'tsconfig.json'].map((f) => `apps/api/${f}`));
    const pkgText = tree.read('apps/api/package.json', 'utf8')!;
    expect(detectNodeApp('apps/api/package.json', pkgText)).toEqual({ kind: 'node-tarball', name: '@acme/api', deploy: 'ec2', main: '', parameterName: '' });
    const pkg = JSON.parse(pkgText);
    expect(pkg.dependencies).toEqual({ express: '^5.1.0' });
    expect(pkg.main).toBe('./src/main.ts');
    expect(readJson(tree, 'apps/api/tsconfig.json').extends).toBe('../../tsconfig.base.json');
    // build info lands with the compiler output (ignored, not an input), never in the project folder itself
    expect(readJson(tree, 'apps/api/tsconfig.json').compilerOptions).toMatchObject({ outDir: 'out-tsc', tsBuildInfoFile: 'out-tsc/tsconfig.tsbuildinfo' });
    expect(tree.read('apps/api/src/app.ts', 'utf8')).toMatch(/app\.get\('\/health'[\s\S]*app\.get\('\/release'/);
    expect(tree.read('apps/api/src/main.ts', 'utf8')).toContain("loadRelease(__dirname, '@acme/api')");
    // the service reads the identity files the build and the deploy write (same names as libs/artifact)
    const release = tree.read('apps/api/src/release.ts', 'utf8')!;
    expect(release).toContain(`join(dir, '${ARTIFACT_INFO_FILE}')`);
    expect(release).toContain(`join(dir, '${DEPLOYED_MANIFEST_PATH}')`);
    for (const f of files) expect(tree.read(f, 'utf8'), f).not.toMatch(/<%|%>/);
  });

  it('makes the service an npm workspace package, a TS project reference, and adds the missing @types', async () => {
    tsPresetRoot(tree);
    await nodeServiceGenerator(tree, { name: 'api', skipInstall: true });
    const root = readJson(tree, 'package.json');
    expect(root.workspaces).toEqual(['packages/*', 'apps/*']);
    expect(root.devDependencies).toMatchObject({ nx: '23.2.1', '@types/node': expect.any(String), '@types/express': expect.any(String) });
    expect(readJson(tree, 'tsconfig.json').references).toEqual([{ path: './packages/util' }, { path: './apps/api' }]);
    // a second service changes neither list again
    await nodeServiceGenerator(tree, { name: 'worker', skipInstall: true });
    expect(readJson(tree, 'package.json').workspaces).toEqual(['packages/*', 'apps/*']);
  });

  it('honours --directory, --packageName and --deploy; unscoped root → unscoped name', async () => {
    writeJson(tree, 'package.json', { name: 'plain', workspaces: ['services/**'] });
    await nodeServiceGenerator(tree, { name: 'api', directory: 'services/edge/api', deploy: 'local', skipInstall: true });
    expect(readJson(tree, 'services/edge/api/package.json')).toMatchObject({ name: 'api', buildonce: { deploy: 'local' } });
    expect(readJson(tree, 'package.json').workspaces).toEqual(['services/**']);
    await nodeServiceGenerator(tree, { name: 'web', packageName: '@shop/web', skipInstall: true });
    expect(readJson(tree, 'apps/web/package.json').name).toBe('@shop/web');
  });

  it('puts express in the root package.json when the workspace has no npm workspaces', async () => {
    await nodeServiceGenerator(tree, { name: 'api', skipInstall: true });
    expect(readJson(tree, 'apps/api/package.json').dependencies).toEqual({});
    expect(readJson(tree, 'package.json').dependencies).toMatchObject({ express: '^5.1.0' });
  });

  it('refuses bad names and taken directories, writing nothing', async () => {
    await expect(nodeServiceGenerator(tree, { name: 'Api' })).rejects.toThrow(/node-service name "Api": use lowercase letters/);
    tree.write('apps/api/index.ts', '');
    const before = tree.listChanges().length;
    await expect(nodeServiceGenerator(tree, { name: 'api' })).rejects.toThrow(/--directory="apps\/api" already exists and is not empty/);
    expect(tree.listChanges()).toHaveLength(before);
  });

  it('registers the service in pnpm-workspace.yaml in a pnpm workspace, keeping its comments', async () => {
    tree.write('pnpm-workspace.yaml', "# workspace packages\npackages:\n  - 'packages/*'\n");
    await nodeServiceGenerator(tree, { name: 'api', skipInstall: true });
    const text = tree.read('pnpm-workspace.yaml', 'utf8')!;
    expect(text).toMatch(/^# workspace packages\npackages:\n {2}- 'packages\/\*'\n {2}- apps\/\*\n$/);
    expect(readJson(tree, 'apps/api/package.json').dependencies).toEqual({ express: '^5.1.0' });
    await nodeServiceGenerator(tree, { name: 'web', skipInstall: true });
    expect(tree.read('pnpm-workspace.yaml', 'utf8')).toBe(text);
  });

  it('matches npm workspace patterns', () => {
    expect(workspaceGlobCovers('packages/*', 'packages/api')).toBe(true);
    expect(workspaceGlobCovers('packages/*', 'packages/a/b')).toBe(false);
    expect(workspaceGlobCovers('./apps/*/', 'apps/api')).toBe(true);
    expect(workspaceGlobCovers('apps/**', 'apps/a/b')).toBe(true);
    expect(workspaceGlobCovers('tools/cli', 'tools/cli')).toBe(true);
    expect(workspaceGlobCovers('apps/*', 'packages/api')).toBe(false);
  });
});
