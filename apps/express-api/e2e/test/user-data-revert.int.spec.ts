import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPRESS_API_TARBALL, EXPRESS_API_USER_DATA, freePort, makeCachedWorkspace, type CachedWorkspace } from '@buildonce/testing';
import { useMotoBucket } from '@buildonce/testing/src/moto-hooks';
import { nx } from './helpers';

/**
 * The EC2 boot script's post-flip check against real releases: express-api tarballs published to
 * moto S3 through nx, started by a systemctl stand-in that really runs `node <root>/current/main.js`
 * (restart = kill the old process, start from `current`, as systemd would). A release whose server
 * exits at start is reverted: current flips back, the previous release is restarted and serves again,
 * the script exits 1 with one line. Old releases beyond --keep are pruned, never current or previous.
 */
const bucket = 'userdata-revert';
const prefix = 'team';
const s3 = useMotoBucket(bucket);
let ws: CachedWorkspace;
let base = '';
let root = '';
let units = '';
let port = 0;
const versions: string[] = [];

/** publishes the workspace's express-api to S3 and returns its version */
function publish(): string {
  const r = nx(ws, ['run', 'express-api:publish'], { ...s3().moto.env, BUILDONCE_STORE: `s3://${bucket}/${prefix}` });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return (JSON.parse(readFileSync(join(ws.root, 'dist/apps/express-api/artifact.json'), 'utf8')) as { version: string }).version;
}

function editMain(from: string, to: string, msg: string) {
  const main = join(ws.root, 'apps/express-api/src/main.ts');
  writeFileSync(main, readFileSync(main, 'utf8').replace(from, to));
  ws.run('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', msg]);
}

function userData(version: string, extra: string[] = []) {
  const r = spawnSync('bash', [EXPRESS_API_USER_DATA, '--root', root, '--systemd-dir', units, '--port', String(port), '--health-timeout', '10', ...extra], {
    env: {
      ...process.env,
      ...s3().moto.env,
      DEPLOYMENT_BUCKET: bucket,
      DEPLOYMENT_KEY: `${prefix}/artifacts/express-api/${version}/${EXPRESS_API_TARBALL}`,
      BUILDONCE_ENV: undefined,
      BUILDONCE_SYSTEMCTL: join(units, 'systemctl'),
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status ?? 1, stderr: r.stderr };
}

const health = () => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.json() as Promise<{ version: string }>);

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'ud-revert-'));
  root = join(base, 'root');
  units = join(base, 'units');
  port = await freePort();
  execFileSync('mkdir', ['-p', root, units]);
  // systemctl stand-in: `restart` kills the running service and starts <root>/current/main.js, detached
  // like a systemd unit: stdio to /dev/null and the deploy lock (fd 9) closed, which a unit never inherits
  writeFileSync(
    join(units, 'systemctl'),
    [
      '#!/usr/bin/env bash',
      `state=${JSON.stringify(units)}`,
      'echo "$*" >> "$state/calls"',
      '[ "$1" = restart ] || exit 0',
      'if [ -f "$state/pid" ]; then kill -9 "$(cat "$state/pid")" 2>/dev/null || true; fi',
      `cd ${JSON.stringify(root)}/current || exit 1`,
      `PORT=${port} LOG_LEVEL=warn nohup ${JSON.stringify(process.execPath)} ${JSON.stringify(root)}/current/main.js </dev/null >/dev/null 2>&1 9>&- &`,
      'echo $! > "$state/pid"',
      '',
    ].join('\n'),
  );
  chmodSync(join(units, 'systemctl'), 0o755);
  ws = makeCachedWorkspace('buildonce-ud-revert-');
  versions.push(publish());
  // a release whose server exits at start (after the build's start check, which sets BUILDONCE_START_CHECK)
  const broken = '  if (!process.env.BUILDONCE_START_CHECK) process.exit(3); // a release whose server exits at start\n';
  editMain('async function main(): Promise<void> {\n', `async function main(): Promise<void> {\n${broken}`, 'broken start');
  versions.push(publish());
  editMain(broken, '', 'fixed start');
  editMain('async function main(): Promise<void> {', 'async function main(): Promise<void> {\n  // third release', 'third');
  versions.push(publish());
}, 600_000);

afterAll(async () => {
  const pid = join(units, 'pid');
  if (existsSync(pid)) {
    try {
      process.kill(Number(readFileSync(pid, 'utf8')), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  ws?.dispose();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('user-data.sh post-flip health check', () => {
  it('deploys a healthy release', async () => {
    const [v1] = versions as [string];
    const r = userData(v1);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`healthy: {"status":"ok","version":"${v1}"`);
    expect((await health()).version).toBe(v1);
  });

  it('a release whose server exits at start is reverted: previous release restarted and serving, exit 1 with one line', async () => {
    const [v1, v2] = versions as [string, string];
    const r = userData(v2);
    expect(r.status, r.stderr).toBe(1);
    const error = r.stderr.split('\n').filter((l) => l.includes('ERROR:'));
    expect(error).toHaveLength(1);
    expect(error[0]).toMatch(
      new RegExp(
        `ERROR: express-api@${v2} failed its health check \\(GET http://127\\.0\\.0\\.1:${port}/health did not report version ${v2} within 10s \\(last: no answer\\)\\); reverted current -> releases/${v1} and restarted it; see journalctl -u express-api$`,
      ),
    );
    expect(r.stderr).toContain(`previous release healthy again: {"status":"ok","version":"${v1}"`);
    expect(readlinkSync(join(root, 'current'))).toBe(`releases/${v1}`);
    expect((await health()).version).toBe(v1);
    expect(
      readFileSync(join(units, 'calls'), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('restart')),
    ).toHaveLength(3);
  });

  it('prunes releases beyond --keep, never current or previous', async () => {
    const [v1, v2, v3] = versions as [string, string, string];
    expect(readdirSync(join(root, 'releases')).sort()).toEqual([v1, v2].sort());
    const r = userData(v3, ['--keep', '2']);
    expect(r.status, r.stderr).toBe(0);
    expect((await health()).version).toBe(v3);
    // the newest two by unpack time are v3 and v2; v1 is beyond them but is the previous release: it stays
    expect(readdirSync(join(root, 'releases')).sort()).toEqual([v1, v2, v3].sort());
    expect(r.stderr).not.toContain('pruned');
    // the next boot of v3 (previous is now v3 itself): v1 is no longer protected and goes
    const again = userData(v3, ['--keep', '2']);
    expect(again.status, again.stderr).toBe(0);
    expect(readdirSync(join(root, 'releases')).sort()).toEqual([v2, v3].sort());
    expect(again.stderr).toContain(`pruned releases/${v1} (keeping the newest 2, current and previous)`);
    const bad = userData(v3, ['--keep', '1']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--keep must be a number >= 2 (current and previous always stay), got "1"');
  });
});
