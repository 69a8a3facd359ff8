/**
 * Adoption end to end, as a new user would do it (the one test allowed to `npm install`):
 *   create-nx-workspace@23.2.1 --preset=ts → nx add @buildonce/nx (the packed tarball as a `file:` spec: npm
 *   install + the init generator) →
 *   a workspace library (@nx/js:lib) + nx g @buildonce/nx:node-service importing it → publish, promote dev,
 *   promote staging → boot the deployed tarball and GET /health → version checks (README, .gitignore,
 *   library edit, plugin version bump) → nx g @buildonce/nx:rust-lambda → publish, and a second clone
 *   publishes a byte-identical zip.
 * Zero hand-written project.json lines: every target is inferred by the plugin.
 * One workspace for every check (creating it is the slow part); the temp dir is removed at the end.
 * Needs: the packed plugin (`nx run executors:pack`, a dependency of this project's test target), npm with
 * the registry (or its cache), git, cargo with BUILDONCE_CARGO_OFFLINE_REGISTRY (default Debian's registry).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@buildonce/testing';

const repoRoot = resolve(__dirname, '../../..');
const packDir = join(repoRoot, 'dist/packages/buildonce-nx');
const registry = process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? '/usr/share/cargo/registry';

const tmp = mkdtempSync(join(tmpdir(), 'buildonce-adoption-'));
const ws = join(tmp, 'acme');

/** The environment of every command: none of the outer Nx task's variables, no store/AWS override. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(NX_|BUILDONCE_|AWS_|npm_|VITEST|GITHUB_)/.test(k) || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return {
    ...env,
    CI: 'true',
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    FORCE_COLOR: '0',
    GIT_AUTHOR_NAME: 'e2e',
    GIT_AUTHOR_EMAIL: 'e2e@example.com',
    GIT_COMMITTER_NAME: 'e2e',
    GIT_COMMITTER_EMAIL: 'e2e@example.com',
    BUILDONCE_CARGO_OFFLINE_REGISTRY: registry,
    ...extra,
  };
}

/** Runs a command (argument array), returns stdout; on failure throws with the tail of both outputs. */
function sh(cwd: string, cmd: string, args: string[], extra: Record<string, string> = {}): string {
  try {
    return execFileSync(cmd, args, { cwd, env: cleanEnv(extra), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    const tail = (s = '') => s.split('\n').slice(-40).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${err.status}\n--- stdout\n${tail(err.stdout)}\n--- stderr\n${tail(err.stderr)}`);
  }
}
const nx = (cwd: string, ...args: string[]) => sh(cwd, 'npx', ['nx', ...args]);
/** Runs one setup step and logs its wall time (the e2e is slow; this says where the time goes). */
function step<T>(what: string, fn: () => T): T {
  const t0 = Date.now();
  const r = fn();
  process.stderr.write(`[e2e-adoption] ${what}: ${Date.now() - t0} ms\n`);
  return r;
}
const git = (cwd: string, ...args: string[]) => sh(cwd, 'git', args);

/** The packed plugin tarball (`buildonce-nx-<version>.tgz`) the pack target wrote. */
function packedTarball(): string {
  const tgz = existsSync(packDir) ? readdirSync(packDir).filter((f) => /^buildonce-nx-.*\.tgz$/.test(f)) : [];
  if (tgz.length !== 1) throw new Error(`expected one buildonce-nx-*.tgz in ${packDir}, found ${tgz.length}: run \`npx nx run executors:pack\` first`);
  return join(packDir, tgz[0]!);
}

/** Builds (a cache hit when nothing changed) and returns the version of a project's artifact. */
function versionOf(cwd: string, project: string, outDir: string): string {
  nx(cwd, 'run', `${project}:build`);
  return (JSON.parse(readFileSync(join(cwd, outDir, 'artifact.json'), 'utf8')) as { version: string }).version;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The `current` release directory of a local deployment (project keys are the store's encoding). */
function currentDeployment(env: string): string {
  const root = join(ws, '.buildonce/deploy', env);
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'current') found.push(join(dir, e.name));
      else if (e.isDirectory() && depth < 2 && e.name !== 'releases') walk(join(dir, e.name), depth + 1);
    }
  };
  walk(root, 0);
  if (found.length !== 1) throw new Error(`expected one deployment under ${root}, found ${found.join(', ') || 'none'}`);
  return found[0]!;
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (process.env.BUILDONCE_E2E_KEEP) process.stderr.write(`[e2e-adoption] kept ${tmp}\n`);
  else rmSync(tmp, { recursive: true, force: true });
});

describe('a fresh Nx workspace adopts buildonce', () => {
  let apiVersion = '';

  beforeAll(() => {
    const tarball = packedTarball();
    step('create-nx-workspace --preset=ts', () =>
      sh(tmp, 'npx', ['-y', 'create-nx-workspace@23.2.1', 'acme', '--preset=ts', '--nxCloud=skip', '--packageManager=npm', '--interactive=false']),
    );
    // `nx add` installs the package (npm install -D <name>@<spec>) then runs its init generator; the packed
    // tarball stands in for the registry with npm's `file:` spec
    step('nx add @buildonce/nx', () => nx(ws, 'add', `@buildonce/nx@file:${tarball}`));
    step('nx g @nx/js:lib', () => nx(ws, 'g', '@nx/js:lib', 'packages/util', '--bundler=none', '--unitTestRunner=none', '--linter=none', '--no-interactive'));
    step('nx g @buildonce/nx:node-service', () => nx(ws, 'g', '@buildonce/nx:node-service', 'api', '--skipInstall', '--no-interactive'));
    // the service imports the workspace library, like any user code would
    const app = join(ws, 'apps/api/src/app.ts');
    writeFileSync(app, `import { util } from '@acme/util';\n${readFileSync(app, 'utf8').replace("res.json({ status: 'ok', version: release.version })", "res.json({ status: 'ok', version: release.version, util: util() })")}`);
    const pkgPath = join(ws, 'apps/api/package.json');
    const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { dependencies: Record<string, string> };
    pkg.dependencies['@acme/util'] = '*';
    writeFileSync(pkgPath, JSON.stringify(pkg, null, 2) + '\n');
    step('npm install (express, @types, workspace links)', () => sh(ws, 'npm', ['install', '--no-audit', '--no-fund', '--loglevel=error']));
    git(ws, 'add', '-A');
    git(ws, 'commit', '-qm', 'adopt buildonce: util library and api service');
  }, 600_000);

  it('writes no project.json: the plugin infers every target of the generated service', () => {
    expect(git(ws, 'ls-files', '*project.json').trim()).toBe('');
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

  it('publishes, then promotes the affected service to dev and staging', () => {
    expect(nx(ws, 'run', '@acme/api:publish')).not.toMatch(/already published/);
    apiVersion = versionOf(ws, '@acme/api', 'dist/apps/api');
    expect(apiVersion).toMatch(/^[0-9a-f]{8,}$/);
    expect(nx(ws, 'run', '@acme/api:publish')).toMatch(/already published/);
    nx(ws, 'affected', '-t', 'promote', '--env=dev', '--base=HEAD~1');
    nx(ws, 'affected', '-t', 'promote', '--env=staging', '--base=HEAD~1');
    const info = JSON.parse(readFileSync(join(currentDeployment('staging'), 'artifact-info.json'), 'utf8')) as { project: string; version: string };
    expect(info).toMatchObject({ project: '@acme/api', version: apiVersion });
  });

  it('the deployed tarball boots and answers /health with its version and the library', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [join(currentDeployment('staging'), 'main.js')], { env: { ...cleanEnv(), PORT: String(port), HOST: '127.0.0.1' }, stdio: 'ignore' });
    children.push(child);
    let body: unknown;
    for (let i = 0; i < 100 && body === undefined; i++) {
      body = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.json(), () => undefined);
      if (body === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toEqual({ status: 'ok', version: apiVersion, util: 'util' });
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

  it('a generated rust-lambda publishes, and a second clone publishes the same bytes under the same version', () => {
    nx(ws, 'g', '@buildonce/nx:rust-lambda', 'scorer', '--no-interactive');
    git(ws, 'add', '-A');
    git(ws, 'commit', '-qm', 'scorer lambda');
    expect(git(ws, 'ls-files', '*project.json').trim()).toBe('');
    nx(ws, 'run', 'scorer:publish');
    const version = versionOf(ws, 'scorer', 'dist/apps/scorer');

    const clone = join(tmp, 'acme-clone');
    git(tmp, 'clone', '-q', ws, clone);
    symlinkSync(join(ws, 'node_modules'), join(clone, 'node_modules'), 'dir');
    nx(clone, 'run', 'scorer:publish');
    expect(versionOf(clone, 'scorer', 'dist/apps/scorer')).toBe(version);
    const zip = (root: string) => readdirSync(join(root, 'dist/apps/scorer')).filter((f) => f.endsWith('.zip')).map((f) => join(root, 'dist/apps/scorer', f));
    expect(zip(ws)).toHaveLength(1);
    expect(sha256(zip(clone)[0]!)).toBe(sha256(zip(ws)[0]!));
  }, 600_000);
});
