import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeployResult } from '@buildonce/deploy';
import { ConfigError } from '@buildonce/errors';
import { removeTempDirs, tempDir } from '@buildonce/testing';
import { parseConfig, type VerifyCheck } from '@buildonce/config';
import { checksFor, jsonSubset, prepareChecks, runCheck, runChecks, verifyDeploy, type CheckContext } from '@buildonce/verification';
import { checkPolicy } from './policy';
import { isVerifiedSuccess } from './gates';
import { draft, unusedAwsClients } from '@buildonce/testing';

const noAws = unusedAwsClients();
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

afterAll(removeTempDirs);

const local: DeployResult = { target: 'local', root: '/r', path: '/r/releases/7', status: 'deployed' };
const lines: string[] = [];
function ctx(o: Partial<CheckContext> = {}): CheckContext {
  return {
    project: 'svc' as ProjectName,
    environment: 'staging' as EnvironmentName,
    version: '7' as Version,
    deploy: local,
    workspaceRoot: process.cwd(),
    log: (l) => lines.push(l),
    sleep: async () => {},
    ...o,
  };
}

describe('jsonSubset', () => {
  it('matches nested subsets and refuses differences', () => {
    expect(jsonSubset({ a: 1, b: { c: [1, { d: 'x' }] } }, { a: 1, z: 2, b: { c: [1, { d: 'x', e: 0 }], y: 1 } })).toBe(true);
    expect(jsonSubset({ a: 1 }, { a: '1' })).toBe(false);
    expect(jsonSubset({ a: [1, 2] }, { a: [1, 2, 3] })).toBe(false);
    expect(jsonSubset({ a: null }, { a: null })).toBe(true);
    expect(jsonSubset({ a: undefined }, {})).toBe(false);
    expect(jsonSubset({}, [])).toBe(false);
    expect(jsonSubset(true, true)).toBe(true);
  });
});

describe('verify config', () => {
  const env = (e: object) => parseConfig({ environments: [{ name: 'dev', ...e }] }).environments[0]!;
  it('accepts one check or a list and a canary strategy', () => {
    expect(env({ verify: { kind: 'http', url: 'http://x/v1/release', expectVersion: true } }).verify).toEqual([
      { kind: 'http', url: 'http://x/v1/release', expectVersion: true },
    ]);
    const e = env({
      verify: [
        { kind: 'command', command: ['true'], projects: ['api'] },
        { kind: 'lambda', payload: 'p.json', expect: { ok: true }, onFailure: 'hold' },
      ],
      strategy: { canary: { percent: 10, minutes: 5 } },
    });
    expect(e.verify).toHaveLength(2);
    expect(e.strategy).toEqual({ canary: { percent: 10, minutes: 5, steps: [{ percent: 10, minutes: 5 }] } });
    expect(env({}).verify).toBeUndefined();
  });
  it('refuses bad checks with one line naming the field', () => {
    const bad = (e: object) => () => parseConfig({ environments: [{ name: 'dev', ...e }] }, 'buildonce.json');
    expect(bad({ verify: { kind: 'http', url: 'ftp://x' } })).toThrow(
      /^buildonce.json: environments\.0\.verify\.0\.url: must be an http:\/\/ or https:\/\/ URL$/,
    );
    expect(bad({ verify: { kind: 'lambda' } })).toThrow(/environments\.0\.verify\.0\.payload/);
    expect(bad({ verify: [{ kind: 'command', command: 'echo hi' }] })).toThrow(/environments\.0\.verify\.0\.command/);
    expect(bad({ verify: [{ kind: 'command', command: ['x'], bogus: 1 }] })).toThrow(/environments\.0\.verify\.0/);
    expect(bad({ verify: { kind: 'ping' } })).toThrow(/environments\.0\.verify\.0\.kind/);
    expect(bad({ verify: { kind: 'http', url: 'http://x', onFailure: 'ignore' } })).toThrow(/verify\.0\.onFailure/);
    expect(bad({ strategy: { canary: { percent: 100, minutes: 1 } } })).toThrow(/environments\.0\.strategy\.canary\.percent/);
    for (const f of [bad({ verify: { kind: 'ping' } }), bad({ strategy: { canary: { percent: 0, minutes: 1 } } })]) {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as Error).message).not.toContain('\n');
      }
    }
  });
  it('applies checks by project', () => {
    const checks: VerifyCheck[] = [
      { kind: 'command', command: ['a'], projects: ['api'] },
      { kind: 'command', command: ['b'] },
    ];
    expect(checksFor(checks, 'api' as ProjectName).map((c) => c.kind === 'command' && c.command[0])).toEqual(['a', 'b']);
    expect(checksFor(checks, 'scorer' as ProjectName).map((c) => c.kind === 'command' && c.command[0])).toEqual(['b']);
    expect(checksFor(undefined, 'x' as ProjectName)).toEqual([]);
  });
});

describe('prepareChecks', () => {
  it('reads lambda payloads before the deploy and drops lambda checks for non-Lambda targets', async () => {
    const dir = tempDir('verify-prep-');
    writeFileSync(join(dir, 'ok.json'), '{"a":1}');
    writeFileSync(join(dir, 'bad.json'), '{a');
    const log: string[] = [];
    const o = { targetKind: 'lambda' as const, workspaceRoot: dir, log: (l: string) => log.push(l) };
    expect(await prepareChecks([{ kind: 'lambda', payload: 'ok.json' }], o)).toHaveLength(1);
    await expect(prepareChecks([{ kind: 'lambda', payload: 'bad.json' }], o)).rejects.toThrow(/verify lambda payload .*bad\.json: not JSON/);
    await expect(prepareChecks([{ kind: 'lambda', payload: 'missing.json' }], o)).rejects.toThrow(/missing\.json: cannot read \(ENOENT\)/);
    expect(
      await prepareChecks(
        [
          { kind: 'lambda', payload: 'missing.json' },
          { kind: 'command', command: ['true'] },
        ],
        { ...o, targetKind: 'local' },
      ),
    ).toEqual([{ kind: 'command', command: ['true'] }]);
    expect(log.join('\n')).toMatch(/skipped: the local target has no Lambda function to invoke/);
  });
});

describe('http check (real HTTP server)', () => {
  let server: Server;
  let base: string;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url === '/flaky' && hits % 3 !== 0) return void res.writeHead(503).end('warming up');
      if (req.url === '/release') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version: '7', status: 'ok' }));
      if (req.url === '/flaky') return void res.writeHead(200).end('ok');
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('retries until the expected status', async () => {
    hits = 0;
    const r = await runCheck({ kind: 'http', url: `${base}/flaky`, intervalSeconds: 0.01, timeoutSeconds: 5 }, ctx());
    expect(r).toMatchObject({ passed: true, attempts: 3 });
  });
  it('checks the reported version', async () => {
    expect(await runCheck({ kind: 'http', url: `${base}/release`, expectVersion: true }, ctx())).toMatchObject({
      passed: true,
      attempts: 1,
      detail: expect.stringContaining('version 7'),
    });
    const r = await runCheck(
      { kind: 'http', url: `${base}/release`, expectVersion: true, intervalSeconds: 0.01, timeoutSeconds: 0.3 },
      ctx({ version: '8' as Version, sleep: undefined }),
    );
    expect(r.passed).toBe(false);
    expect(r.detail).toMatch(/→ 200 but version is "7", expected 8 \(gave up after \d+ attempt\(s\)/);
  });
  it('fails on the wrong status and on a closed port, within the timeout', async () => {
    const r = await runCheck({ kind: 'http', url: `${base}/nope`, intervalSeconds: 0.01, timeoutSeconds: 0.05 }, ctx({ sleep: undefined }));
    expect(r).toMatchObject({ passed: false, detail: expect.stringMatching(/→ 404, expected 200/) });
    const spare = createServer();
    await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
    const port = (spare.address() as AddressInfo).port;
    await new Promise<void>((r) => spare.close(() => r()));
    const closed = await runCheck({ kind: 'http', url: `http://127.0.0.1:${port}/x`, intervalSeconds: 0.01, timeoutSeconds: 0.05 }, ctx({ sleep: undefined }));
    expect(closed).toMatchObject({ passed: false, detail: expect.stringMatching(/ECONNREFUSED/) });
  });
});

describe('command check (real processes)', () => {
  it('passes on exit 0 with BUILDONCE_VERSION/ENV/PROJECT set and fails with the last output line', async () => {
    const ok = await runCheck(
      {
        kind: 'command',
        command: [
          'node',
          '-e',
          'process.exit(process.env.BUILDONCE_VERSION === "7" && process.env.BUILDONCE_ENV === "staging" && process.env.BUILDONCE_PROJECT === "svc" ? 0 : 3)',
        ],
      },
      ctx(),
    );
    expect(ok).toMatchObject({ passed: true, attempts: 1 });
    const bad = await runCheck({ kind: 'command', command: ['node', '-e', 'console.error("smoke: /score returned 500"); process.exit(4)'] }, ctx());
    expect(bad).toMatchObject({ passed: false, detail: expect.stringMatching(/exited 4: smoke: \/score returned 500$/) });
    const slow = await runCheck({ kind: 'command', command: ['node', '-e', 'setTimeout(() => {}, 10000)'], timeoutSeconds: 0.3 }, ctx());
    expect(slow).toMatchObject({ passed: false, detail: expect.stringMatching(/timed out after 300 ms/) });
    const missing = await runCheck({ kind: 'command', command: ['no-such-binary-buildonce'] }, ctx());
    expect(missing.passed).toBe(false);
  });
  it('runChecks stops at the first failure and sums attempts', async () => {
    const r = await runChecks(
      [
        { kind: 'command', command: ['true'] },
        { kind: 'command', command: ['false'] },
        { kind: 'command', command: ['true'] },
      ],
      ctx(),
    );
    expect(r?.verification).toMatchObject({ kind: 'command', passed: false, attempts: 2 });
    expect(r?.failed).toEqual({ kind: 'command', command: ['false'] });
    expect(await runChecks([], ctx())).toBeUndefined();
  });
});

describe('verifyDeploy with a canary', () => {
  const started: DeployResult = {
    target: 'lambda',
    functionName: 'f',
    functionVersion: '3',
    codeSha256: 'x',
    alias: 'staging',
    s3Bucket: 'b',
    s3Key: 'k',
    method: 'code',
    canary: { percent: 10, stableVersion: '2' },
  };
  it('checks, waits out the window, checks again, then shifts 100 %', async () => {
    const slept: number[] = [];
    let completed = 0;
    const r = await verifyDeploy({
      setup: {
        checks: [{ kind: 'command', command: ['true'] }],
        workspaceRoot: process.cwd(),
        lambda: noAws.lambda,
        cloudwatch: noAws.cloudwatch,
        sleep: async (ms) => void slept.push(ms),
      },
      started,
      project: 'svc' as ProjectName,
      environment: 'staging' as EnvironmentName,
      version: '7' as Version,
      canaryMinutes: 2,
      completeCanary: async (s) => {
        completed++;
        const { canary: _c, ...rest } = s as Extract<DeployResult, { target: 'lambda' }>;
        return rest;
      },
      log: () => {},
    });
    expect(slept).toEqual([120_000]);
    expect(completed).toBe(1);
    expect(r.failure).toBeUndefined();
    expect(r.verification).toMatchObject({ passed: true, attempts: 2 });
    expect(r.result).not.toHaveProperty('canary');
  });
  it('SIGINT during the window ends the canary as a failure without shifting', async () => {
    let completed = 0;
    const listeners = process.listenerCount('SIGINT');
    const r = await verifyDeploy({
      setup: { checks: [{ kind: 'command', command: ['true'] }], workspaceRoot: process.cwd(), lambda: noAws.lambda, cloudwatch: noAws.cloudwatch },
      started,
      project: 'svc' as ProjectName,
      environment: 'staging' as EnvironmentName,
      version: '7' as Version,
      canaryMinutes: 0.05,
      completeCanary: async (s) => (completed++, s),
      // the window starts right after this line: interrupt it (the handler is installed synchronously after)
      log: (l) => void (l.startsWith('canary: 10%') && setTimeout(() => process.emit('SIGINT'), 20)),
    });
    expect(completed).toBe(0);
    expect(r).toMatchObject({ failure: 'canary interrupted by SIGINT', onFailure: 'rollback', verification: { passed: false, attempts: 1 } });
    expect(process.listenerCount('SIGINT')).toBe(listeners);
  });
  it('a failed final shift is a failed verification (the caller restores the old version)', async () => {
    const r = await verifyDeploy({
      setup: { checks: [], workspaceRoot: process.cwd(), lambda: noAws.lambda, cloudwatch: noAws.cloudwatch, sleep: async () => {} },
      started,
      project: 'svc' as ProjectName,
      environment: 'staging' as EnvironmentName,
      version: '7' as Version,
      canaryMinutes: 0,
      completeCanary: async () => {
        throw new Error('Lambda f: ServiceException: boom\nmore');
      },
      log: () => {},
    });
    expect(r).toMatchObject({
      failure: 'canary shift to 100% failed: Lambda f: ServiceException: boom more',
      onFailure: 'rollback',
      verification: { passed: false },
    });
  });
  it('a failing check ends the canary without shifting', async () => {
    let completed = 0;
    const r = await verifyDeploy({
      setup: {
        checks: [{ kind: 'command', command: ['false'], onFailure: 'hold' }],
        workspaceRoot: process.cwd(),
        lambda: noAws.lambda,
        cloudwatch: noAws.cloudwatch,
        sleep: async () => {},
      },
      started,
      project: 'svc' as ProjectName,
      environment: 'staging' as EnvironmentName,
      version: '7' as Version,
      canaryMinutes: 1,
      completeCanary: async (s) => (completed++, s),
      log: () => {},
    });
    expect(completed).toBe(0);
    expect(r).toMatchObject({ failure: expect.stringMatching(/^command false failed: false exited 1/), onFailure: 'hold', verification: { passed: false } });
  });
});

describe('policy counts only verified successes', () => {
  const prod = { kind: 'chain' as const, name: 'prod' as EnvironmentName, requires: ['staging' as EnvironmentName], soakMinutes: 0 };
  it('refuses a succeeded entry whose verification failed, accepts old entries without one', () => {
    const v = { kind: 'http' as const, attempts: 1, durationMs: 5, detail: 'x' };
    const ok = {
      ...draft('5' as Version, { environment: 'staging' as EnvironmentName, verification: { ...v, passed: true } }),
      seq: 1,
      previousVersion: null,
      schemaVersion: 1 as const,
    };
    const bad = { ...ok, verification: { ...v, passed: false } };
    const old = { ...ok, verification: undefined };
    expect(isVerifiedSuccess(ok)).toBe(true);
    expect(isVerifiedSuccess(bad)).toBe(false);
    expect(isVerifiedSuccess(old)).toBe(true);
    expect(isVerifiedSuccess({ ...ok, status: 'failed' })).toBe(false);
    expect(checkPolicy(prod, '5' as Version, { staging: bad }, new Date())).toMatchObject({ ok: false });
    expect(checkPolicy(prod, '5' as Version, { staging: ok }, new Date())).toEqual({ ok: true });
  });
});
