import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutorContext } from '@nx/devkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import cargoLambdaZip, { normalizeOptions as normalizeCargo } from './cargo-lambda-zip/executor';
import { normalizeOptions as normalizeTarball, workspaceConditions } from './package-tarball/executor';
import { normalizeOptions as normalizeImage } from './oci-image/executor';
import promote, { normalizeOptions as normalizePromote } from './promote/executor';
import publish, { normalizeOptions as normalizePublish } from './publish-artifact/executor';
import { normalizeOptions as normalizeReleases } from './releases/executor';
import resolve from './resolve/executor';
import { normalizeOptions as normalizeRetention } from './retention/executor';
import rollback, { normalizeOptions as normalizeRollback } from './rollback/executor';
import type { ProjectFacts } from '../lib/context';
import type { ProjectName } from '@buildonce/values';

/** Executors against hand-made ExecutorContexts (nrwl/nx release-publish.impl.spec.ts style). */
let root: string;
let stderr: string[];
let stdout: string[];

function context(project = '@acme/api', verbose = false): ExecutorContext {
  return {
    root,
    cwd: root,
    isVerbose: verbose,
    projectName: project,
    projectsConfigurations: { version: 2, projects: { [project]: { root: 'apps/api' } } },
    nxJsonConfiguration: {},
    projectGraph: { nodes: {}, dependencies: {} },
  } as ExecutorContext;
}

const facts = (): ProjectFacts => ({
  project: '@acme/api' as ProjectName,
  workspaceRoot: root,
  projectRoot: join(root, 'apps/api'),
  defaultOutputDir: join(root, 'dist/apps/api'),
});
const deploy = {
  target: 'local',
  functionName: '{project}-{env}',
  alias: '{env}',
  parameterName: '/buildonce/{env}/{project}',
  localRoot: '.buildonce/deploy',
} as const;
const log = () => undefined;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'executors-'));
  writeFileSync(join(root, 'nx.json'), '{}\n');
  stderr = [];
  stdout = [];
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void stderr.push(a.join(' ')));
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void stdout.push(a.join(' ')));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('normalizeOptions', () => {
  it('promote and rollback pass the schema-defaulted options through, outputPath relative to the workspace', () => {
    expect(normalizePromote({ env: 'dev', dryRun: true, ...deploy }, facts(), log)).toMatchObject({
      project: '@acme/api',
      env: 'dev',
      outputDir: join(root, 'dist/apps/api'),
      deploy,
      store: undefined,
      dryRun: true,
    });
    expect(normalizePromote({ env: 'dev', dryRun: false, outputPath: 'out/x', store: 's3://b/p', ...deploy }, facts(), log)).toMatchObject({
      outputDir: join(root, 'out/x'),
      store: 's3://b/p',
    });
    expect(normalizeRollback({ env: 'prod', to: 'v0123', dryRun: false, ...deploy }, facts(), log).to).toBe('0123');
    expect(normalizeRollback({ env: 'prod', to: 77, dryRun: false, ...deploy }, facts(), log).to).toBe('77');
    expect(() => normalizeRollback({ env: 'prod', to: 12345678901234567890, dryRun: false, ...deploy }, facts(), log)).toThrow(/--to=v<version>/);
    expect(normalizeRollback({ env: 'prod', reason: 'p99 doubled', dryRun: false, ...deploy }, facts(), log).reason).toBe('p99 doubled');
    expect(normalizePromote({ env: 'prod', reason: 42, dryRun: false, ...deploy }, facts(), log).reason).toBe('42');
    expect('reason' in normalizePromote({ env: 'prod', dryRun: false, ...deploy }, facts(), log)).toBe(false);
  });

  it('releases picks one output format; retention scopes to the project', () => {
    expect(normalizeReleases({ json: true, markdown: true, limit: 20 }, facts())).toMatchObject({ format: 'json', limit: 20, env: undefined });
    expect(normalizeReleases({ json: false, markdown: true, limit: 5, env: 'dev', field: 'commit' }, facts())).toMatchObject({
      format: 'markdown',
      env: 'dev',
      field: 'commit',
    });
    expect(normalizeRetention({ olderThan: 30, keep: 10, dryRun: true }, facts(), log)).toMatchObject({
      projects: ['@acme/api'],
      olderThanDays: 30,
      keep: 10,
      pr: undefined,
      dryRun: true,
    });
  });

  it('retention refuses what Nx coerced from empty strings and every number below 1 (keep, olderThan, pr), like the CLI', () => {
    const ok = { olderThan: 30, keep: 10, dryRun: false };
    for (const arg of ['--keep=', '--older-than=', '--olderThan=', '--pr=', '--keep= ']) {
      // Nx hands the executor 0 for an empty value; the raw command line still shows it was empty
      expect(() => normalizeRetention(ok, facts(), log, ['node', 'nx', 'run', 'api:retention', arg]), arg).toThrow(/--(keep|older-than|olderThan|pr) is empty/);
    }
    const bad: Partial<typeof ok & { pr: number }>[] = [
      { keep: 0 },
      { keep: -1 },
      { keep: 2.5 },
      { keep: Number.NaN },
      { olderThan: 0 },
      { olderThan: 0.5 },
      { olderThan: Number.NaN },
      { pr: 0 },
      { pr: -3 },
    ];
    for (const b of bad)
      expect(() => normalizeRetention({ ...ok, ...b }, facts(), log), JSON.stringify(b)).toThrow(
        /must be (a whole number|a number of days|a pull request number) >= 1/,
      );
    expect(normalizeRetention({ ...ok, keep: 1, olderThan: 1, pr: 7 }, facts(), log, ['--keep=1', '--pr=7'])).toMatchObject({
      keep: 1,
      olderThanDays: 1,
      pr: 7,
    });
    // the schema says the same, so Nx itself refuses 0 before the executor runs
    const schema = JSON.parse(readFileSync(join(__dirname, 'retention/schema.json'), 'utf8'));
    expect([schema.properties.keep.minimum, schema.properties.olderThan.minimum, schema.properties.pr.minimum]).toEqual([1, 1, 1]);
  });

  it('builds take the version from NX_TASK_HASH and derive unset options from the project', () => {
    const cargo = normalizeCargo(
      { architecture: 'arm64', binary: 'bootstrap', runtime: 'provided.al2023', cargoLambda: 'auto', toolchain: '+stable' },
      facts(),
      { NX_TASK_HASH: '42', BUILDONCE_CARGO_OFFLINE_REGISTRY: '/reg' },
      log,
    );
    expect(cargo).toMatchObject({ version: '42', cargoDir: join(root, 'apps/api'), architecture: 'arm64', offlineRegistry: '/reg', toolchain: '+stable' });
    const tar = normalizeTarball(
      { entry: 'main.js', target: 'node22', architecture: 'x86_64', minify: true, sourcemap: false, startCheck: true, startCheckTimeout: 60_000 },
      facts(),
      { NX_TASK_HASH: '7' },
      'd',
      log,
    );
    expect(tar).toMatchObject({
      version: '7',
      main: join(root, 'apps/api/src/main.ts'),
      tarballName: 'acme--api-deployment.tar.gz',
      runtime: 'node>=22',
      sourcemap: false,
      description: 'd',
    });
    expect(() => normalizeCargo({ architecture: 'arm64', binary: 'b', runtime: 'provided.al2023', cargoLambda: 'auto' }, facts(), {}, log)).toThrow(
      /NX_TASK_HASH is not set/,
    );
    // the start check is on unless turned off; the format is the app's unless set; conditions come from tsconfig.base.json
    expect(tar).toMatchObject({ startCheck: { timeoutMs: 60_000 }, conditions: [] });
    expect(tar.format).toBeUndefined();
    const off = normalizeTarball(
      {
        entry: 'main.js',
        target: 'node22',
        architecture: 'x86_64',
        minify: true,
        sourcemap: false,
        startCheck: false,
        startCheckTimeout: 60_000,
        format: 'esm',
      },
      facts(),
      { NX_TASK_HASH: '7' },
      'd',
      log,
      ['@acme/source'],
    );
    expect(off).toMatchObject({ format: 'esm', conditions: ['@acme/source'] });
    expect(off.startCheck).toBeUndefined();
    expect(workspaceConditions(root)).toEqual([]);
    writeFileSync(join(root, 'tsconfig.base.json'), '{\n  // Nx TS solution setup\n  "compilerOptions": { "customConditions": ["@acme/source"], },\n}\n');
    expect(workspaceConditions(root)).toEqual(['@acme/source']);
    expect(normalizePublish({ preview: true, forcePathStyle: false, dryRun: false }, facts(), log)).toMatchObject({
      preview: true,
      forcePathStyle: undefined,
      outputDir: join(root, 'dist/apps/api'),
    });
    const files = [{ source: 'dist/apps/x/bootstrap.zip', zipEntry: 'bootstrap', destination: '${LAMBDA_RUNTIME_DIR}/bootstrap', mode: '0755' }];
    const image = normalizeImage(
      { baseImage: `r.io/b@sha256:${'a'.repeat(64)}`, platform: 'linux/arm64', files, cmd: ['bootstrap'], runtime: 'provided.al2023', cacheDir: 'c' },
      facts(),
      { NX_TASK_HASH: '9' },
      log,
    );
    expect(image).toMatchObject({
      version: '9',
      platform: 'linux/arm64',
      handler: 'bootstrap',
      outputDir: join(root, 'dist/apps/api'),
      cacheDir: join(root, 'c'),
      files,
    });
    expect(normalizePublish({ preview: false, forcePathStyle: false, dryRun: false, registry: 'h/r' }, facts(), log)).toMatchObject({ registry: 'h/r' });
  });
});

describe('failures', () => {
  it('an expected failure prints one line with the project, and success false', async () => {
    const r = await promote({ env: 'dev', dryRun: false, ...deploy }, context());
    expect(r).toEqual({ success: false });
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toMatch(/^\[@acme\/api\] .*artifact\.json/);
  });

  it('outside Nx (no NX_TASK_HASH) a build fails with one line naming the fix', async () => {
    const saved = process.env.NX_TASK_HASH;
    delete process.env.NX_TASK_HASH;
    try {
      const r = await cargoLambdaZip({ architecture: 'x86_64', binary: 'bootstrap', runtime: 'provided.al2023', cargoLambda: 'auto' }, context());
      expect(r.success).toBe(false);
      expect(stderr).toEqual(['[@acme/api] NX_TASK_HASH is not set: run this through nx (nx run <project>:build), the task hash is the artifact version']);
    } finally {
      if (saved !== undefined) process.env.NX_TASK_HASH = saved;
    }
  });

  it('an unexpected TypeError is reported as a bug with its stack', async () => {
    const broken = {
      ...context(),
      projectsConfigurations: new Proxy({} as ExecutorContext['projectsConfigurations'], { get: () => (undefined as unknown as { x: number }).x }),
    };
    const r = await resolve({ env: 'dev' }, broken as ExecutorContext);
    expect(r).toEqual({ success: false });
    expect(stderr[0]).toMatch(/^\[@acme\/api\] TypeError: /);
    expect(stderr.join('\n')).toMatch(/at .*executors\.spec\.ts/);
    expect(stderr.at(-1)).toContain('this is a bug in buildonce');
  });

  it("Nx's --verbose (context.isVerbose) adds the stack to an expected failure", async () => {
    const r = await rollback({ env: 'dev', dryRun: false, ...deploy }, context('@acme/api', true));
    expect(r.success).toBe(false);
    expect(stderr[0]).toMatch(/^\[@acme\/api\] /);
    expect(stderr.length).toBe(2);
    expect(stderr[1]).toMatch(/\n\s+at /);
  });

  it('publish with nothing built fails with one line and writes nothing', async () => {
    const r = await publish({ preview: false, forcePathStyle: false, dryRun: false }, context());
    expect(r.success).toBe(false);
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toMatch(/^\[@acme\/api\] .*nx run @acme\/api:build/);
  });
});
