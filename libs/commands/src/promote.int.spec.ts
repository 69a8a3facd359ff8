import { writeFileSync } from 'node:fs';
import { unusedAwsClients } from '@buildonce/testing';
import { join } from 'node:path';
import { GetAliasCommand, GetFunctionConfigurationCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { awsClients } from '@buildonce/aws';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256HexToBase64 } from '@buildonce/artifact';
import { artifactKey, openStore, parseStoreUrl, S3BlobStore, type BlobStore } from '@buildonce/store';
import { createDeployTarget, Ec2DeployTarget, LambdaDeployTarget } from '@buildonce/deploy';
import { startMoto, type MotoServer, removeTempDirs, tempDir } from '@buildonce/testing';
import { runPromoteCommand, runReleasesCommand, runResolveCommand, runRollbackCommand, type PromoteCommand } from './commands';
import { parseConfig, resolveEnvironment } from '@buildonce/config';
import { appendEntry, listSeqs, readCurrent, readHistory } from '@buildonce/ledger';
import { promoteVersion } from '@buildonce/promotion';
import { createPlaceholderFunctions, draft, publishFake } from '@buildonce/testing';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

afterAll(removeTempDirs);

let moto: MotoServer;
let lambda: LambdaClient;
let ssm: SSMClient;
let s3: S3Client;
const bucket = 'promote-it';
const storeUrl = `s3://${bucket}/team`;
let store: S3BlobStore;
let workspaceRoot: string;
const meta = { commit: '1111111111111111111111111111111111111111', runId: '42', actor: 'ci-bot' };

beforeAll(async () => {
  moto = await startMoto();
  Object.assign(process.env, moto.env);
  const aws = awsClients();
  s3 = aws.s3();
  lambda = aws.lambda();
  ssm = aws.ssm();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  store = openStore(parseStoreUrl(storeUrl)) as S3BlobStore;
  workspaceRoot = tempDir('promote-ws-');
  writeFileSync(
    join(workspaceRoot, 'buildonce.json'),
    JSON.stringify({ store: storeUrl, environments: [{ name: 'dev' }, { name: 'staging' }, { name: 'prod' }] }),
  );
  // IaC: one function per environment, created with a placeholder zip
  await createPlaceholderFunctions(
    lambda,
    moto.endpoint,
    ['dev', 'staging', 'prod'].map((env) => `rust-scorer-${env}`),
  );
});
afterAll(async () => {
  await moto?.stop();
});

const lines: string[] = [];
function cmd(project: string, env: string, dir: string, extra: Partial<PromoteCommand> = {}): PromoteCommand {
  return {
    project: project as ProjectName,
    workspaceRoot,
    env: env as EnvironmentName,
    outputDir: dir,
    deploy: { target: project === 'rust-scorer' ? 'lambda' : 'ec2' },
    processEnv: { ...process.env, BUILDONCE_STORE: '' },
    clients: { lambda, ssm },
    meta,
    log: (l) => lines.push(l),
    ...extra,
  };
}

async function aliasState(env: string) {
  const alias = await lambda.send(new GetAliasCommand({ FunctionName: `rust-scorer-${env}`, Name: env }));
  const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: `rust-scorer-${env}`, Qualifier: alias.FunctionVersion }));
  return { version: alias.FunctionVersion, codeSha256: cfg.CodeSha256 };
}

async function ledgerSnapshot(project: string) {
  const keys: string[] = [];
  for await (const o of store.list(`releases/${project}/`)) if (!o.key.endsWith('lock.json')) keys.push(o.key);
  const currents: Record<string, string | undefined> = {};
  for (const env of ['dev', 'staging', 'prod']) currents[env] = (await readCurrent(store, project as ProjectName, env as EnvironmentName))?.entry.version;
  return { keys: keys.sort(), currents };
}

describe('promotion against moto_server (S3 + Lambda + SSM)', () => {
  let v1: { dir: string; sha256: string };
  let v2: { dir: string; sha256: string };

  it('dev → staging → prod of rust-scorer leaves alias prod on a version whose CodeSha256 is the artifact sha256', async () => {
    const a = await publishFake(store, { project: 'rust-scorer' as ProjectName, version: '1001' as Version });
    const b = await publishFake(store, { project: 'rust-scorer' as ProjectName, version: '1002' as Version });
    v1 = { dir: a.dir, sha256: a.manifest.files[0]!.sha256 };
    v2 = { dir: b.dir, sha256: b.manifest.files[0]!.sha256 };
    for (const env of ['dev', 'staging', 'prod']) {
      const r = await runPromoteCommand(cmd('rust-scorer', env, v1.dir));
      expect(r.status).toBe('promoted');
    }
    const prod = await aliasState('prod');
    expect(prod.codeSha256).toBe(sha256HexToBase64(v1.sha256));
    const cur = await readCurrent(store, 'rust-scorer' as ProjectName, 'prod' as EnvironmentName);
    expect(cur!.entry.deploy).toMatchObject({
      target: 'lambda',
      functionName: 'rust-scorer-prod',
      alias: 'prod',
      functionVersion: prod.version,
      codeSha256: prod.codeSha256,
      method: 'code',
    });
    expect(cur!.entry.deploy).toMatchObject({
      s3Bucket: bucket,
      s3Key: `team/${artifactKey('rust-scorer' as ProjectName, '1001' as Version, 'bootstrap.zip')}`,
    });
    expect(cur!.entry).toMatchObject({ seq: 1, commit: meta.commit, runId: '42', actor: 'ci-bot', previousVersion: null });
    // same version again: no-op success, nothing new in the ledger
    const before = await ledgerSnapshot('rust-scorer');
    expect((await runPromoteCommand(cmd('rust-scorer', 'prod', v1.dir))).status).toBe('already-current');
    expect(await ledgerSnapshot('rust-scorer')).toEqual(before);
  });

  it('the SSM pointer of express-api names the stored tarball', async () => {
    const { dir, manifest } = await publishFake(store, { project: 'express-api' as ProjectName, version: '2001' as Version, kind: 'node-tarball' });
    await runPromoteCommand(cmd('express-api', 'dev', dir));
    const p = await ssm.send(new GetParameterCommand({ Name: '/buildonce/dev/express-api' }));
    const pointer = JSON.parse(p.Parameter!.Value!);
    expect(Object.keys(pointer).sort()).toEqual(['bucket', 'key', 'sha256', 'version']);
    expect(pointer).toEqual({
      bucket,
      key: `team/artifacts/express-api/2001/express-api-deployment.tar.gz`,
      version: '2001',
      sha256: manifest.files[0]!.sha256,
    });
    const head = await s3.send(new HeadObjectCommand({ Bucket: pointer.bucket, Key: pointer.key }));
    expect(head.ContentLength).toBe(manifest.files[0]!.size);
  });

  it('refuses, with one line and no change: prod without staging, unknown env, bad env name, missing version, tampered file, missing function', async () => {
    await runPromoteCommand(cmd('rust-scorer', 'dev', v2.dir));
    const before = await ledgerSnapshot('rust-scorer');
    const prodAlias = await aliasState('prod');
    const oneLine = async (p: Promise<unknown>, re: RegExp) => {
      const e = (await p.then(
        () => undefined,
        (x) => x,
      )) as Error | undefined;
      expect(e, `expected a failure matching ${re}`).toBeInstanceOf(Error);
      expect(e!.message).toMatch(re);
      expect(e!.message).not.toContain('\n');
      return e!;
    };
    await oneLine(runPromoteCommand(cmd('rust-scorer', 'prod', v2.dir)), /^version 1002 has not succeeded in staging, which prod requires/);
    await oneLine(runPromoteCommand(cmd('rust-scorer', 'qa', v2.dir)), /^unknown environment "qa": known environments are dev, staging, prod/);
    for (const bad of ['../x', 'Prod', '']) await oneLine(runPromoteCommand(cmd('rust-scorer', bad, v2.dir)), /environment/);

    const missingDir = tempDir('missing-');
    writeFileSync(
      join(missingDir, 'artifact.json'),
      JSON.stringify({ ...JSON.parse((await import('node:fs')).readFileSync(join(v2.dir, 'artifact.json'), 'utf8')), version: '9999' }),
    );
    await oneLine(
      runPromoteCommand(cmd('rust-scorer', 'dev', missingDir)),
      /^version 9999 of rust-scorer is not in s3:\/\/promote-it\/team\/artifacts\/rust-scorer\/9999\/: publish it first/,
    );

    // tampered: the stored zip's bytes replaced under the manifest (same size, different content)
    const t = await publishFake(store, { project: 'rust-scorer' as ProjectName, version: '1003' as Version });
    const key = store.s3Object(artifactKey('rust-scorer' as ProjectName, '1003' as Version, 'bootstrap.zip'))!.key;
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(join(t.dir, 'bootstrap.zip'));
    bytes[bytes.length - 1] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    await oneLine(
      runPromoteCommand(cmd('rust-scorer', 'dev', t.dir)),
      /^artifact rust-scorer@1003 failed verification: s3:\/\/promote-it\/team\/artifacts\/rust-scorer\/1003\/bootstrap.zip has sha256 [0-9a-f]{64}, manifest says/,
    );

    // a project whose function IaC never created
    const o = await publishFake(store, { project: 'orphan' as ProjectName, version: '3001' as Version });
    await oneLine(
      runPromoteCommand({ ...cmd('orphan', 'dev', o.dir), deploy: { target: 'lambda' } }),
      /^Lambda function orphan-dev does not exist: create it with your IaC/,
    );
    expect(await listSeqs(store, 'orphan' as ProjectName, 'dev' as EnvironmentName)).toEqual([]);

    expect(await ledgerSnapshot('rust-scorer')).toEqual(before);
    expect(await aliasState('prod')).toEqual(prodAlias);
    expect(lines.some((l) => l.startsWith('[rust-scorer] '))).toBe(true);
  });

  it('10 concurrent promotions of different versions: contiguous history, nothing lost, pointer = last entry = what runs', async () => {
    const versions = Array.from({ length: 10 }, (_, i) => String(5000 + i));
    for (const v of versions) await publishFake(store, { project: 'express-api' as ProjectName, version: v as Version, kind: 'node-tarball' });
    const env = resolveEnvironment(parseConfig({}), 'dev' as EnvironmentName);
    const results = await Promise.all(
      versions.map((version) =>
        promoteVersion({
          store: openStore(parseStoreUrl(storeUrl)),
          aws: unusedAwsClients(),
          project: 'express-api' as ProjectName,
          version: version as Version,
          environment: env,
          target: new Ec2DeployTarget({ client: awsClients().ssm() }),
          meta: { ...meta, runId: `run-${version}` },
          log: () => undefined,
        }),
      ),
    );
    expect(results.every((r) => r.status === 'promoted')).toBe(true);
    const h = await readHistory(store, 'express-api' as ProjectName, 'dev' as EnvironmentName);
    expect(h.map((e) => e.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(
      h
        .slice(1)
        .map((e) => e.version)
        .sort(),
    ).toEqual(versions);
    for (let i = 1; i < h.length; i++) expect(h[i]!.previousVersion).toBe(h[i - 1]!.version);
    const cur = await readCurrent(store, 'express-api' as ProjectName, 'dev' as EnvironmentName);
    expect(cur!.entry).toEqual(h[h.length - 1]);
    // the lock serialises deploy + record, so the pointer EC2 reads is the ledger's last entry
    const p = JSON.parse((await ssm.send(new GetParameterCommand({ Name: '/buildonce/dev/express-api' }))).Parameter!.Value!);
    expect(p.version).toBe(cur!.entry.version);
  });

  it('the ledger alone (no lock) survives 10 concurrent appends on S3', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        appendEntry(openStore(parseStoreUrl(storeUrl)), {
          ...draft(String(700 + i) as Version),
          project: 'raw' as ProjectName,
          environment: 'dev' as EnvironmentName,
        }),
      ),
    );
    expect(results.map((r) => r.entry.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    const h = await readHistory(store, 'raw' as ProjectName, 'dev' as EnvironmentName);
    expect(h).toHaveLength(10);
    expect((await readCurrent(store, 'raw' as ProjectName, 'dev' as EnvironmentName))!.entry).toEqual(h[9]);
  });

  it('rollback restores the previous alias and pointer in one command and shows in releases', async () => {
    // rust-scorer prod: 1001 → 1002
    await runPromoteCommand(cmd('rust-scorer', 'staging', v2.dir));
    await runPromoteCommand(cmd('rust-scorer', 'prod', v2.dir));
    const atV1 = (await readHistory(store, 'rust-scorer' as ProjectName, 'prod' as EnvironmentName))[0]!;
    expect((await aliasState('prod')).codeSha256).toBe(sha256HexToBase64(v2.sha256));
    const r = await runRollbackCommand({ ...cmd('rust-scorer', 'prod', v2.dir), meta: { ...meta, actor: 'oncall' } });
    expect(r.status).toBe('promoted');
    const prod = await aliasState('prod');
    expect(prod.codeSha256).toBe(sha256HexToBase64(v1.sha256));
    expect(atV1.deploy?.target === 'lambda' && prod.version).toBe(atV1.deploy?.target === 'lambda' ? atV1.deploy.functionVersion : '');
    const cur = (await readCurrent(store, 'rust-scorer' as ProjectName, 'prod' as EnvironmentName))!.entry;
    expect(cur).toMatchObject({ version: '1001', previousVersion: '1002', rollback: true, actor: 'oncall', commit: atV1.commit });
    expect(cur.deploy).toMatchObject({ method: 'alias' });

    // express-api dev: pointer back to the previous version
    const before = (await readCurrent(store, 'express-api' as ProjectName, 'dev' as EnvironmentName))!.entry;
    await runRollbackCommand({ ...cmd('express-api', 'dev', '') });
    const after = (await readCurrent(store, 'express-api' as ProjectName, 'dev' as EnvironmentName))!.entry;
    expect(after.version).toBe(before.previousVersion);
    const p = JSON.parse((await ssm.send(new GetParameterCommand({ Name: '/buildonce/dev/express-api' }))).Parameter!.Value!);
    expect(p.version).toBe(after.version);

    const printed: string[] = [];
    const rows = await runReleasesCommand({
      project: 'rust-scorer' as ProjectName,
      workspaceRoot,
      env: 'prod' as EnvironmentName,
      format: 'table',
      processEnv: { ...process.env, BUILDONCE_STORE: '' },
      log: () => undefined,
      print: (t) => printed.push(t),
    });
    expect(rows[0]).toMatchObject({ version: '1001', rollback: true, who: 'oncall', previous: '1002' });
    expect(printed[0]).toMatch(/environment.*version.*commit.*when.*who.*previous/s);
    expect(printed[0]).toContain('rollback');
    const json: string[] = [];
    await runReleasesCommand({
      project: 'rust-scorer' as ProjectName,
      workspaceRoot,
      format: 'json',
      processEnv: { ...process.env, BUILDONCE_STORE: '' },
      log: () => undefined,
      print: (t) => json.push(t),
    });
    expect(JSON.parse(json[0]!).map((r: { environment: string }) => r.environment)).toEqual(['dev', 'staging', 'prod']);
    const commit: string[] = [];
    const out = join(workspaceRoot, 'gh-output');
    await runReleasesCommand({
      project: 'rust-scorer' as ProjectName,
      workspaceRoot,
      env: 'prod' as EnvironmentName,
      field: 'commit',
      format: 'table',
      processEnv: { ...process.env, BUILDONCE_STORE: '', GITHUB_OUTPUT: out },
      log: () => undefined,
      print: (t) => commit.push(t),
    });
    expect(commit).toEqual([atV1.commit]);
    expect((await import('node:fs')).readFileSync(out, 'utf8')).toBe(`commit=${atV1.commit}\n`);

    const uri: string[] = [];
    await runResolveCommand({
      project: 'rust-scorer' as ProjectName,
      workspaceRoot,
      env: 'prod' as EnvironmentName,
      processEnv: { ...process.env, BUILDONCE_STORE: '', GITHUB_OUTPUT: out },
      log: () => undefined,
      print: (t) => uri.push(t),
    });
    expect(uri).toEqual([`s3://${bucket}/team/artifacts/rust-scorer/1001/bootstrap.zip`]);
  });

  it('a failed Lambda deploy is recorded and leaves alias and pointer alone', async () => {
    const { dir } = await publishFake(store, { project: 'rust-scorer' as ProjectName, version: '1004' as Version });
    const target = createDeployTarget({ kind: 'lambda', options: { target: 'lambda' }, workspaceRoot, lambda, aws: awsClients() }) as LambdaDeployTarget;
    // break the stored object after verification would pass: point the target at a key that does not exist
    const broken = Object.create(target) as LambdaDeployTarget;
    (broken as unknown as { s3Location: () => unknown }).s3Location = () => ({ bucket, key: 'team/does-not-exist.zip', sha256Base64: 'x' });
    const devBefore = await aliasState('dev');
    const env = resolveEnvironment(parseConfig({}), 'dev' as EnvironmentName);
    const err = await promoteVersion({
      store,
      aws: unusedAwsClients(),
      project: 'rust-scorer' as ProjectName,
      version: '1004' as Version,
      environment: env,
      target: broken,
      meta,
      log: () => undefined,
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/^deploy of 1004 to dev failed \(recorded as seq \d+\): /);
    const h = await readHistory(store, 'rust-scorer' as ProjectName, 'dev' as EnvironmentName);
    expect(h[h.length - 1]).toMatchObject({ version: '1004', status: 'failed' });
    expect((await readCurrent(store, 'rust-scorer' as ProjectName, 'dev' as EnvironmentName))!.entry.version).toBe('1002');
    expect(await aliasState('dev')).toEqual(devBefore);
    void dir;
  });
});
