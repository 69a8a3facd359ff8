import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeTempWorkspace, type TempWorkspace, promoteSpecEnv } from '@buildonce/testing';

/**
 * Verified promotion through the real nx CLI in a temp git workspace (embedded file store, local
 * target): rust-scorer with a `command` check and express-api with an `http` check against the real
 * tarball, unpacked from the store and (re)started from `current` by a small supervisor like systemd
 * would. A failing check exits non-zero, leaves the environment on the previous version, records the
 * failed deploy and the automatic rollback, and prod refuses the version.
 */
let ws: TempWorkspace;
let cache: string;
let port = 0;

function nx(args: string[], env: Record<string, string | undefined> = {}) {
  const r = ws.runResult('npx', ['nx', ...args, '--output-style=stream'], promoteSpecEnv(cache, env));
  return { ...r, all: r.stdout + r.stderr };
}
/** nx without blocking this process's event loop (the supervisor below must keep running meanwhile) */
function nxAsync(args: string[], env: Record<string, string | undefined> = {}): Promise<{ status: number; all: string }> {
  const child = spawn('npx', ['nx', ...args, '--output-style=stream'], {
    cwd: ws.root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NX_DAEMON: 'false',
      NX_NO_CLOUD: 'true',
      NX_TUI: 'false',
      FORCE_COLOR: '0',
      NX_SKIP_NX_CACHE: undefined,
      ...promoteSpecEnv(cache, env),
    },
  });
  let all = '';
  child.stdout!.on('data', (d: Buffer) => (all += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (all += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ status: code ?? 1, all })));
}
const versionOf = (project: string) => JSON.parse(readFileSync(join(ws.root, 'dist/apps', project, 'artifact.json'), 'utf8')).version as string;
const deployedVersion = (project: string, env: string) => readlinkSync(join(ws.root, '.buildonce/deploy', env, project, 'current')).replace(/^releases\//, '');
function history(
  project: string,
  env: string,
): { seq: number; version: string; status: string; rollback: boolean; verification?: { kind: string; passed: boolean }; error?: string }[] {
  const dir = join(ws.root, '.buildonce/store/releases', project, env, 'history');
  return existsSync(dir)
    ? readdirSync(dir)
        .sort()
        .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')))
    : [];
}
/** publish (build once) then promote to dev */
function publishToDev(project: string) {
  const pub = nx(['run', `${project}:publish`]);
  expect(pub.status, pub.all).toBe(0);
  const dev = nx(['run', `${project}:promote`, '--env=dev']);
  expect(dev.status, dev.all).toBe(0);
}
function commit(msg: string) {
  ws.run('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', msg]);
}

/**
 * Runs `<deploy>/staging/express-api/current/main.js` and restarts it whenever `current` flips
 * (what systemd does on an instance after user data restarts the unit).
 */
class Supervisor {
  private child?: ChildProcess;
  private running = '';
  private timer?: NodeJS.Timeout;
  starts: string[] = [];
  constructor(private readonly root: string) {}
  start() {
    this.timer = setInterval(() => this.tick(), 100);
  }
  private tick() {
    let target = '';
    try {
      target = readlinkSync(join(this.root, 'current'));
    } catch {
      return;
    }
    if (target === this.running) return;
    this.running = target;
    this.child?.kill('SIGKILL');
    this.starts.push(target);
    this.child = spawn(process.execPath, [join(this.root, target, 'main.js')], {
      env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
  }
  async stop() {
    clearInterval(this.timer);
    if (this.child && this.child.exitCode === null) {
      const done = new Promise((r) => this.child!.once('exit', r));
      this.child.kill('SIGKILL');
      await done;
    }
  }
}
let supervisor: Supervisor | undefined;

beforeAll(async () => {
  ws = makeTempWorkspace('buildonce-verify-');
  cache = mkdtempSync(join(tmpdir(), 'nxcache-verify-'));
  port = await freePort();
  // the scorer's smoke check: fails for the version named in SMOKE_FAIL_VERSION, with a one-line reason
  writeFileSync(
    join(ws.root, 'smoke.mjs'),
    `if (process.env.BUILDONCE_VERSION === process.env.SMOKE_FAIL_VERSION) { console.error('smoke: ' + process.env.BUILDONCE_PROJECT + ' in ' + process.env.BUILDONCE_ENV + ' scored 0 for the known-good passport'); process.exit(1); }\n`,
  );
  writeFileSync(
    join(ws.root, 'buildonce.json'),
    JSON.stringify({
      environments: [
        { name: 'dev' },
        {
          name: 'staging',
          verify: [
            { kind: 'command', projects: ['rust-scorer'], command: ['node', 'smoke.mjs'] },
            {
              kind: 'http',
              projects: ['express-api'],
              url: `http://127.0.0.1:${port}/v1/release`,
              expectVersion: true,
              timeoutSeconds: 15,
              intervalSeconds: 0.25,
            },
          ],
        },
        { name: 'prod', requires: ['staging'] },
      ],
    }),
  );
  ws.run('git', ['add', '-A']);
  commit('verify staging');
  supervisor = new Supervisor(join(ws.root, '.buildonce/deploy/staging/express-api'));
  supervisor.start();
}, 300_000);

afterAll(async () => {
  await supervisor?.stop();
  ws?.dispose();
  if (cache) rmSync(cache, { recursive: true, force: true });
});

describe('verified promotion through nx (file store, local target)', () => {
  it('rust-scorer: a failing check exits non-zero, staging stays on the previous version, history shows the failed deploy and the rollback; prod refuses it', () => {
    publishToDev('rust-scorer');
    const v1 = versionOf('rust-scorer');
    const ok = nx(['run', 'rust-scorer:promote', '--env=staging']);
    expect(ok.status, ok.all).toBe(0);
    expect(ok.all).toContain('verify: command node smoke.mjs');
    expect(ok.all).toContain(`[rust-scorer] promoted ${v1} to staging (seq 1)`);

    // a new version (weights table changed) that the smoke check rejects
    const weights = join(ws.root, 'apps/rust-scorer/weights.json');
    writeFileSync(weights, readFileSync(weights, 'utf8').replace(/"version": "[^"]+"/, '"version": "2099-01-01"'));
    commit('new weights');
    publishToDev('rust-scorer');
    const v2 = versionOf('rust-scorer');
    expect(v2).not.toBe(v1);

    const bad = nx(['run', 'rust-scorer:promote', '--env=staging'], { SMOKE_FAIL_VERSION: v2 });
    expect(bad.status, bad.all).not.toBe(0);
    const reason = `verification failed for ${v2} in staging (seq 2): command node smoke.mjs failed: node smoke.mjs exited 1: smoke: rust-scorer in staging scored 0 for the known-good passport; rolled back to ${v1} (seq 3)`;
    expect(bad.all).toContain(reason);
    expect(bad.all).not.toMatch(/this is a bug|\n\s+at /);
    expect(deployedVersion('rust-scorer', 'staging')).toBe(v1);
    expect(history('rust-scorer', 'staging').map((e) => [e.seq, e.version, e.status, e.rollback, e.verification?.passed])).toEqual([
      [1, v1, 'succeeded', false, true],
      [2, v2, 'failed', false, false],
      [3, v1, 'succeeded', true, undefined],
    ]);
    const releases = nx(['run', 'rust-scorer:releases', '--env=staging']);
    expect(releases.all).toMatch(/FAILED command ×1/);
    expect(releases.all).toContain(`#2 staging: command node smoke.mjs failed`);

    const prod = nx(['run', 'rust-scorer:promote', '--env=prod']);
    expect(prod.status).not.toBe(0);
    expect(prod.all).toContain(`[rust-scorer] version ${v2} has not succeeded in staging, which prod requires`);
    expect(history('rust-scorer', 'prod')).toEqual([]);
  }, 600_000);

  it('express-api: the http check waits for the restarted service to report the version; a release whose server exits at start is rolled back and the previous one serves again', async () => {
    publishToDev('express-api');
    const a1 = versionOf('express-api');
    const ok = await nxAsync(['run', 'express-api:promote', '--env=staging']);
    expect(ok.status, ok.all).toBe(0);
    expect(ok.all).toContain(`verify: passed`);
    expect(history('express-api', 'staging').at(-1)).toMatchObject({ version: a1, status: 'succeeded', verification: { kind: 'http', passed: true } });

    // a release that exits at start (after the build's start check, which sets BUILDONCE_START_CHECK)
    const main = join(ws.root, 'apps/express-api/src/main.ts');
    writeFileSync(
      main,
      readFileSync(main, 'utf8').replace(
        'async function main(): Promise<void> {',
        'async function main(): Promise<void> {\n  if (!process.env.BUILDONCE_START_CHECK) process.exit(3);',
      ),
    );
    commit('broken start');
    publishToDev('express-api');
    const a2 = versionOf('express-api');
    const bad = await nxAsync(['run', 'express-api:promote', '--env=staging']);
    expect(bad.status, bad.all).not.toBe(0);
    expect(bad.all).toMatch(
      new RegExp(
        `verification failed for ${a2} in staging \\(seq 2\\): http GET http://127\\.0\\.0\\.1:${port}/v1/release failed: GET .*ECONNREFUSED.*gave up after \\d+ attempt\\(s\\), 15 s\\); rolled back to ${a1} \\(seq 3\\)`,
      ),
    );
    expect(deployedVersion('express-api', 'staging')).toBe(a1);
    // the supervisor restarts the previous release from `current`: it serves again
    let body: { version?: string } = {};
    for (let i = 0; i < 100 && body.version !== a1; i++) {
      body = await fetch(`http://127.0.0.1:${port}/v1/release`).then(
        (r) => r.json() as Promise<{ version: string }>,
        () => ({}),
      );
      if (body.version !== a1) await new Promise((r) => setTimeout(r, 100));
    }
    expect(body.version).toBe(a1);
    expect(supervisor!.starts).toEqual([`releases/${a1}`, `releases/${a2}`, `releases/${a1}`]);
  }, 600_000);
});
