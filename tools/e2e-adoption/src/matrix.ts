/**
 * The adoption scenario every package manager runs (adoption.int.spec.ts: npm, adoption-pnpm.int.spec.ts: pnpm,
 * adoption-yarn.int.spec.ts: yarn berry with the node-modules linker),
 * one workspace per package manager (creating it is the slow part):
 *   create-nx-workspace@23.2.1 --preset=ts → nx add @buildonce/nx (the packed tarball) → the library shapes Nx
 *   makes: `packages/greeter` (@nx/js:lib default: tsc-built, `exports` with the `@acme/source` condition),
 *   `packages/util` (--bundler=none), `libs/legacy` (integrated style: tsconfig `paths`, no workspace package)
 *   → two services from `nx g @buildonce/nx:node-service`: `api` (CommonJS, imports greeter and util) and
 *   `esm-api` (`"type": "module"`, `import.meta.url`, top-level await, imports greeter and legacy).
 * Then {@link matrixChecks}: publish, promote to dev, start each from its deployed directory and GET /health;
 * typecheck and library builds leave every version unchanged; a bundle that throws at import fails the build
 * with one line.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '@buildonce/testing';

export type PackageManager = 'npm' | 'pnpm' | 'yarn';

export const repoRoot = resolve(__dirname, '../../..');
export const packDir = join(repoRoot, 'dist/packages/buildonce-nx');
const registry = process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? '/usr/share/cargo/registry';

/** The environment of every command: none of the outer Nx task's variables, no store/AWS override. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(NX_|BUILDONCE_|AWS_|npm_|VITEST|GITHUB_|PNPM_)/.test(k) || k === 'NODE_OPTIONS') continue;
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
    // yarn berry refuses to touch its lockfile under CI=true; the scenario adds packages on purpose
    YARN_ENABLE_IMMUTABLE_INSTALLS: 'false',
    ...extra,
  };
}

/** Runs a command (argument array), returns stdout; on failure throws with the tail of both outputs. */
export function sh(cwd: string, cmd: string, args: string[], extra: Record<string, string> = {}): string {
  try {
    return execFileSync(cmd, args, { cwd, env: cleanEnv(extra), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    const tail = (s = '') => s.split('\n').slice(-40).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${err.status}\n--- stdout\n${tail(err.stdout)}\n--- stderr\n${tail(err.stderr)}`);
  }
}

/** Like sh, but never throws: exit status and both outputs. */
export function shResult(cwd: string, cmd: string, args: string[]): { status: number; output: string } {
  try {
    return { status: 0, output: execFileSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }) };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    return { status: err.status ?? 1, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

export const nx = (cwd: string, ...args: string[]) => sh(cwd, 'npx', ['nx', ...args]);
export const git = (cwd: string, ...args: string[]) => sh(cwd, 'git', args);

/** Runs one setup step and logs its wall time (the e2e is slow; this says where the time goes). */
export function step<T>(what: string, fn: () => T): T {
  const t0 = Date.now();
  const r = fn();
  process.stderr.write(`[e2e-adoption] ${what}: ${Date.now() - t0} ms\n`);
  return r;
}

/** The packed plugin tarball (`buildonce-nx-<version>.tgz`) the pack target wrote. */
export function packedTarball(): string {
  const tgz = existsSync(packDir) ? readdirSync(packDir).filter((f) => /^buildonce-nx-.*\.tgz$/.test(f)) : [];
  if (tgz.length !== 1) throw new Error(`expected one buildonce-nx-*.tgz in ${packDir}, found ${tgz.length}: run \`npx nx run executors:pack\` first`);
  return join(packDir, tgz[0]!);
}

/** Builds (a cache hit when nothing changed) and returns the version of a project's artifact. */
export function versionOf(cwd: string, project: string, outDir: string): string {
  nx(cwd, 'run', `${project}:build`);
  return (JSON.parse(readFileSync(join(cwd, outDir, 'artifact.json'), 'utf8')) as { version: string }).version;
}

/** The `current` release directory of a project's local deployment (project key: the store's encoding). */
export function currentDeployment(ws: string, env: string, projectKey: string): string {
  const dir = join(ws, '.buildonce/deploy', env, projectKey, 'current');
  if (!existsSync(dir)) throw new Error(`no deployment of ${projectKey} in ${env} (${dir})`);
  return dir;
}

const edit = (file: string, f: (text: string) => string) => writeFileSync(file, f(readFileSync(file, 'utf8')));
const editJson = <T>(file: string, f: (j: T) => void) =>
  edit(file, (t) => {
    const j = JSON.parse(t) as T;
    f(j);
    return JSON.stringify(j, null, 2) + '\n';
  });

/** The services of the scenario: project name, folder, and what GET /health answers besides status and version. */
export const SERVICES = [
  { project: '@acme/api', key: 'acme--api', dir: 'apps/api', libs: { greeter: 'greeter', util: 'util' } },
  { project: '@acme/esm-api', key: 'acme--esm-api', dir: 'apps/esm-api', libs: { greeter: 'greeter', legacy: 'legacy', format: 'esm' } },
] as const;

/**
 * Creates the scenario's workspace in `tmp/acme` with package manager `pm` (see the file comment), installs,
 * and commits it. ~2-4 min (create-nx-workspace and two installs).
 * @returns the workspace root
 */
export function createAdoptedWorkspace(tmp: string, pm: PackageManager): string {
  const tarball = packedTarball();
  const ws = join(tmp, 'acme');
  // create-nx-workspace --packageManager=yarn runs `yarn set version`, which downloads yarn from
  // repo.yarnpkg.com; with no route there the yarn workspace is made the way a team moves to yarn berry:
  // the npm workspace, its lockfile replaced by yarn's, the installed yarn release checked in as yarnPath
  step(`[${pm}] create-nx-workspace --preset=ts`, () =>
    sh(tmp, 'npx', [
      '-y',
      'create-nx-workspace@23.2.1',
      'acme',
      '--preset=ts',
      '--nxCloud=skip',
      `--packageManager=${pm === 'yarn' ? 'npm' : pm}`,
      '--interactive=false',
    ]),
  );
  if (pm === 'yarn') step('[yarn] yarn berry (node-modules linker) replaces npm', () => adoptYarnBerry(ws));
  // `nx add` installs the package with the workspace's package manager, then runs its init generator; the
  // packed tarball stands in for the registry with a `file:` spec
  step(`[${pm}] nx add @buildonce/nx`, () => nx(ws, 'add', `@buildonce/nx@file:${tarball}`));
  const lib = ['--unitTestRunner=none', '--linter=none', '--no-interactive'];
  step(`[${pm}] nx g @nx/js:lib (tsc, none)`, () => {
    nx(ws, 'g', '@nx/js:lib', 'packages/greeter', ...lib);
    nx(ws, 'g', '@nx/js:lib', 'packages/util', '--bundler=none', ...lib);
  });
  // an integrated-style library: a project.json and a tsconfig `paths` entry, no package.json, no workspace link
  mkdirSync(join(ws, 'libs/legacy/src'), { recursive: true });
  writeFileSync(
    join(ws, 'libs/legacy/project.json'),
    JSON.stringify({ name: 'legacy', sourceRoot: 'libs/legacy/src', projectType: 'library' }, null, 2) + '\n',
  );
  writeFileSync(join(ws, 'libs/legacy/src/index.ts'), "export const legacy = (): string => 'legacy';\n");
  editJson<{ compilerOptions: { paths?: Record<string, string[]> } }>(join(ws, 'tsconfig.base.json'), (j) => {
    j.compilerOptions.paths = { ...j.compilerOptions.paths, '@acme/legacy': ['./libs/legacy/src/index.ts'] };
  });
  step(`[${pm}] nx g @buildonce/nx:node-service api, esm-api`, () => {
    nx(ws, 'g', '@buildonce/nx:node-service', 'api', '--skipInstall', '--no-interactive');
    nx(ws, 'g', '@buildonce/nx:node-service', 'esm-api', '--skipInstall', '--no-interactive');
  });
  const health = "res.json({ status: 'ok', version: release.version })";
  const link = pm === 'npm' ? '*' : 'workspace:*';
  // CommonJS service: a tsc-built default library (through its source condition) and a --bundler=none library
  edit(
    join(ws, 'apps/api/src/app.ts'),
    (t) =>
      `import { greeter } from '@acme/greeter';\nimport { util } from '@acme/util';\n${t.replace(health, "res.json({ status: 'ok', version: release.version, greeter: greeter(), util: util() })")}`,
  );
  editJson<{ dependencies: Record<string, string> }>(join(ws, 'apps/api/package.json'), (p) =>
    Object.assign(p.dependencies, { '@acme/greeter': link, '@acme/util': link }),
  );
  // ESM service: "type": "module", import.meta.url for its directory, top-level await, a `paths` library
  edit(
    join(ws, 'apps/esm-api/src/app.ts'),
    (t) =>
      `import { greeter } from '@acme/greeter';\nimport { legacy } from '@acme/legacy';\n${t.replace(health, "res.json({ status: 'ok', version: release.version, greeter: greeter(), legacy: legacy(), format: typeof import.meta.url === 'string' ? 'esm' : 'cjs' })")}`,
  );
  edit(join(ws, 'apps/esm-api/src/main.ts'), (t) =>
    [
      "import { dirname } from 'node:path';",
      "import { fileURLToPath } from 'node:url';",
      t.replace('loadRelease(__dirname,', 'loadRelease(dirname(fileURLToPath(import.meta.url)),'),
      '// top-level await: only an ESM bundle can hold it',
      "await new Promise((ready) => server.once('listening', ready));",
      '',
    ].join('\n'),
  );
  editJson<{ type?: string; dependencies: Record<string, string> }>(join(ws, 'apps/esm-api/package.json'), (p) => {
    p.type = 'module';
    p.dependencies['@acme/greeter'] = link;
  });
  const install = { npm: ['install', '--no-audit', '--no-fund', '--loglevel=error'], pnpm: ['install', '--no-frozen-lockfile'], yarn: ['install'] };
  step(`[${pm}] ${pm} install`, () => sh(ws, pm, install[pm]));
  git(ws, 'add', '-A');
  git(ws, 'commit', '-qm', 'adopt buildonce: three library shapes, a CommonJS and an ESM service');
  return ws;
}

/**
 * Turns the npm workspace `ws` into a yarn berry one (what create-nx-workspace --packageManager=yarn writes:
 * `.yarnrc.yml` with `nodeLinker: node-modules` and `enableScripts: false`), pinned to the yarn on PATH through
 * a checked-in `yarnPath` release, installs and commits.
 */
function adoptYarnBerry(ws: string): void {
  const yarnVersion = sh(ws, 'yarn', ['--version']).trim();
  const release = join(ws, '.yarn/releases', `yarn-${yarnVersion}.cjs`);
  mkdirSync(dirname(release), { recursive: true });
  // the yarn on PATH is @yarnpkg/cli-dist's bin/yarn.js (a symlink): its real file is the release
  copyFileSync(realpathSync(sh(ws, 'which', ['yarn']).trim()), release);
  writeFileSync(
    join(ws, '.yarnrc.yml'),
    `nodeLinker: node-modules\nenableScripts: false\nenableTelemetry: false\nyarnPath: .yarn/releases/yarn-${yarnVersion}.cjs\n`,
  );
  editJson<{ packageManager?: string }>(join(ws, 'package.json'), (p) => {
    p.packageManager = `yarn@${yarnVersion}`;
  });
  rmSync(join(ws, 'package-lock.json'));
  rmSync(join(ws, 'node_modules'), { recursive: true, force: true });
  appendFileSync(join(ws, '.gitignore'), '\n# yarn berry\n.yarn/install-state.gz\n');
  sh(ws, 'yarn', ['install']);
  git(ws, 'add', '-A');
  git(ws, 'commit', '-qm', 'yarn berry (node-modules linker)');
}

/**
 * The suite's workspace for package manager `pm`, in a new temp dir: created in a beforeAll (the slow
 * part), its processes killed and the temp dir removed in an afterAll. Call inside the suite's `describe`.
 * BUILDONCE_E2E_KEEP=1 keeps the temp dir; BUILDONCE_E2E_REUSE=<a kept dir whose setup finished> runs the
 * checks on it instead of creating one.
 * @returns `tmp` (the temp dir), `ws` (the workspace root, tmp/acme), `children` (processes to kill at the end)
 */
export function useAdoptedWorkspace(pm: PackageManager): { tmp: string; ws: string; children: ChildProcess[] } {
  const reuse = process.env.BUILDONCE_E2E_REUSE;
  const tmp = reuse ?? mkdtempSync(join(tmpdir(), `buildonce-adoption-${pm}-`));
  const children: ChildProcess[] = [];
  beforeAll(() => {
    if (!reuse) step(`${pm} workspace ready`, () => createAdoptedWorkspace(tmp, pm));
  }, 2_400_000);
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    if (process.env.BUILDONCE_E2E_KEEP || reuse) process.stderr.write(`[e2e-adoption] kept ${tmp}\n`);
    else rmSync(tmp, { recursive: true, force: true });
  });
  return { tmp, ws: join(tmp, 'acme'), children };
}

/**
 * Starts a deployed service as its host would: `node main.js` in the `current` directory of its deployment to
 * `env`, on a free loopback port (PORT, HOST), with the clean environment; then polls GET /health until it
 * answers JSON (15 s at most).
 * @param children the process is added to it (the caller's afterAll kills what is left)
 * @returns the port, the process and the /health body (undefined: it never answered)
 * @throws Error when there is no such deployment
 */
export async function startDeployed(
  ws: string,
  env: string,
  projectKey: string,
  children: ChildProcess[],
): Promise<{ port: number; child: ChildProcess; health: unknown }> {
  const port = await freePort();
  const dir = currentDeployment(ws, env, projectKey);
  const child = spawn(process.execPath, ['main.js'], { cwd: dir, env: { ...cleanEnv(), PORT: String(port), HOST: '127.0.0.1' }, stdio: 'ignore' });
  children.push(child);
  let health: unknown;
  for (let i = 0; i < 150 && health === undefined; i++) {
    health = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.json(),
      () => undefined,
    );
    if (health === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  return { port, child, health };
}

/** GET /health of a deployed service started from its `current` directory in dev ({@link startDeployed}). */
async function startAndCheck(ws: string, s: (typeof SERVICES)[number], version: string, children: ChildProcess[]): Promise<void> {
  const { child, health } = await startDeployed(ws, 'dev', s.key, children);
  expect(health, s.project).toEqual({ status: 'ok', version, ...s.libs });
  child.kill('SIGTERM');
}

/**
 * Declares the scenario's checks (vitest `it`s) against the workspace `get()` returns.
 * @param children processes to kill at the end (the caller's afterAll)
 */
export function matrixChecks(pm: PackageManager, get: () => string, children: ChildProcess[]): void {
  const versions: Record<string, string> = {};

  it(`[${pm}] every library shape bundles: both services publish, promote to dev, and start from the deployed directory`, async () => {
    const ws = get();
    for (const s of SERVICES) {
      expect(nx(ws, 'run', `${s.project}:publish`), s.project).not.toMatch(/already published/);
      versions[s.project] = versionOf(ws, s.project, `dist/${s.dir}`);
    }
    nx(ws, 'run-many', '-t', 'promote', '--env=dev', `--projects=${SERVICES.map((s) => s.project).join(',')}`);
    for (const s of SERVICES) {
      const pkg = JSON.parse(readFileSync(join(currentDeployment(ws, 'dev', s.key), 'package.json'), 'utf8')) as { type: string };
      expect(pkg.type, s.project).toBe(s.project === '@acme/esm-api' ? 'module' : 'commonjs');
      await startAndCheck(ws, s, versions[s.project]!, children);
    }
  }, 900_000);

  it(`[${pm}] typecheck and library builds leave every version unchanged`, () => {
    const ws = get();
    step(`[${pm}] typecheck`, () => nx(ws, 'run-many', '-t', 'typecheck', '--projects=@acme/api,@acme/greeter,@acme/util'));
    nx(ws, 'run', '@acme/greeter:build');
    expect(existsSync(join(ws, 'packages/greeter/dist/index.js'))).toBe(true);
    for (const s of SERVICES) expect(versionOf(ws, s.project, `dist/${s.dir}`), s.project).toBe(versions[s.project]);
    // nothing the compiler wrote is left for git to pick up
    expect(git(ws, 'status', '--porcelain').trim()).toBe('');
  }, 900_000);

  it(`[${pm}] a bundle that throws at import fails the build with one line and gets no version`, () => {
    const ws = get();
    const main = join(ws, 'apps/esm-api/src/main.ts');
    const before = readFileSync(main, 'utf8');
    writeFileSync(main, `if (!process.env.ACME_DATABASE_URL) throw new Error('ACME_DATABASE_URL is not set');\n${before}`);
    try {
      const r = shResult(ws, 'npx', ['nx', 'run', '@acme/esm-api:build']);
      expect(r.status).not.toBe(0);
      const lines = r.output.split('\n').filter((l) => l.includes('start check'));
      expect(lines, r.output).toHaveLength(1);
      expect(lines[0]).toMatch(
        /\[@acme\/esm-api\] start check: importing main\.js threw Error: ACME_DATABASE_URL is not set at apps\/esm-api\/src\/main\.ts:1:\d+; .*"startCheck": false/,
      );
      expect(existsSync(join(ws, 'dist/apps/esm-api/artifact.json'))).toBe(false);
    } finally {
      writeFileSync(main, before);
    }
    expect(versionOf(ws, '@acme/esm-api', 'dist/apps/esm-api')).toBe(versions['@acme/esm-api']);
  }, 900_000);
}
