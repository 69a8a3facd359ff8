import { describe, expect, it } from 'vitest';
import { parseManifest } from '@buildonce/artifact';
import { openStore, parseStoreUrl } from '@buildonce/store';
import { ec2PointerFor, Ec2DeployTarget } from './ec2';
import { lambdaNames, withConflictRetry } from './lambda';
import { DeployPreflightError, expandTemplate, mainFile } from './targets';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

const manifest = parseManifest({
  schemaVersion: 1,
  project: 'express-api',
  version: '42',
  kind: 'node-tarball',
  files: [
    { name: 'README.txt', size: 1, sha256: 'a'.repeat(64) },
    { name: 'express-api-deployment.tar.gz', size: 10, sha256: 'b'.repeat(64) },
  ],
  runtime: 'nodejs20.x',
  architecture: 'x86_64',
  toolchain: 'node',
});

describe('deploy target helpers', () => {
  it('expands {project} and {env} only', () => {
    expect(expandTemplate('{project}-{env}', { project: 'rust-scorer' as ProjectName, env: 'prod' as EnvironmentName })).toBe('rust-scorer-prod');
    expect(() => expandTemplate('{region}-{env}', { project: 'p' as ProjectName, env: 'e' as EnvironmentName })).toThrow(DeployPreflightError);
    expect(lambdaNames({}, 'rust-scorer' as ProjectName, 'staging' as EnvironmentName)).toEqual({ functionName: 'rust-scorer-staging', alias: 'staging' });
    expect(lambdaNames({ functionName: 'scorer', alias: 'live-{env}' }, 'rust-scorer' as ProjectName, 'dev' as EnvironmentName)).toEqual({
      functionName: 'scorer',
      alias: 'live-dev',
    });
  });

  it('picks the shipped file', () => {
    expect(mainFile(manifest).name).toBe('express-api-deployment.tar.gz');
  });

  it('builds the EC2 pointer with the S3 key including the store prefix', () => {
    const store = openStore(parseStoreUrl('s3://my-bucket/team/a'));
    const stored = { manifest, publish: { publishedAt: 'x', builder: 'b', trusted: true } };
    expect(ec2PointerFor({ store, project: 'express-api' as ProjectName, version: '42' as Version, namespace: 'trusted', stored })).toEqual({
      bucket: 'my-bucket',
      key: 'team/a/artifacts/express-api/42/express-api-deployment.tar.gz',
      version: '42',
      sha256: 'b'.repeat(64),
    });
    expect(ec2PointerFor({ store, project: 'express-api' as ProjectName, version: '42' as Version, namespace: 'preview', stored }).key).toBe(
      'team/a/preview/artifacts/express-api/42/express-api-deployment.tar.gz',
    );
    const fileStore = openStore(parseStoreUrl('file:///tmp/s'));
    expect(() => ec2PointerFor({ store: fileStore, project: 'express-api' as ProjectName, version: '42' as Version, namespace: 'trusted', stored })).toThrow(
      /needs|S3 pointer/,
    );
    expect(new Ec2DeployTarget({ client: {} as never }).parameterName('express-api' as ProjectName, 'pr-7' as EnvironmentName)).toBe(
      '/buildonce/pr-7/express-api',
    );
  });

  it('retries ResourceConflictException with backoff and nothing else', async () => {
    let n = 0;
    const conflict = Object.assign(new Error('An update is in progress'), { name: 'ResourceConflictException' });
    await expect(
      withConflictRetry(async () => {
        if (++n < 3) throw conflict;
        return 'ok';
      }, 4),
    ).resolves.toBe('ok');
    expect(n).toBe(3);
    let m = 0;
    const other = Object.assign(new Error('nope'), { name: 'InvalidParameterValueException' });
    await expect(
      withConflictRetry(async () => {
        m++;
        throw other;
      }, 4),
    ).rejects.toBe(other);
    expect(m).toBe(1);
  });
});
