import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OutputLockTimeoutError, withOutputLock } from './output-lock';

const root = mkdtempSync(join(tmpdir(), 'output-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('withOutputLock: tasks of one workspace take turns on a build output', () => {
  it('the second waits, says for whom, and runs only after the first released; the lock file goes away', async () => {
    const out = join(root, 'dist/apps/api');
    const events: string[] = [];
    const lines: string[] = [];
    /** `task` runs `fn` under the lock of `out`, its waiting lines into `lines` */
    const asTask = <T>(task: string, fn: () => Promise<T>) => withOutputLock(out, task, (l) => lines.push(l), fn, { pollMs: 20 });
    const first = asTask('api:build', async () => {
      events.push('build start');
      expect(JSON.parse(readFileSync(`${out}.lock`, 'utf8'))).toMatchObject({ pid: process.pid, task: 'api:build' });
      await sleep(300);
      events.push('build end');
    });
    await sleep(50);
    const second = asTask('api:promote', async () => {
      events.push('promote');
      return 'done';
    });
    await first;
    expect(await second).toBe('done');
    expect(events).toEqual(['build start', 'build end', 'promote']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^api:promote: waiting for api:build \\(pid ${process.pid}, since \\S+\\), which is using ${out} in this workspace \\(lock ${out}\\.lock\\)$`),
    );
    expect(existsSync(`${out}.lock`)).toBe(false);
  });

  it('a reader of an output whose folder does not exist runs without a lock and creates nothing; a writer creates the folder', async () => {
    const out = join(root, 'nothing-yet/apps/api');
    expect(
      await withOutputLock(
        out,
        'api:publish',
        () => undefined,
        async () => 'read',
        { reader: true },
      ),
    ).toBe('read');
    expect(existsSync(join(root, 'nothing-yet'))).toBe(false);
    expect(
      await withOutputLock(
        out,
        'api:build',
        () => undefined,
        async () => existsSync(`${out}.lock`),
      ),
    ).toBe(true);
    expect(existsSync(join(root, 'nothing-yet/apps'))).toBe(true);
  });

  it('takes over the lock of a process that is gone, and releases when fn throws', async () => {
    const out = join(root, 'dist/apps/stale');
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(`${out}.lock`, JSON.stringify({ pid: dead, task: 'api:build', since: '2026-01-01T00:00:00Z' }));
    await expect(
      withOutputLock(
        out,
        'api:publish',
        () => undefined,
        async () => {
          throw new Error('boom');
        },
      ),
    ).rejects.toThrow('boom');
    expect(existsSync(`${out}.lock`)).toBe(false);
  });

  it('gives up after waitMs with one line naming the holder and the fix', async () => {
    const out = join(root, 'dist/apps/busy');
    writeFileSync(`${out}.lock`, JSON.stringify({ pid: process.pid, task: 'api:promote', since: '2026-01-01T00:00:00Z' }));
    const err = await withOutputLock(
      out,
      'api:build',
      () => undefined,
      async () => 1,
      { waitMs: 100, pollMs: 20 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutputLockTimeoutError);
    expect((err as Error).message).toBe(
      `api:build: api:promote (pid ${process.pid}, since 2026-01-01T00:00:00Z) has held ${out}.lock for over 0 s: wait for it, or delete the file if that process is gone`,
    );
    expect(existsSync(`${out}.lock`)).toBe(true); // someone else's lock is left alone
  });
});
