import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256File, writeDeterministicZip, type Manifest } from '@buildonce/artifact';
import { runPromoteCommand, runPublishCommand, runRollbackCommand } from '@buildonce/commands';
import { tempDir } from './temp';
import { parseEnvironmentName, parseProjectName, parseVersion } from '@buildonce/values';

/**
 * Test helper (not exported from the package index): a git workspace whose store is filled by REAL
 * publishes, promotions (local deploy target, real verification processes) and rollbacks through the
 * same commands the executors call. Hostile strings go where people type them: a commit subject, the
 * actor, a rollback reason.
 */
export const HOSTILE = {
  subject: `"><script>window.__pwned='subject'</script><b>bold subject</b>`,
  actor: `<img src=x onerror="window.__pwned='actor'">`,
  reason: `</td><svg onload="window.__pwned='reason'"></svg><a href="javascript:alert(1)">reason</a>`,
} as const;

export const VERSIONS = { v1: '1001', v2: '1002', v3: '1003', p7: '1004', api: '2001' } as const;

export interface SeededWorkspace {
  root: string;
  /** commit of each scorer version (publish and promotion commit) */
  commits: { v1: string; v2: string; v3: string };
  log: string[];
}

const gitEnv = { GIT_AUTHOR_NAME: 'Ada Dev', GIT_AUTHOR_EMAIL: 'ada@example.com', GIT_COMMITTER_NAME: 'Ada Dev', GIT_COMMITTER_EMAIL: 'ada@example.com' };

/**
 * Builds the workspace and its ledger:
 * - scorer 1001 (commit 1) → dev, staging, prod;
 * - scorer 1002 (commit 2, hostile subject; adds weights.json, grows bootstrap.zip) → dev, staging, prod;
 *   then prod is rolled back to 1001 with a hostile reason;
 * - scorer 1003 (commit 3) → dev, then staging, where its verification check fails: a failed entry and an
 *   automatic rollback to 1002; dev is rolled back to 1002 without a reason;
 * - scorer 1004 published from pull request 7 (preview namespace) → pr-7;
 * - @acme/api 2001 → dev.
 * @param store store URL (`file://…` or `s3://…`); processEnv carries AWS settings for S3
 */
export async function seedWorkspace(o: { store?: string; processEnv?: NodeJS.ProcessEnv } = {}): Promise<SeededWorkspace> {
  const root = tempDir('buildonce-ui-ws-');
  const log: string[] = [];
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...gitEnv } }).trim();
  writeFileSync(join(root, 'nx.json'), '{}\n');
  const check = ['node', '-e', `if (process.env.BUILDONCE_VERSION === '${VERSIONS.v3}') { console.error('smoke: /score answers 500'); process.exit(2) }`];
  writeFileSync(
    join(root, 'buildonce.json'),
    JSON.stringify(
      {
        ...(o.store ? { store: o.store } : {}),
        environments: [
          { name: 'dev' },
          { name: 'staging', requires: ['dev'], verify: { kind: 'command', command: check } },
          { name: 'prod', requires: ['staging'] },
        ],
      },
      null,
      2,
    ),
  );
  git('init', '-q', '-b', 'main');
  const commit = (subject: string, file: string) => {
    writeFileSync(join(root, file), subject);
    git('add', '-A');
    git('commit', '-qm', subject);
    return git('rev-parse', 'HEAD');
  };
  const baseEnv = { ...(o.processEnv ?? process.env), BUILDONCE_STORE: undefined } as NodeJS.ProcessEnv;
  const publish = async (name: string, v: string, sha: string, extra: { weights?: boolean; padding?: number; pr?: string } = {}) => {
    const [project, version] = [parseProjectName(name), parseVersion(v)];
    const dir = tempDir('buildonce-ui-artifact-');
    const zip = join(dir, 'bootstrap.zip');
    await writeDeterministicZip([{ name: 'bootstrap', bytes: Buffer.from(`#!/bin/sh\n# ${project} ${version}\n${'#'.repeat(extra.padding ?? 0)}\n`) }], zip);
    const files: Manifest['files'] = [];
    const d = await sha256File(zip);
    files.push({ name: 'bootstrap.zip', size: d.size, sha256: d.hex });
    if (extra.weights) {
      writeFileSync(join(dir, 'weights.json'), JSON.stringify({ version, w: [0.2, 0.3, 0.5] }));
      const w = await sha256File(join(dir, 'weights.json'));
      files.push({ name: 'weights.json', size: w.size, sha256: w.hex });
    }
    const manifest = {
      schemaVersion: 1,
      project,
      version,
      kind: 'lambda-zip',
      files,
      runtime: 'provided.al2023',
      architecture: 'arm64',
      glibcMax: extra.weights ? '2.34' : '2.26',
      handler: 'bootstrap',
      toolchain: extra.weights ? 'rust 1.95.0' : 'rust 1.94.0',
    };
    writeFileSync(join(dir, 'artifact.json'), JSON.stringify(manifest, null, 2));
    await runPublishCommand({
      project,
      workspaceRoot: root,
      outputDir: dir,
      processEnv: {
        ...baseEnv,
        GITHUB_ACTIONS: 'true',
        GITHUB_REPOSITORY: 'acme/scorer',
        GITHUB_SHA: sha,
        GITHUB_RUN_ID: '4242',
        GITHUB_ACTOR: 'ci-bot',
        ...(extra.pr ? { BUILDONCE_PR: extra.pr } : {}),
        BUILDONCE_SIGNING_KEY: '',
      },
      log: (l) => log.push(l),
    });
    return dir;
  };
  const deploy = { target: 'local' as const, localRoot: join(root, '.buildonce/deploy') };
  const promote = (project: string, dir: string, env: string, actor: string, reason?: string) =>
    runPromoteCommand({
      project: parseProjectName(project),
      workspaceRoot: root,
      env: parseEnvironmentName(env),
      outputDir: dir,
      deploy,
      processEnv: { ...baseEnv, GITHUB_ACTOR: actor, GITHUB_RUN_ID: '77', GITHUB_SHA: '' },
      log: (l) => log.push(l),
      ...(reason ? { reason } : {}),
    });
  const rollback = (project: string, env: string, actor: string, reason?: string, to?: string) =>
    runRollbackCommand({
      project: parseProjectName(project),
      workspaceRoot: root,
      env: parseEnvironmentName(env),
      deploy,
      processEnv: { ...baseEnv, GITHUB_ACTOR: actor, GITHUB_RUN_ID: '78', GITHUB_SHA: '' },
      log: (l) => log.push(l),
      ...(reason ? { reason } : {}),
      ...(to ? { to: parseVersion(to) } : {}),
    });

  const c1 = commit('scorer: first release', 'a.txt');
  const d1 = await publish('scorer', VERSIONS.v1, c1);
  const a1 = await publish('@acme/api', VERSIONS.api, c1);
  for (const env of ['dev', 'staging', 'prod']) await promote('scorer', d1, env, 'alice');
  await promote('@acme/api', a1, 'dev', 'alice');
  const c2 = commit(HOSTILE.subject, 'b.txt');
  const d2 = await publish('scorer', VERSIONS.v2, c2, { weights: true, padding: 3000 });
  await promote('scorer', d2, 'dev', 'bob');
  await promote('scorer', d2, 'staging', 'bob', 'weights retrained on November data');
  await promote('scorer', d2, 'prod', HOSTILE.actor);
  await rollback('scorer', 'prod', 'carol', HOSTILE.reason);
  const c3 = commit('scorer: faster scoring', 'c.txt');
  const d3 = await publish('scorer', VERSIONS.v3, c3, { weights: true, padding: 10 });
  await promote('scorer', d3, 'dev', 'dave');
  await promote('scorer', d3, 'staging', 'dave').then(
    () => {
      throw new Error('the seeded verification failure did not fail');
    },
    (e: Error) => {
      if (!/verification failed/.test(e.message)) throw e;
    },
  );
  await rollback('scorer', 'dev', 'erin');
  const d4 = await publish('scorer', VERSIONS.p7, c3, { pr: '7' });
  await promote('scorer', d4, 'pr-7', 'frank');
  return { root, commits: { v1: c1, v2: c2, v3: c3 }, log };
}
