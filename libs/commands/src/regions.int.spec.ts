import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetAliasCommand, GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { CreateRepositoryCommand, GetLifecyclePolicyCommand } from '@aws-sdk/client-ecr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256HexToBase64 } from '@buildonce/artifact';
import { artifactKey, openStore, parseStoreUrl, RegionReplicaMismatchError, RegionStoreError, type S3BlobStore } from '@buildonce/store';
import { PolicyError, RegionFailureError } from '@buildonce/errors';
import { awsClients } from '@buildonce/aws';
import { readCurrent, readHistory } from '@buildonce/ledger';
import {
  createLambdaRole,
  createPlaceholderFunctions,
  lambdaCommands,
  oneLineRejection,
  publishFake,
  removeTempDirs,
  startFaultProxy,
  startMoto,
  tempDir,
  type FaultProxy,
  type MotoServer,
  type ProxiedRequest,
} from '@buildonce/testing';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import { runEcrLifecycleCommand, runPromoteCommand, runResolveCommand, runRollbackCommand } from './commands';

/*
 * Multi-region promotion on moto_server (one endpoint serves every region): the home store in us-east-1
 * (also us-east-1's store), a region store in eu-west-1, the function rust-scorer-<env> in both regions.
 * Every AWS request goes through a fault proxy, which records them and fails chosen ones.
 */
let moto: MotoServer;
let proxy: FaultProxy;
const seen: ProxiedRequest[] = [];
let processEnv: NodeJS.ProcessEnv;
let workspaceRoot: string;
let home: S3BlobStore;
let euw1: S3BlobStore;
const project = 'rust-scorer' as ProjectName;
const lambdas: Record<string, LambdaClient> = {};
const lines: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startFaultProxy({ target: moto.endpoint, onRequest: (r) => seen.push(r) });
  processEnv = { ...process.env, ...moto.env, AWS_ENDPOINT_URL: proxy.endpoint, AWS_MAX_ATTEMPTS: '1', BUILDONCE_STORE: '' };
  await moto.createBucket('regions-home');
  await moto.createBucket('regions-euw1', 'eu-west-1');
  home = openStore(parseStoreUrl('s3://regions-home/team'), { env: moto.env }) as S3BlobStore;
  euw1 = openStore(parseStoreUrl('s3://regions-euw1/team'), { env: moto.env }) as S3BlobStore;
  workspaceRoot = tempDir('regions-ws-');
  const regions = {
    'us-east-1': { registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com/scorer' },
    'eu-west-1': { store: 's3://regions-euw1/team', registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/scorer' },
  };
  writeFileSync(
    join(workspaceRoot, 'buildonce.json'),
    JSON.stringify({
      store: 's3://regions-home/team',
      environments: [
        { name: 'prod', regions },
        { name: 'live', requires: [], regions, regionFailure: 'hold' },
        { name: 'after', requires: ['live'] },
        { name: 'wrong', requires: [], regions: { 'us-east-1': {}, 'eu-central-1': { store: 's3://regions-euw1/wrong' } } },
      ],
    }),
  );
  const role = await createLambdaRole(moto.endpoint);
  for (const region of ['us-east-1', 'eu-west-1', 'eu-central-1']) {
    lambdas[region] = awsClients({ env: { ...moto.env, AWS_REGION: region } }).lambda();
    const envs = region === 'eu-central-1' ? ['wrong'] : ['prod', 'live', 'wrong'];
    await createPlaceholderFunctions(
      lambdas[region]!,
      moto.endpoint,
      envs.map((env) => `rust-scorer-${env}`),
      role,
    );
  }
});
afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
  removeTempDirs();
});

const commands = lambdaCommands(() => ({ project, workspaceRoot, processEnv, log: (l) => lines.push(l) }));
const cmd = commands.promote;

/** The code the alias `<env>` runs in a region (base64 sha256, as Lambda reports it). */
async function running(region: string, env: string): Promise<string | undefined> {
  const c = lambdas[region]!;
  try {
    const alias = await c.send(new GetAliasCommand({ FunctionName: `rust-scorer-${env}`, Name: env }));
    return (await c.send(new GetFunctionConfigurationCommand({ FunctionName: `rust-scorer-${env}`, Qualifier: alias.FunctionVersion }))).CodeSha256;
  } catch {
    return undefined;
  }
}

/** The code the alias `<env>` runs in each region of prod (us-east-1, eu-west-1). */
const runningInBoth = async (env: string) => ({ 'us-east-1': await running('us-east-1', env), 'eu-west-1': await running('eu-west-1', env) });
/** what runningInBoth reads when both regions run `sha` */
const both = (sha: string) => ({ 'us-east-1': sha, 'eu-west-1': sha });

/** UpdateFunctionCode of rust-scorer-<env> signed for `region` (SigV4 credential scope names the region). */
const updateCodeIn = (region: string, env: string) => (r: ProxiedRequest) =>
  r.method === 'PUT' && r.url.includes(`/functions/rust-scorer-${env}/code`) && String(r.headers.authorization).includes(`/${region}/lambda/`);

/** Promotes `dir` to `env` with eu-west-1's Lambda update of it denied (HTTP 403). @returns the one-line RegionFailureError */
function promoteWithEuWest1Denied(env: string, dir: string): Promise<RegionFailureError> {
  void proxy.failNext('403', updateCodeIn('eu-west-1', env));
  return oneLineRejection(runPromoteCommand(cmd(env, dir)), RegionFailureError);
}

const published: Record<string, { dir: string; sha: string }> = {};
async function version(v: string) {
  const a = await publishFake(home, { project, version: v as Version, content: v });
  return (published[v] = { dir: a.dir, sha: sha256HexToBase64(a.manifest.files[0]!.sha256) });
}

describe('multi-region promotion against moto_server', () => {
  it('copies the version to the region store, then deploys every region from its own store', async () => {
    const v1 = await version('5001');
    const r = await runPromoteCommand(cmd('prod', v1.dir));
    expect(r.status).toBe('promoted');
    expect(await runningInBoth('prod')).toEqual(both(v1.sha));
    const cur = (await readCurrent(home, project, 'prod' as EnvironmentName))!.entry;
    expect(cur.regions).toMatchObject({
      'us-east-1': { status: 'succeeded', copy: 'home', store: 's3://regions-home/team', deploy: { s3Bucket: 'regions-home' } },
      'eu-west-1': { status: 'succeeded', copy: 'copied', store: 's3://regions-euw1/team', deploy: { s3Bucket: 'regions-euw1', codeSha256: v1.sha } },
    });
    // the region store holds a complete version of its own (file and manifest)
    expect(await euw1.head(artifactKey(project, '5001' as Version, 'manifest.json'))).toBeDefined();
    expect(lines.join('\n')).toMatch(/\[eu-west-1\] copied s3:\/\/regions-euw1\/team\/artifacts\/rust-scorer\/5001\/bootstrap\.zip \(eu-west-1, CopyObject/);
    // resolve --region prints the region's URI
    const printed: string[] = [];
    await runResolveCommand({
      project,
      workspaceRoot,
      env: 'prod' as EnvironmentName,
      region: 'eu-west-1',
      processEnv,
      log: () => {},
      print: (t) => printed.push(t),
    });
    await runResolveCommand({ project, workspaceRoot, env: 'prod' as EnvironmentName, processEnv, log: () => {}, print: (t) => printed.push(t) });
    expect(printed).toEqual([
      's3://regions-euw1/team/artifacts/rust-scorer/5001/bootstrap.zip',
      's3://regions-home/team/artifacts/rust-scorer/5001/bootstrap.zip',
    ]);
    await expect(
      runResolveCommand({ project, workspaceRoot, env: 'prod' as EnvironmentName, region: 'ap-south-1', processEnv, log: () => {}, print: () => {} }),
    ).rejects.toThrow(/prod does not list region ap-south-1 \(it lists us-east-1, eu-west-1\)/);
  });

  it('--dry-run lists the copies it would make and changes nothing', async () => {
    const v2 = await version('5002');
    lines.length = 0;
    const before = (await readHistory(home, project, 'prod' as EnvironmentName)).length;
    const r = await runPromoteCommand(cmd('prod', v2.dir, { dryRun: true }));
    expect(r.status).toBe('dry-run');
    expect(lines.filter((l) => l.includes('would copy'))).toEqual([
      expect.stringMatching(
        /\[eu-west-1\] dry run: would copy s3:\/\/regions-home\/team\/artifacts\/rust-scorer\/5002\/bootstrap\.zip to s3:\/\/regions-euw1\/team\/artifacts\/rust-scorer\/5002\/bootstrap\.zip \(eu-west-1, CopyObject, \d+ bytes\)/,
      ),
      expect.stringMatching(/would copy .*5002\/manifest\.json/),
    ]);
    expect(await euw1.head(artifactKey(project, '5002' as Version, 'bootstrap.zip'))).toBeUndefined();
    expect((await readHistory(home, project, 'prod' as EnvironmentName)).length).toBe(before);
  });

  it('one region failing its Lambda update restores the region already moved; the entry records both', async () => {
    const v2 = published['5002']!;
    const err = await promoteWithEuWest1Denied('prod', v2.dir);
    expect(err.message).toMatch(/^5002 failed in prod \(seq \d+\): eu-west-1: .*AccessDenied.*; restored us-east-1 to 5001$/);
    expect(await runningInBoth('prod')).toEqual(both(published['5001']!.sha));
    const history = await readHistory(home, project, 'prod' as EnvironmentName);
    const last = history[history.length - 1]!;
    expect(last).toMatchObject({ version: '5002', status: 'failed', deploy: null });
    expect(last.regions).toMatchObject({
      'us-east-1': { status: 'restored', deploy: { codeSha256: v2.sha }, restore: { method: 'alias', codeSha256: published['5001']!.sha } },
      'eu-west-1': { status: 'failed', deploy: null, error: expect.stringMatching(/AccessDenied/) },
    });
    expect((await readCurrent(home, project, 'prod' as EnvironmentName))!.entry.version).toBe('5001');
  });

  it('the next promotion deploys every region; rollback restores every region', async () => {
    const v2 = published['5002']!;
    expect((await runPromoteCommand(cmd('prod', v2.dir))).status).toBe('promoted');
    expect(await runningInBoth('prod')).toEqual(both(v2.sha));
    const r = await runRollbackCommand(commands.rollback('prod', { log: () => {} }));
    expect(r.status).toBe('promoted');
    expect(await runningInBoth('prod')).toEqual(both(published['5001']!.sha));
    const cur = (await readCurrent(home, project, 'prod' as EnvironmentName))!.entry;
    expect(cur).toMatchObject({ version: '5001', rollback: true, status: 'succeeded' });
    expect(cur.regions).toMatchObject({
      'us-east-1': { status: 'succeeded', deploy: { method: 'alias' } },
      'eu-west-1': { status: 'succeeded', copy: 'present', deploy: { method: 'alias' } },
    });
  });

  it('a tampered replica is refused with nothing deployed anywhere', async () => {
    const v3 = await version('5003');
    expect(v3.sha).toBeDefined();
    const other = await publishFake(euw1, { project, version: '5003' as Version, content: 'XXXX' });
    expect(sha256HexToBase64(other.manifest.files[0]!.sha256)).not.toBe(v3.sha);
    const before = (await readHistory(home, project, 'prod' as EnvironmentName)).length;
    const err = await oneLineRejection(runPromoteCommand(cmd('prod', v3.dir)), RegionReplicaMismatchError);
    expect(err.message).toMatch(
      /^s3:\/\/regions-euw1\/team\/artifacts\/rust-scorer\/5003\/bootstrap\.zip \(eu-west-1\) has (\d+ bytes|sha256 [0-9a-f]{64}), but rust-scorer@5003's manifest says/,
    );
    expect(await runningInBoth('prod')).toEqual(both(published['5001']!.sha));
    expect((await readHistory(home, project, 'prod' as EnvironmentName)).length).toBe(before);
  });

  it('regionFailure hold keeps the good region and records a partial release that downstream environments refuse', async () => {
    const v1 = published['5001']!;
    const err = await promoteWithEuWest1Denied('live', v1.dir);
    expect(err.message).toMatch(/regionFailure is hold: us-east-1 keep 5001 \(a partial release, which downstream environments refuse\)/);
    expect(await running('us-east-1', 'live')).toBe(v1.sha);
    expect(await running('eu-west-1', 'live')).toBeUndefined();
    const entry = (await readHistory(home, project, 'live' as EnvironmentName)).at(-1)!;
    expect(entry).toMatchObject({ status: 'failed', partial: true, regions: { 'us-east-1': { status: 'succeeded' }, 'eu-west-1': { status: 'failed' } } });
    await expect(runPromoteCommand(cmd('after', v1.dir))).rejects.toThrow(PolicyError);
    // the next promotion completes it
    expect((await runPromoteCommand(cmd('live', v1.dir))).status).toBe('promoted');
    expect(await running('eu-west-1', 'live')).toBe(v1.sha);
  });

  it('a region store whose bucket is in another region is refused before anything is copied or deployed', async () => {
    const v1 = published['5001']!;
    const err = await oneLineRejection(runPromoteCommand(cmd('wrong', v1.dir)), RegionStoreError);
    expect(err.message).toMatch(/^the store of region eu-central-1 \(s3:\/\/regions-euw1\) is a bucket in eu-west-1/);
    expect(await running('us-east-1', 'wrong')).toBeUndefined();
    const wrong = openStore(parseStoreUrl('s3://regions-euw1/wrong'), { env: moto.env });
    const written: string[] = [];
    for await (const o of wrong.list('')) written.push(o.key);
    expect(written).toEqual([]);
  });

  it('ecr-lifecycle writes the policy to the repository of every region through a client in that region', async () => {
    const ecr = (region: string) => awsClients({ env: { ...moto.env, AWS_REGION: region } }).ecr();
    for (const region of ['us-east-1', 'eu-west-1']) await ecr(region).send(new CreateRepositoryCommand({ repositoryName: 'scorer' }));
    const written = await runEcrLifecycleCommand({ workspaceRoot, keepLast: 20, untaggedDays: 1, processEnv });
    expect(written.map((w) => [w.repository, w.region])).toEqual([
      ['123456789012.dkr.ecr.us-east-1.amazonaws.com/scorer', 'us-east-1'],
      ['123456789012.dkr.ecr.eu-west-1.amazonaws.com/scorer', 'eu-west-1'],
    ]);
    for (const region of ['us-east-1', 'eu-west-1']) {
      const policy = JSON.parse((await ecr(region).send(new GetLifecyclePolicyCommand({ repositoryName: 'scorer' }))).lifecyclePolicyText!);
      expect(policy.rules[0].selection.tagPrefixList).toEqual(['keep-']);
      expect(policy.rules[2].selection.countNumber).toBe(20);
    }
  });
});
