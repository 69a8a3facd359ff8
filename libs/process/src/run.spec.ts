import { describe, expect, it } from 'vitest';
import { CommandFailedError, run, succeeds } from './run';

const node = process.execPath;

describe('run', () => {
  it('passes arguments as an array: shell metacharacters reach the child untouched', async () => {
    const tricky = ['a b', '$(echo no)', '`x`', ';', '|', '"q"', "'s'", '*', '\\'];
    const r = await run(node, ['-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', ...tricky]);
    expect(JSON.parse(r.stdout)).toEqual(tricky);
    expect(r.exitCode).toBe(0);
  });

  it('throws a one-line CommandFailedError naming the command, exit code and last stderr line', async () => {
    const err = await run(node, ['-e', 'console.error("first\\nlast line"); process.exit(3)']).catch((e) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect(err.exitCode).toBe(3);
    expect(err.message).toContain('(exit 3): last line');
    expect(err.message).not.toContain('\n');
  });

  it('returns the exit code instead of throwing with reject: false', async () => {
    const r = await run(node, ['-e', 'process.exit(5)'], { reject: false });
    expect(r.exitCode).toBe(5);
  });

  it('a missing binary is a CommandFailedError without an exit code', async () => {
    const err = await run('buildonce-no-such-binary', ['x']).catch((e) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect(err.exitCode).toBeUndefined();
    expect(err.message).toMatch(/^buildonce-no-such-binary x failed/);
  });

  it('kills a process that outlives timeoutMs and reports the timeout', async () => {
    const started = Date.now();
    const err = await run(node, ['-e', 'setTimeout(() => {}, 60000)'], { timeoutMs: 300 }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect(err.message).toContain('timed out after 300 ms');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('uses cwd and env, and closes stdin so a child waiting for input ends', async () => {
    const r = await run(node, ['-e', 'process.stdin.resume(); process.stdin.on("end", () => console.log(process.cwd(), process.env.PROBE))'], {
      cwd: '/',
      env: { PROBE: 'seen' },
    });
    expect(r.stdout).toBe('/ seen');
  });
});

describe('succeeds', () => {
  it('is true on exit 0, false on a non-zero exit or a missing binary', async () => {
    expect(await succeeds(node, ['-e', ''])).toBe(true);
    expect(await succeeds(node, ['-e', 'process.exit(1)'])).toBe(false);
    expect(await succeeds('buildonce-no-such-binary', [])).toBe(false);
  });
});
