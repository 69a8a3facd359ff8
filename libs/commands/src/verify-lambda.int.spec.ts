import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsClients } from '@buildonce/aws';
import { sha256File, sha256HexToBase64 } from '@buildonce/artifact';
import {
  aliasRouting,
  buildScorerBootstrap,
  lambdaCommands,
  oneLineRejection,
  RUST_SCORER_DIR,
  sampleWhile,
  startLambdaInvokeServer,
  motoWorkspace,
  type LambdaInvokeServer,
  publishFake,
} from '@buildonce/testing';
import { runPromoteCommand } from './commands';
import { PolicyError } from '@buildonce/errors';
import { readCurrent, readHistory } from '@buildonce/ledger';
import { VerificationFailedError } from '@buildonce/verification';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/**
 * Lambda verification end to end: moto for the Lambda control plane (functions, versions, aliases with
 * RoutingConfig) and S3, the real rust-scorer `bootstrap` (built with cargo) answering invocations
 * through the local Invoke endpoint (libs/testing lambda-invoke.ts), reached by the promote command's
 * own Lambda client via AWS_ENDPOINT_URL_LAMBDA.
 */

const PROJECT = 'rust-scorer';
const weightsVersion = (JSON.parse(readFileSync(join(RUST_SCORER_DIR, 'weights.json'), 'utf8')) as { version: string }).version;
/** weights that fail validation at init: the build compiles, every invocation fails */
const BROKEN_WEIGHTS = JSON.stringify({ version: 'broken', threshold: 20, weights: { Google: 'not-a-number' } });

const check = {
  kind: 'lambda',
  payload: 'score-event.json',
  expect: { address: '0xabcdef0123456789abcdef0123456789abcdef01', weights_version: weightsVersion },
  attempts: 2,
  intervalSeconds: 0.1,
  timeoutSeconds: 10,
};
const world = motoWorkspace({
  bucket: 'verify-it',
  prefix: 'verify-lambda-ws-',
  config: {
    environments: [
      { name: 'dev' },
      { name: 'staging', verify: check },
      { name: 'prod', requires: ['staging'] },
      { name: 'canary', requires: ['dev'], verify: check, strategy: { canary: { percent: 10, minutes: 0.05 } } },
    ],
    lock: { ttlSeconds: 5, waitSeconds: 120 },
  },
  functions: ['dev', 'staging', 'prod', 'canary'].map((env) => `${PROJECT}-${env}`),
});
beforeAll(world.start);
afterAll(world.stop);
let invoke: LambdaInvokeServer;
let lambda: LambdaClient;
let good: string;
let broken: string;
const packages = new Map<string, string>();
const lines: string[] = [];

async function publish(version: string, bootstrap: string): Promise<string> {
  const { dir, manifest } = await publishFake(world.store, { project: PROJECT as ProjectName, version: version as Version, bootstrap });
  const zip = join(dir, manifest.files[0]!.name);
  packages.set(sha256HexToBase64((await sha256File(zip)).hex), zip);
  return dir;
}

const cmd = lambdaCommands(() => ({
  project: PROJECT,
  workspaceRoot: world.workspaceRoot,
  // no injected client: the command builds its own from libs/aws, whose Lambda endpoint is the Invoke server
  processEnv: { ...process.env, ...world.moto.env, AWS_ENDPOINT_URL_LAMBDA: invoke.endpoint, BUILDONCE_STORE: '' },
  log: (l) => lines.push(l),
})).promote;

const alias = (env: string) => aliasRouting(lambda, `${PROJECT}-${env}`, env);

beforeAll(async () => {
  [good, broken] = await Promise.all([buildScorerBootstrap(), buildScorerBootstrap({ weightsJson: BROKEN_WEIGHTS })]);
  writeFileSync(
    join(world.workspaceRoot, 'score-event.json'),
    JSON.stringify({ address: '0xAbCdEf0123456789abcdef0123456789ABCDEF01', stamps: [{ provider: 'Google', expires_at: '2999-01-01T00:00:00Z' }] }),
  );
  invoke = await startLambdaInvokeServer({ moto: world.moto.endpoint, packageFor: (sha) => packages.get(sha) });
  // the SDK reads the per-service endpoint from process.env: every Lambda call of this process goes
  // through the Invoke server (it forwards everything but Invoke to moto)
  process.env.AWS_ENDPOINT_URL_LAMBDA = invoke.endpoint;
  lambda = awsClients({ env: { ...process.env, ...world.moto.env } }).lambda();
}, 600_000);

afterAll(async () => {
  delete process.env.AWS_ENDPOINT_URL_LAMBDA;
  await invoke?.stop();
});

describe('lambda verification (real bootstrap behind a local Invoke endpoint, moto control plane)', () => {
  it('verifies the new version, rolls back a broken scorer, and prod refuses it', async () => {
    const v1 = await publish('3001', good);
    const v2 = await publish('3002', broken);
    await runPromoteCommand(cmd('dev', v1));
    const ok = await runPromoteCommand(cmd('staging', v1));
    expect(ok).toMatchObject({ status: 'promoted', entry: { verification: { kind: 'lambda', passed: true, attempts: 1 } } });
    expect(ok.status === 'promoted' && ok.entry.verification?.detail).toContain(`"weights_version":"${weightsVersion}"`);
    const v1Lambda = (await alias('staging')).version!;
    // the check invoked the published version number, not the alias
    expect(invoke.invocations.at(-1)).toEqual({ functionName: `${PROJECT}-staging`, version: v1Lambda });

    await runPromoteCommand(cmd('dev', v2)); // dev has no checks
    const e = await oneLineRejection(runPromoteCommand(cmd('staging', v2)), VerificationFailedError);
    expect(e.message).toMatch(
      /^verification failed for 3002 in staging \(seq 2\): lambda invoke with score-event\.json failed: invoke rust-scorer-staging:\d+: FunctionError Unhandled: .*invalid weights.*; rolled back to 3001 \(seq 3\)$/,
    );
    const calls = invoke.invocations.filter((i) => i.functionName === `${PROJECT}-staging` && i.version !== v1Lambda);
    expect(calls).toHaveLength(2); // attempts: 2
    expect(calls.every((c) => c.functionError === 'Unhandled')).toBe(true);
    expect(await alias('staging')).toEqual({ version: v1Lambda, weights: {} });
    const h = await readHistory(world.store, PROJECT as ProjectName, 'staging' as EnvironmentName);
    expect(h.map((x) => [x.seq, x.version, x.status, x.rollback])).toEqual([
      [1, '3001', 'succeeded', false],
      [2, '3002', 'failed', false],
      [3, '3001', 'succeeded', true],
    ]);
    expect(h[1]!.verification).toMatchObject({ kind: 'lambda', passed: false, attempts: 2 });
    expect(h[2]!.deploy).toMatchObject({ method: 'alias', functionVersion: v1Lambda });
    expect((await readCurrent(world.store, PROJECT as ProjectName, 'staging' as EnvironmentName))?.entry.version).toBe('3001');
    const refused = await oneLineRejection(runPromoteCommand(cmd('prod', v2)), PolicyError);
    expect(refused.message).toMatch(/^version 3002 has not succeeded in staging, which prod requires/);
    await expect(runPromoteCommand(cmd('prod', v1))).resolves.toMatchObject({ status: 'promoted' });
  }, 120_000);

  it('canary: alias stays on the old version with weights during the window, then 100 %; a broken canary leaves no weights', async () => {
    const v1 = await publish('3101', good);
    const v2 = await publish('3102', good);
    const v3 = await publish('3103', broken);
    for (const d of [v1, v2, v3]) await runPromoteCommand(cmd('dev', d));
    await runPromoteCommand(cmd('canary', v1)); // first release: nothing to canary against
    const stable = await alias('canary');
    expect(stable.weights).toEqual({});

    const { result: r, samples: seen } = await sampleWhile(() => alias('canary'), 100, runPromoteCommand(cmd('canary', v2)));
    const after = await alias('canary');
    expect(after.weights).toEqual({});
    expect(after.version).not.toBe(stable.version);
    expect(seen).toContainEqual({ version: stable.version, weights: { [after.version!]: 0.1 } });
    expect(r).toMatchObject({ status: 'promoted', entry: { verification: { passed: true, attempts: 2 }, deploy: { functionVersion: after.version } } });
    expect(r.status === 'promoted' && r.entry.deploy).not.toHaveProperty('canary');

    const e = await oneLineRejection(runPromoteCommand(cmd('canary', v3)));
    expect(e.message).toMatch(/^verification failed for 3103 in canary .*FunctionError Unhandled.*; rolled back to 3102 \(seq \d+\)$/);
    expect(await alias('canary')).toEqual({ version: after.version, weights: {} });
    expect(lines.some((l) => /canary 10% → version/.test(l))).toBe(true);
  }, 120_000);

  it('two promotions during one canary window: the second waits for the lock, history stays contiguous', async () => {
    const a = await publish('3201', good);
    const b = await publish('3202', good);
    for (const d of [a, b]) await runPromoteCommand(cmd('dev', d));
    const before = (await readHistory(world.store, PROJECT as ProjectName, 'canary' as EnvironmentName)).length;
    const start = lines.length;
    const first = runPromoteCommand(cmd('canary', a));
    // start the second once the first holds the lock and runs its canary
    for (let i = 0; i < 400 && !lines.slice(start).some((l) => l.includes('canary 10% → version')); i++) await new Promise((r) => setTimeout(r, 25));
    const mark = lines.length;
    const second = runPromoteCommand(cmd('canary', b));
    const [ra, rb] = await Promise.all([first, second]);
    expect(ra).toMatchObject({ status: 'promoted', entry: { version: '3201' } });
    expect(rb).toMatchObject({ status: 'promoted', entry: { version: '3202', previousVersion: '3201' } });
    expect(lines.slice(mark).some((l) => /waiting for canary lock held by ci-bot/.test(l))).toBe(true);
    const h = await readHistory(world.store, PROJECT as ProjectName, 'canary' as EnvironmentName);
    expect(h.map((x) => x.seq)).toEqual(h.map((_, i) => i + 1));
    expect(h.slice(before).map((x) => [x.version, x.status])).toEqual([
      ['3201', 'succeeded'],
      ['3202', 'succeeded'],
    ]);
    expect((await alias('canary')).weights).toEqual({});
  }, 120_000);
});
