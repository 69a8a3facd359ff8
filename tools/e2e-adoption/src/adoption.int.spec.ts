/**
 * Adoption end to end, as a new user would do it (the one test allowed to `npm install`), with npm:
 *   the scenario of matrix.ts (create-nx-workspace@23.2.1 --preset=ts → nx add @buildonce/nx (the packed
 *   tarball as a `file:` spec: npm install + the init generator) → a tsc-built, a --bundler=none and a
 *   `paths` library → a CommonJS and an ESM node-service importing them) and its checks (publish, promote,
 *   start from the deployed directory, typecheck keeps versions, a bundle that throws at import fails) →
 *   promote dev, staging → boot the deployed tarball and GET /health → version checks (README, .gitignore,
 *   library edit, plugin version bump) → nx g @buildonce/nx:rust-lambda → publish, and a second clone
 *   publishes a byte-identical zip. adoption-pnpm.int.spec.ts runs the scenario with pnpm.
 * Only the integrated-style library has a project.json: every target is inferred by the plugin.
 * One workspace for every check (creating it is the slow part); the temp dir is removed at the end.
 * Needs: the packed plugin (`nx run executors:pack`, a dependency of this project's test target), npm with
 * the registry (or its cache), git, cargo with BUILDONCE_CARGO_OFFLINE_REGISTRY (default Debian's registry).
 */
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { currentDeployment, git, matrixChecks, nx, packDir, sh, startDeployed, step, useAdoptedWorkspace, versionOf } from './matrix';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('a fresh Nx workspace adopts buildonce', () => {
  const { tmp, ws, children } = useAdoptedWorkspace('npm');
  let apiVersion = '';

  it('writes no project.json: the plugin infers every target of the generated service', () => {
    // the integrated-style library's project.json is the only one, and it is the user's
    expect(git(ws, 'ls-files', '*project.json').trim()).toBe('libs/legacy/project.json');
    const nxJson = JSON.parse(readFileSync(join(ws, 'nx.json'), 'utf8')) as { plugins: Array<string | { plugin: string }> };
    expect(nxJson.plugins.map((p) => (typeof p === 'string' ? p : p.plugin))).toContain('@buildonce/nx');
    // what `nx add` ran: the init generator wrote the default pipeline and ignores the local store
    const config = JSON.parse(readFileSync(join(ws, 'buildonce.json'), 'utf8')) as { environments: { name: string }[] };
    expect(config.environments.map((e) => e.name)).toEqual(['dev', 'staging', 'prod']);
    expect(readFileSync(join(ws, '.gitignore'), 'utf8')).toMatch(/^\.buildonce\/?$/m);
    const project = JSON.parse(nx(ws, 'show', 'project', '@acme/api', '--json')) as { targets: Record<string, { executor?: string }> };
    for (const t of ['build', 'publish', 'promote', 'rollback', 'releases', 'resolve', 'retention']) expect(project.targets[t], t).toBeDefined();
    expect(project.targets.build!.executor).toBe('@buildonce/nx:package-tarball');
    // the generated code typechecks as is in the ts preset's TypeScript solution setup
    step('nx run @acme/api:typecheck', () => nx(ws, 'run', '@acme/api:typecheck'));
  });

  matrixChecks('npm', () => ws, children);

  it('publishes, then promotes the affected services to dev and staging', () => {
    nx(ws, 'run', '@acme/api:publish');
    apiVersion = versionOf(ws, '@acme/api', 'dist/apps/api');
    expect(apiVersion).toMatch(/^[0-9a-f]{8,}$/);
    expect(nx(ws, 'run', '@acme/api:publish')).toMatch(/already published/);
    nx(ws, 'affected', '-t', 'promote', '--env=dev', '--base=HEAD~1');
    nx(ws, 'affected', '-t', 'promote', '--env=staging', '--base=HEAD~1');
    const info = JSON.parse(readFileSync(join(currentDeployment(ws, 'staging', 'acme--api'), 'artifact-info.json'), 'utf8')) as {
      project: string;
      version: string;
    };
    expect(info).toMatchObject({ project: '@acme/api', version: apiVersion });
  });

  it('the deployed tarball boots and answers /health with its version and the library', async () => {
    const { port, child, health } = await startDeployed(ws, 'staging', 'acme--api', children);
    expect(health).toEqual({ status: 'ok', version: apiVersion, greeter: 'greeter', util: 'util' });
    const release = (await fetch(`http://127.0.0.1:${port}/release`).then((r) => r.json())) as Record<string, unknown>;
    // publishedAt comes from the stored manifest the deploy wrote beside the bundle (commit only in CI: GITHUB_SHA)
    expect(release).toMatchObject({ project: '@acme/api', version: apiVersion, publishedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    child.kill('SIGTERM');
  });

  it('the version ignores docs and .gitignore, follows the workspace library and the plugin version', () => {
    const v = () => versionOf(ws, '@acme/api', 'dist/apps/api');
    const restore = () => git(ws, 'checkout', '--', '.');

    appendFileSync(join(ws, 'apps/api/README.md'), '\nMore words.\n');
    expect(v(), 'README edit').toBe(apiVersion);
    restore();

    appendFileSync(join(ws, '.gitignore'), '\n# a comment\ntmp/\n');
    expect(v(), '.gitignore edit').toBe(apiVersion);
    restore();

    appendFileSync(join(ws, 'packages/util/src/lib/util.ts'), "\nexport const extra = 'x';\n");
    const libVersion = v();
    expect(libVersion, 'workspace library edit').not.toBe(apiVersion);
    restore();
    expect(v(), 'library edit reverted').toBe(apiVersion);

    // the same plugin, one patch version later
    const staged = join(tmp, 'bumped');
    cpSync(join(packDir, 'package'), staged, { recursive: true });
    const pkg = JSON.parse(readFileSync(join(staged, 'package.json'), 'utf8')) as { version: string };
    pkg.version = pkg.version.replace(/\d+$/, (n) => String(Number(n) + 1));
    writeFileSync(join(staged, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
    const tgz = sh(staged, 'npm', ['pack', '--silent', '--pack-destination', tmp]).trim().split('\n').pop()!;
    sh(ws, 'npm', ['install', '--save-dev', '--no-audit', '--no-fund', '--loglevel=error', join(tmp, tgz)]);
    expect(v(), 'plugin version bump').not.toBe(apiVersion);
    git(ws, 'add', '-A');
    git(ws, 'commit', '-qm', `@buildonce/nx ${pkg.version}`);
  });

  it('a generated rust-lambda publishes, keeps its version through tsconfig.base.json edits, and a second clone publishes the same bytes under the same version', () => {
    nx(ws, 'g', '@buildonce/nx:rust-lambda', 'scorer', '--no-interactive');
    git(ws, 'add', '-A');
    git(ws, 'commit', '-qm', 'scorer lambda');
    expect(git(ws, 'ls-files', '*project.json').trim()).toBe('libs/legacy/project.json');
    nx(ws, 'run', 'scorer:publish');
    const version = versionOf(ws, 'scorer', 'dist/apps/scorer');

    // TypeScript configuration is no input of a Rust Lambda: a new library path and a stricter compiler keep its version
    const tsconfig = join(ws, 'tsconfig.base.json');
    const before = readFileSync(tsconfig, 'utf8');
    const json = JSON.parse(before) as { compilerOptions: Record<string, unknown> & { paths?: Record<string, string[]> } };
    json.compilerOptions.paths = { ...json.compilerOptions.paths, '@acme/new-lib': ['./libs/new-lib/src/index.ts'] };
    json.compilerOptions.noUnusedParameters = !json.compilerOptions.noUnusedParameters;
    writeFileSync(tsconfig, JSON.stringify(json, null, 2) + '\n');
    expect(versionOf(ws, 'scorer', 'dist/apps/scorer'), 'tsconfig.base.json edit').toBe(version);
    writeFileSync(tsconfig, before);

    const clone = join(tmp, 'acme-clone');
    git(tmp, 'clone', '-q', ws, clone);
    symlinkSync(join(ws, 'node_modules'), join(clone, 'node_modules'), 'dir');
    nx(clone, 'run', 'scorer:publish');
    expect(versionOf(clone, 'scorer', 'dist/apps/scorer')).toBe(version);
    const zip = (root: string) =>
      readdirSync(join(root, 'dist/apps/scorer'))
        .filter((f) => f.endsWith('.zip'))
        .map((f) => join(root, 'dist/apps/scorer', f));
    expect(zip(ws)).toHaveLength(1);
    expect(sha256(zip(clone)[0]!)).toBe(sha256(zip(ws)[0]!));
  }, 600_000);
});
