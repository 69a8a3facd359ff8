import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { PutMetricAlarmCommand, PutMetricDataCommand, SetAlarmStateCommand, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsClients } from '@buildonce/aws';
import { aliasRouting, lambdaCommands, oneLineRejection, sampleWhile, startFaultProxy, motoWorkspace, type FaultProxy, publishFake } from '@buildonce/testing';
import { runPromoteCommand } from './commands';
import { readCurrent, readHistory } from '@buildonce/ledger';
import { collectReleases, renderTable } from '@buildonce/promotion';
import { VerificationFailedError } from '@buildonce/verification';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/**
 * Alarm and metric verification end to end against moto_server: Lambda control plane (versions,
 * weighted aliases), S3 store, CloudWatch (PutMetricAlarm, SetAlarmState, DescribeAlarms,
 * PutMetricData, GetMetricData). The test seeds metrics per ExecutedVersion and flips alarm states
 * while the promotion runs, reacting to its log lines; measurements every 1 s, canary steps of 3 s.
 */

const PROJECT = 'svc';
const STEPS = {
  canary: {
    steps: [
      { percent: 10, minutes: 0.05 },
      { percent: 50, minutes: 0.05 },
    ],
  },
};
const ENVS = ['dev', 'alarmed', 'rated', 'baseline', 'sparse', 'lenient', 'guarded', 'term'];

const every = { intervalSeconds: 1 };
const world = motoWorkspace({
  bucket: 'metrics-it',
  prefix: 'verify-metrics-ws-',
  config: {
    environments: [
      { name: 'dev' },
      { name: 'alarmed', requires: ['dev'], strategy: STEPS, verify: { kind: 'alarm', alarms: ['{project}-{env}-errors'], ...every } },
      { name: 'rated', requires: ['dev'], strategy: STEPS, verify: { kind: 'metric', metric: 'errorRate', max: 0.01, minSamples: 10, ...every } },
      { name: 'baseline', requires: ['dev'], strategy: STEPS, verify: { kind: 'metric', metric: 'errorRate', maxIncrease: 0.005, minSamples: 10, ...every } },
      { name: 'sparse', requires: ['dev'], strategy: STEPS, verify: { kind: 'metric', metric: 'errorRate', max: 0.01, minSamples: 100, ...every } },
      {
        name: 'lenient',
        requires: ['dev'],
        verify: { kind: 'metric', metric: 'errorRate', max: 0.01, minSamples: 100, onInconclusive: 'promote', count: 2, ...every },
      },
      { name: 'guarded', requires: ['dev'], verify: { kind: 'alarm', alarmPrefix: '{project}-guarded-', ...every, count: 2 } },
      {
        name: 'term',
        requires: ['dev'],
        strategy: {
          canary: {
            steps: [
              { percent: 10, minutes: 0.05 },
              { percent: 50, minutes: 1 },
            ],
          },
        },
        verify: { kind: 'alarm', alarms: ['{project}-{env}-errors'], ...every },
      },
    ],
    lock: { ttlSeconds: 10, waitSeconds: 60 },
  },
  functions: ENVS.map((env) => `${PROJECT}-${env}`),
});
beforeAll(world.start);
afterAll(world.stop);
let proxy: FaultProxy;
let lambda: LambdaClient;
let cw: CloudWatchClient;
const dirs = new Map<string, string>();
const lines: string[] = [];
const pending: Promise<unknown>[] = [];
/** per function: what the next published version receives as traffic (seeded when it is published) */
const traffic = new Map<string, { invocations: number; errors: number }>();
/** per log line pattern: what to do when the promotion logs it (once) */
const hooks: { re: RegExp; fn: (m: RegExpExecArray) => Promise<unknown> | void }[] = [];

/** PutMetricData of Lambda's per-version alias metrics (what Lambda publishes for alias invocations). */
async function seed(fn: string, alias: string, version: string, t: { invocations: number; errors: number }) {
  const Dimensions = [
    { Name: 'FunctionName', Value: fn },
    { Name: 'Resource', Value: `${fn}:${alias}` },
    { Name: 'ExecutedVersion', Value: version },
  ];
  await cw.send(
    new PutMetricDataCommand({
      Namespace: 'AWS/Lambda',
      MetricData: [
        { MetricName: 'Invocations', Dimensions, Value: t.invocations, Unit: 'Count', Timestamp: new Date() },
        { MetricName: 'Errors', Dimensions, Value: t.errors, Unit: 'Count', Timestamp: new Date() },
      ],
    }),
  );
}

function log(l: string) {
  lines.push(l);
  const pub = /PublishVersion (svc-([a-z]+)) → version (\d+)/.exec(l);
  if (pub && traffic.has(pub[1]!)) pending.push(seed(pub[1]!, pub[2]!, pub[3]!, traffic.get(pub[1]!)!));
  for (let i = 0; i < hooks.length; i++) {
    const m = hooks[i]!.re.exec(l);
    if (m) {
      const [h] = hooks.splice(i, 1);
      pending.push(Promise.resolve(h!.fn(m)));
      break;
    }
  }
}

async function version(v: string): Promise<string> {
  if (!dirs.has(v)) dirs.set(v, (await publishFake(world.store, { project: PROJECT as ProjectName, version: v as Version })).dir);
  return dirs.get(v)!;
}

/** the environment of the promotions: moto's, no BUILDONCE_STORE from the machine */
const penv = () => ({ ...process.env, ...world.moto.env, BUILDONCE_STORE: '' });
const promotion = lambdaCommands(() => ({ project: PROJECT, workspaceRoot: world.workspaceRoot, processEnv: penv(), log })).promote;
const cmd = (env: string, dir: string, extraEnv: Record<string, string> = {}) => promotion(env, dir, { processEnv: { ...penv(), ...extraEnv } });

async function promote(env: string, v: string, extraEnv?: Record<string, string>) {
  const d = await version(v);
  try {
    return await runPromoteCommand(cmd(env, d, extraEnv));
  } finally {
    await Promise.all(pending);
  }
}

const failure = (p: Promise<unknown>) => oneLineRejection(p, VerificationFailedError);

const alias = (env: string) => aliasRouting(lambda, `${PROJECT}-${env}`, env);

async function alarm(name: string, state: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA') {
  await cw.send(new SetAlarmStateCommand({ AlarmName: name, StateValue: state, StateReason: `test sets ${state}` }));
}

beforeAll(async () => {
  proxy = await startFaultProxy({ target: world.moto.endpoint });
  const clients = awsClients({ env: { ...process.env, ...world.moto.env } });
  lambda = clients.lambda();
  cw = clients.cloudwatch();
  for (const name of ['svc-alarmed-errors', 'svc-guarded-errors', 'svc-guarded-latency', 'svc-term-errors']) {
    await cw.send(
      new PutMetricAlarmCommand({
        AlarmName: name,
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Statistic: 'Sum',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanThreshold',
      }),
    );
    await alarm(name, 'OK');
  }
  for (const v of ['1', '2', '3']) await promote('dev', v);
}, 300_000);

afterAll(async () => {
  await proxy?.stop();
});

describe('alarm and metric verification through a stepped canary (moto CloudWatch, 1 s measurements)', () => {
  it('an alarm flipping to ALARM at step 2 restores the alias (weights cleared) and records the step; releases shows it', async () => {
    await promote('alarmed', '1');
    const stable = await alias('alarmed');
    hooks.push({ re: /canary: step 2\/2: 50% on version/, fn: () => alarm('svc-alarmed-errors', 'ALARM') });
    const { result: e, samples: seen } = await sampleWhile(() => alias('alarmed'), 150, failure(promote('alarmed', '2')));
    await alarm('svc-alarmed-errors', 'OK');
    expect(e.message).toMatch(/^verification failed for 2 in alarmed \(seq 2\): alarm svc-alarmed-errors in ALARM at step 2; rolled back to 1 \(seq 3\)$/);
    const after = await alias('alarmed');
    expect(after).toEqual({ version: stable.version, weights: {} });
    const canaryVersion = Object.keys(seen.find((s) => Object.keys(s.weights).length)?.weights ?? {})[0]!;
    expect(seen).toContainEqual({ version: stable.version, weights: { [canaryVersion]: 0.1 } });
    expect(seen).toContainEqual({ version: stable.version, weights: { [canaryVersion]: 0.5 } });
    const h = await readHistory(world.store, PROJECT as ProjectName, 'alarmed' as EnvironmentName);
    expect(h.map((x) => [x.seq, x.version, x.status, x.rollback])).toEqual([
      [1, '1', 'succeeded', false],
      [2, '2', 'failed', false],
      [3, '1', 'succeeded', true],
    ]);
    const a = h[1]!.verification!.analysis!;
    expect(a).toMatchObject({ result: 'failed', action: 'rollback', step: 2, steps: 2, summary: 'alarm svc-alarmed-errors in ALARM at step 2' });
    expect(a.measurements.filter((m) => m.step === 1).every((m) => m.verdict === 'passed')).toBe(true);
    expect(a.measurements.at(-1)).toMatchObject({ step: 2, verdict: 'failed', calls: 1, check: 'alarm svc-alarmed-errors' });
    const rows = await collectReleases({ store: world.store, project: PROJECT as ProjectName, env: 'alarmed' as EnvironmentName });
    expect(renderTable(rows, PROJECT as ProjectName)).toContain('FAILED alarm svc-alarmed-errors in ALARM at step 2');
    expect(JSON.parse(JSON.stringify(rows)).find((r: { seq: number }) => r.seq === 2).verification.analysis.measurements.length).toBe(a.measurements.length);
  }, 120_000);

  it("the new version's error rate over the threshold fails at step 2 while the old version's is fine", async () => {
    traffic.set('svc-rated', { invocations: 100, errors: 0 });
    await promote('rated', '1');
    let newVersion = '';
    hooks.push({
      re: /canary: step 2\/2: 50% on version (\d+)/,
      fn: (m) => seed('svc-rated', 'rated', (newVersion = m[1]!), { invocations: 100, errors: 10 }),
    });
    const e = await failure(promote('rated', '2'));
    expect(e.message).toMatch(/^verification failed for 2 in rated \(seq 2\): metric errorRate 0\.05 > 0\.01 at step 2; rolled back to 1 \(seq 3\)$/);
    const h = await readHistory(world.store, PROJECT as ProjectName, 'rated' as EnvironmentName);
    const a = h[1]!.verification!.analysis!;
    expect(a.measurements.filter((m) => m.step === 1).map((m) => [m.value, m.samples, m.verdict])).toEqual([
      [0, 100, 'passed'],
      [0, 100, 'passed'],
      [0, 100, 'passed'],
    ]);
    expect(a.measurements.at(-1)).toMatchObject({ step: 2, value: 0.05, samples: 200, verdict: 'failed', detail: '0.05 > 0.01' });
    expect(a.checks).toEqual([
      {
        check: 'metric errorRate',
        kind: 'metric',
        result: 'failed',
        measurements: a.measurements.length,
        failed: 1,
        inconclusive: 0,
        calls: a.measurements.length,
      },
    ]);
    expect(newVersion).not.toBe('');
    expect((await alias('rated')).weights).toEqual({});
    expect((await readCurrent(world.store, PROJECT as ProjectName, 'rated' as EnvironmentName))?.entry.version).toBe('1');
  }, 120_000);

  it('baseline comparison: the same error rate as the previous version passes, a higher one fails', async () => {
    traffic.set('svc-baseline', { invocations: 200, errors: 4 });
    await promote('baseline', '1');
    hooks.push({
      re: /canary: step 1\/2: 10% on version \d+ .* restores (\d+)\)/,
      fn: (m) => seed('svc-baseline', 'baseline', m[1]!, { invocations: 200, errors: 4 }),
    });
    const ok = await promote('baseline', '2');
    expect(ok).toMatchObject({
      status: 'promoted',
      entry: { version: '2', verification: { passed: true, kind: 'metric', analysis: { result: 'passed', steps: 2 } } },
    });
    const ms = ok.status === 'promoted' ? ok.entry.verification!.analysis!.measurements : [];
    expect(ms).toHaveLength(6);
    expect(ms.every((m) => m.value === 0.02 && m.baseline === 0.02 && m.verdict === 'passed')).toBe(true);
    expect((await alias('baseline')).weights).toEqual({});

    traffic.set('svc-baseline', { invocations: 200, errors: 20 });
    hooks.push({
      re: /canary: step 1\/2: 10% on version \d+ .* restores (\d+)\)/,
      fn: (m) => seed('svc-baseline', 'baseline', m[1]!, { invocations: 200, errors: 4 }),
    });
    const e = await failure(promote('baseline', '3'));
    expect(e.message).toMatch(/: metric errorRate 0\.1 > previous 0\.02 \+ 0\.005 at step 1; rolled back to 2 \(seq \d+\)$/);
  }, 120_000);

  it('--dry-run measures the configured checks once against current data and changes nothing', async () => {
    traffic.set('svc-rated', { invocations: 100, errors: 0 });
    const before = await readHistory(world.store, PROJECT as ProjectName, 'rated' as EnvironmentName);
    const current = (await alias('rated')).version!;
    await seed('svc-rated', 'rated', current, { invocations: 300, errors: 9 });
    const start = lines.length;
    const r = await runPromoteCommand({ ...cmd('rated', await version('3')), dryRun: true });
    expect(r.status).toBe('dry-run');
    // 9 errors in 300 on top of the clean traffic seeded earlier in the window: above 1 %
    expect(lines.slice(start).join('\n')).toMatch(
      new RegExp(`\\[svc\\] dry run: metric errorRate of version ${current} \\(what the alias runs now\\): 0\\.0[1-3]\\d* > 0\\.01 → would fail`),
    );
    expect(await readHistory(world.store, PROJECT as ProjectName, 'rated' as EnvironmentName)).toEqual(before);
    const a = lines.length;
    await runPromoteCommand({ ...cmd('alarmed', await version('3')), dryRun: true });
    expect(lines.slice(a)).toContainEqual('[svc] dry run: alarm svc-alarmed-errors: 1 alarm(s) OK → would pass');
  }, 120_000);

  it('too few samples is inconclusive, and inconclusive rolls back by default', async () => {
    traffic.set('svc-sparse', { invocations: 200, errors: 0 });
    await promote('sparse', '1');
    traffic.set('svc-sparse', { invocations: 5, errors: 0 });
    const e = await failure(promote('sparse', '2'));
    expect(e.message).toMatch(
      /: metric errorRate inconclusive: too few samples: 5 < 100 \(6 of 6 measurement\(s\) inconclusive, inconclusiveLimit 0\); onInconclusive rollback; rolled back to 1 \(seq 3\)$/,
    );
    const h = await readHistory(world.store, PROJECT as ProjectName, 'sparse' as EnvironmentName);
    expect(h[1]!.verification!.analysis).toMatchObject({ result: 'inconclusive', action: 'rollback' });
    expect(h.map((x) => [x.version, x.status, x.rollback])).toEqual([
      ['1', 'succeeded', false],
      ['2', 'failed', false],
      ['1', 'succeeded', true],
    ]);
  }, 120_000);

  it('onInconclusive promote: too few samples still moves the pointer, and the entry says it was inconclusive', async () => {
    traffic.set('svc-lenient', { invocations: 3, errors: 0 });
    const r = await promote('lenient', '1');
    expect(r).toMatchObject({
      status: 'promoted',
      entry: { verification: { passed: true, analysis: { result: 'inconclusive', action: 'promote', steps: 1 } } },
    });
    const a = r.status === 'promoted' ? r.entry.verification!.analysis! : undefined;
    expect(a?.measurements.map((m) => [m.step, m.verdict, m.samples])).toEqual([
      [1, 'inconclusive', 3],
      [1, 'inconclusive', 3],
    ]);
    expect(lines.some((l) => /verify: metric errorRate inconclusive: too few samples: 3 < 100 .*onInconclusive promote/.test(l))).toBe(true);
  }, 120_000);

  it('an alarm that cannot be read (403, throttled past retries) fails closed', async () => {
    const viaProxy = { AWS_ENDPOINT_URL_CLOUDWATCH: proxy.endpoint, AWS_MAX_ATTEMPTS: '2' };
    await promote('guarded', '1', viaProxy);
    const describe = (r: { headers: Record<string, unknown> }) => String(r.headers['x-amz-target'] ?? '').endsWith('.DescribeAlarms');
    void proxy.failNext('403', describe);
    const denied = await failure(promote('guarded', '2', viaProxy));
    expect(denied.message).toMatch(
      /^verification failed for 2 in guarded \(seq 2\): alarm unreadable: DescribeAlarms: AccessDenied.*\(HTTP 403\).*; rolled back to 1 \(seq 3\)$/,
    );
    const before = proxy.stats.faults.throttle;
    void proxy.failNext('throttle', describe);
    void proxy.failNext('throttle', describe);
    const throttled = await failure(promote('guarded', '3', viaProxy));
    expect(proxy.stats.faults.throttle - before).toBe(2); // the SDK retried once (AWS_MAX_ATTEMPTS=2), then gave up
    expect(throttled.message).toMatch(/: alarm unreadable: DescribeAlarms: Throttling.*\(HTTP 400\).*; rolled back to 1 \(seq 5\)$/);
    expect((await readCurrent(world.store, PROJECT as ProjectName, 'guarded' as EnvironmentName))?.entry.version).toBe('1');
  }, 120_000);

  it('SIGTERM during a step restores the alias and records the interruption', async () => {
    await promote('term', '1');
    const stable = await alias('term');
    const child = spawn(
      process.execPath,
      ['-r', '@swc-node/register', join(__dirname, '../../testing/src/release/canary-child.ts'), world.workspaceRoot, await version('2'), 'term'],
      {
        env: penv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    let killed = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!killed && /canary: step 2\/2/.test(out)) {
        killed = true;
        setTimeout(() => child.kill('SIGTERM'), 1500);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(killed, out + err).toBe(true);
    expect(code, out + err).toBe(1);
    expect(err).toMatch(/^verification failed for 2 in term \(seq 2\): canary interrupted by SIGTERM at step 2; rolled back to 1 \(seq 3\)$/m);
    expect(await alias('term')).toEqual({ version: stable.version, weights: {} });
    const h = await readHistory(world.store, PROJECT as ProjectName, 'term' as EnvironmentName);
    expect(h.map((x) => [x.version, x.status, x.rollback, x.error ?? ''])).toEqual([
      ['1', 'succeeded', false, ''],
      ['2', 'failed', false, 'canary interrupted by SIGTERM at step 2'],
      ['1', 'succeeded', true, ''],
    ]);
    expect(h[1]!.verification!.analysis).toMatchObject({ result: 'failed', step: 2 });
  }, 120_000);
});
