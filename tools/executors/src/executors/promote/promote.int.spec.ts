import { appendFileSync, existsSync, mkdirSync, readFileSync, readlinkSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCachedWorkspace, type CachedWorkspace, promoteSpecEnv } from '@buildonce/testing';

/**
 * End to end through the real nx CLI in a temp git workspace with the embedded file store and the
 * `local` deploy target: publish both deployables, promote them, then after a commit that changes only
 * express-api, `nx affected -t promote --env=dev --base=HEAD~1` promotes express-api and not
 * rust-scorer. Also rollback, releases and resolve through nx.
 */
let ws: CachedWorkspace;

function nx(args: string[], env: Record<string, string | undefined> = {}) {
  const r = ws.runResult('npx', ['nx', ...args, '--output-style=stream'], promoteSpecEnv(ws.cache, env));
  return { ...r, all: r.stdout + r.stderr };
}

function ledger(project: string, env: string): { seq: number; version: string; rollback: boolean }[] {
  const dir = join(ws.root, '.buildonce/store/releases', project, env, 'history');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

const versionOf = (project: string) => JSON.parse(readFileSync(join(ws.root, 'dist/apps', project, 'artifact.json'), 'utf8')).version as string;
const deployedVersion = (project: string, env: string) => readlinkSync(join(ws.root, '.buildonce/deploy', env, project, 'current')).replace(/^releases\//, '');

beforeAll(() => {
  ws = makeCachedWorkspace('buildonce-promote-');
});

afterAll(() => ws?.dispose());

describe('nx promote in a temp git workspace (file store, local target)', () => {
  let api1 = '';
  let scorer = '';

  it('on a fresh clone, promote publishes what it promotes (both deployables to dev)', () => {
    const pro = nx(['run-many', '-t', 'promote', '--projects=rust-scorer,express-api', '--env=dev']);
    expect(pro.status, pro.all).toBe(0);
    api1 = versionOf('express-api');
    scorer = versionOf('rust-scorer');
    expect(pro.all).toContain(`[express-api] published version ${api1}`);
    expect(pro.all).toContain(`[rust-scorer] published version ${scorer}`);
    expect(pro.all).toContain(`[rust-scorer] promoted ${scorer} to dev (seq 1)`);
    expect(pro.all).toContain(`[express-api] promoted ${api1} to dev (seq 1)`);
    expect(deployedVersion('express-api', 'dev')).toBe(api1);
    expect(deployedVersion('rust-scorer', 'dev')).toBe(scorer);
    // the promoted express-api release is the unpacked tarball plus its manifest
    expect(existsSync(join(ws.root, '.buildonce/deploy/dev/express-api/current/main.js'))).toBe(true);
  }, 900_000); // a cold arm64 LTO build of rust-scorer (serde, ureq) on a shared machine

  it('run-many publish of published versions runs every publish task in one batch process, each a no-op', () => {
    const r = nx(['run-many', '-t', 'publish', '--projects=rust-scorer,express-api']);
    expect(r.status, r.all).toBe(0);
    // one process for both tasks (executors.json batchImplementation + preferBatch), not one per task
    expect(r.all).toMatch(/Running 2 tasks with \S*publish-artifact/);
    expect(r.all).toContain(`[express-api] version ${api1} is already published`);
    expect(r.all).toContain(`[rust-scorer] version ${scorer} is already published`);
  });

  it('after a commit that changes only express-api, nx affected promotes express-api and not rust-scorer', () => {
    appendFileSync(join(ws.root, 'apps/express-api/src/app.ts'), '\n// promotion e2e: a change that only touches express-api\n');
    ws.run('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'change express-api']);
    const pub = nx(['affected', '-t', 'publish', '--base=HEAD~1']);
    expect(pub.status, pub.all).toBe(0);
    const api2 = versionOf('express-api');
    expect(api2).not.toBe(api1);

    const r = nx(['affected', '-t', 'promote', '--env=dev', '--base=HEAD~1']);
    expect(r.status, r.all).toBe(0);
    // promote never rebuilt and publish uploaded nothing: the build was a cache hit, the version was stored
    expect(r.all).toMatch(/nx run express-api:build\s+\[(local cache|existing outputs match the cache, left as is)\]/);
    expect(r.all).toContain(`version ${api2} is already published`);
    expect(r.all).toContain('express-api:promote');
    expect(r.all).not.toContain('rust-scorer:promote');
    expect(r.all).toContain(`[express-api] promoted ${api2} to dev (seq 2)`);
    expect(ledger('express-api', 'dev').map((e) => e.version)).toEqual([api1, api2]);
    expect(ledger('rust-scorer', 'dev').map((e) => e.version)).toEqual([scorer]);
    expect(deployedVersion('express-api', 'dev')).toBe(api2);

    // promoting the same thing again is a no-op success
    const again = nx(['affected', '-t', 'promote', '--env=dev', '--base=HEAD~1']);
    expect(again.status, again.all).toBe(0);
    expect(again.all).toContain(`version ${api2} is already current in dev`);
    expect(ledger('express-api', 'dev')).toHaveLength(2);

    // prod refuses a version that never reached staging, and changes nothing
    const prod = nx(['run', 'express-api:promote', '--env=prod']);
    expect(prod.status).not.toBe(0);
    expect(prod.all).toContain(`[express-api] version ${api2} has not succeeded in staging, which prod requires`);
    expect(existsSync(join(ws.root, '.buildonce/store/releases/express-api/prod'))).toBe(false);
    // bad environment names are refused by publish, the first task of the run that touches the store
    // (Nx checks promote's schema only when promote itself is about to run, after publish)
    for (const env of ['../x', 'Prod']) {
      const bad = nx(['run', 'express-api:promote', `--env=${env}`]);
      expect(bad.status).not.toBe(0);
      expect(bad.all).toContain(`[express-api] invalid environment name "${env}": names match ^[a-z][a-z0-9-]{0,62}$`);
    }
    const missing = nx(['run', 'express-api:rollback']);
    expect(missing.status).not.toBe(0);
    expect(missing.all).toMatch(/Required property 'env' is missing/);
  });

  it('rollback restores the previous release in one command and shows in releases / resolve', () => {
    const rb = nx(['run', 'express-api:rollback', '--env=dev']);
    expect(rb.status, rb.all).toBe(0);
    expect(deployedVersion('express-api', 'dev')).toBe(api1);
    const h = ledger('express-api', 'dev');
    expect(h.at(-1)).toMatchObject({ seq: 3, version: api1, rollback: true });

    const table = nx(['run', 'express-api:releases', '--env=dev']);
    expect(table.status, table.all).toBe(0);
    expect(table.stdout).toMatch(/environment.*version.*commit.*when.*who.*previous/);
    expect(table.stdout).toContain('rollback');
    const json = nx(['run', 'express-api:releases', '--json']);
    expect(json.status, json.all).toBe(0);
    expect(json.stdout).toContain(`"version": "${api1}"`);

    const head = ws.run('git', ['rev-parse', 'HEAD~1']).trim();
    const field = nx(['run', 'express-api:releases', '--env=dev', '--field=commit']);
    expect(field.stdout).toContain(head);

    const out = join(ws.root, 'gh-output');
    const res = nx(['run', 'express-api:resolve', '--env=dev'], { GITHUB_OUTPUT: out });
    expect(res.status, res.all).toBe(0);
    const uri = `file://${ws.root}/.buildonce/store/artifacts/express-api/${api1}/express-api-deployment.tar.gz`;
    expect(res.stdout).toContain(uri);
    expect(readFileSync(out, 'utf8')).toContain(`artifact_uri=${uri}\n`);

    // scripts read machine output from --outputFile: nx prints its own lines on stdout around it
    const file = nx(['run', 'express-api:resolve', '--env=dev', '--outputFile=tmp/uri.txt']);
    expect(file.status, file.all).toBe(0);
    expect(readFileSync(join(ws.root, 'tmp/uri.txt'), 'utf8')).toBe(`${uri}\n`);
    for (const env of ['staging', 'prod']) {
      const up = nx(['run', 'express-api:promote', `--env=${env}`]);
      expect(up.status, up.all).toBe(0);
    }
    const rel = nx(['run', 'express-api:releases', '--json', '--outputFile=tmp/releases.json']);
    expect(rel.status, rel.all).toBe(0);
    const rows = JSON.parse(readFileSync(join(ws.root, 'tmp/releases.json'), 'utf8')) as { environment: string }[];
    // pipeline order (buildonce.json: dev, staging, prod), not alphabetical
    expect(rows.map((x) => x.environment)).toEqual(['dev', 'staging', 'prod']);
  });

  it('the retention target refuses empty and zero numbers as the CLI does: one line, nothing deleted', () => {
    const versions = () => readdirSync(join(ws.root, '.buildonce/store/artifacts/express-api')).sort();
    const before = versions();
    expect(before.length).toBeGreaterThanOrEqual(2);
    for (const args of [['--keep=', '--older-than='], ['--keep=0'], ['--olderThan=0'], ['--pr=0'], ['--keep=', '--older-than=', '--dryRun']]) {
      const r = nx(['run', 'express-api:retention', ...args]);
      expect(r.status, `${args.join(' ')}\n${r.all}`).not.toBe(0);
      expect(r.all).toMatch(/--(keep|older-than|olderThan|pr) is empty|(keep|olderThan|pr)' does not match the schema|--(keep|older-than|pr) must be/);
      expect(versions()).toEqual(before);
    }
    const ok = nx(['run', 'express-api:retention', '--keep=1', '--older-than=1', '--dryRun']);
    expect(ok.status, ok.all).toBe(0);
  });

  it('rollback --to takes a version as typed: Nx parses the 20 digits as a number, the executor reads them back', () => {
    const api2 = ledger('express-api', 'dev')[1]!.version;
    const rb = nx(['run', 'express-api:rollback', '--env=dev', `--to=${api2}`]);
    expect(rb.status, rb.all).toBe(0);
    expect(deployedVersion('express-api', 'dev')).toBe(api2);
    expect(ledger('express-api', 'dev').at(-1)).toMatchObject({ version: api2, rollback: true });
  });

  it('a promote to an unknown environment fails before its publish uploads anything', () => {
    appendFileSync(join(ws.root, 'apps/express-api/src/app.ts'), '\n// a new version nobody published yet\n');
    const r = nx(['run', 'express-api:promote', '--env=stagin']);
    expect(r.status).not.toBe(0);
    expect(r.all).toContain('unknown environment "stagin": known environments are dev, staging, prod');
    const version = versionOf('express-api');
    expect(existsSync(join(ws.root, '.buildonce/store/artifacts/express-api', version)), r.all).toBe(false);
    expect(r.all).not.toContain('uploaded');
  });

  it('two promotes of one project in one workspace at once take turns, each saying what it waits for', async () => {
    appendFileSync(join(ws.root, 'apps/express-api/src/app.ts'), '\n// two terminals promote this at once\n');
    // a build of this output is "running" (this process holds its lock), so both promotes must wait, whatever the timing
    const out = join(ws.root, 'dist/apps/express-api');
    mkdirSync(join(ws.root, 'dist/apps'), { recursive: true });
    writeFileSync(`${out}.lock`, JSON.stringify({ pid: process.pid, task: 'express-api:build', since: new Date().toISOString() }));
    const promote = (env: string) => {
      let all = '';
      let exited = false;
      const child = spawn('npx', ['nx', 'run', 'express-api:promote', `--env=${env}`, '--output-style=stream'], {
        cwd: ws.root,
        // two sibling nx processes under this test's own nx (npm test) would share its NX_INVOCATION_ROOT_PID and
        // see each other's executors:bundle as a recursive invocation: each is its own root here, as in two terminals
        env: {
          ...process.env,
          NX_INVOCATION_ROOT_PID: undefined,
          NX_DAEMON: 'false',
          NX_NO_CLOUD: 'true',
          NX_TUI: 'false',
          FORCE_COLOR: '0',
          ...promoteSpecEnv(ws.cache),
        },
      });
      child.stdout.on('data', (c: Buffer) => (all += c.toString()));
      child.stderr.on('data', (c: Buffer) => (all += c.toString()));
      const done = new Promise<{ status: number | null; all: string }>((resolve) => child.on('close', (status) => ((exited = true), resolve({ status, all }))));
      return { out: () => all, exited: () => exited, done };
    };
    const a = promote('pr-7');
    const b = promote('pr-8');
    const waiting = new RegExp(
      `express-api:build: waiting for express-api:build \\(pid ${process.pid}, since [^)]+\\), which is using \\S+dist/apps/express-api in this workspace`,
    );
    const deadline = Date.now() + 300_000;
    while (!(waiting.test(a.out()) && waiting.test(b.out())) && Date.now() < deadline && !a.exited() && !b.exited())
      await new Promise((r) => setTimeout(r, 250));
    expect(a.out(), a.out()).toMatch(waiting);
    expect(b.out(), b.out()).toMatch(waiting);
    expect(a.exited() || b.exited()).toBe(false);
    rmSync(`${out}.lock`);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.status, ra.all).toBe(0);
    expect(rb.status, rb.all).toBe(0);
    const version = versionOf('express-api');
    expect(deployedVersion('express-api', 'pr-7')).toBe(version);
    expect(deployedVersion('express-api', 'pr-8')).toBe(version);
    expect(ra.all + rb.all).not.toContain('is missing');
    expect(existsSync(`${out}.lock`)).toBe(false);
  }, 900_000);
});
