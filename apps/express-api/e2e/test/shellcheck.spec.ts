import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The shell scripts of this app are shellcheck-clean (required in CI; skipped locally when shellcheck is not installed). */
const repo = join(__dirname, '../../../..');
const scripts = ['apps/express-api/deploy/user-data.sh', 'bench/tarball.sh'];
const installed = spawnSync('shellcheck', ['--version']).status === 0;

describe('shellcheck', () => {
  it.skipIf(!installed && !process.env.CI).each(scripts)('%s is clean', (script) => {
    const r = spawnSync('shellcheck', ['--format=gcc', join(repo, script)], { encoding: 'utf8' });
    expect(r.error, 'shellcheck is not installed: apt-get install -y shellcheck').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('user-data.sh refuses to run without an artifact to deploy', () => {
    const parent = mkdtempSync(join(tmpdir(), 'ud-none-'));
    const root = join(parent, 'root');
    const r = spawnSync('bash', [join(repo, scripts[0]!), '--no-start', '--root', root], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, AWS_EC2_METADATA_DISABLED: 'true' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[express-api\] ERROR: nothing to deploy: set DEPLOYMENT_BUCKET and DEPLOYMENT_KEY, or BUILDONCE_ENV/);
    expect(existsSync(root)).toBe(false);
    rmSync(parent, { recursive: true, force: true });
  });
});
