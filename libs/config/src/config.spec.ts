import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRegionsTarget, loadConfig, parseConfig, resolveEnvironment, effectiveTargetKind } from './config';
import { isAwsRegion } from './regions';
import {
  InvalidEnvironmentNameError,
  isPreviewEnvironment as isPreviewEnvName,
  parseEnvironmentName as validateEnvName,
  type EnvironmentName,
} from '@buildonce/values';
import { ConfigError } from '@buildonce/errors';
import { UnknownEnvironmentError } from '@buildonce/errors';
import { removeTempDirs, tempDir } from '@buildonce/testing';

afterAll(removeTempDirs);

describe('environment names', () => {
  it('accepts lowercase names up to 63 chars', () => {
    for (const n of ['dev', 'prod', 'pr-12', 'eu-west-2', 'a', 'a'.repeat(63)]) expect(validateEnvName(n)).toBe(n);
  });
  it('refuses everything else with a one-line reason', () => {
    for (const n of ['../x', 'Prod', '', 'prod/', '1dev', '-x', 'dev_1', 'a'.repeat(64), ' dev', 'dev\n']) {
      expect(() => validateEnvName(n)).toThrow(InvalidEnvironmentNameError);
    }
    expect(() => validateEnvName('../x')).toThrow(/invalid environment name "\.\.\/x": names match/);
    expect(() => validateEnvName(undefined)).toThrow(/pass --env=<name>/);
  });
  it('recognises preview environments', () => {
    expect(isPreviewEnvName('pr-7')).toBe(true);
    expect(isPreviewEnvName('pr-07')).toBe(false);
    expect(isPreviewEnvName('pr-')).toBe(false);
    expect(isPreviewEnvName('prod')).toBe(false);
  });
});

describe('buildonce.json', () => {
  it('defaults to dev → staging → prod with each requiring the previous one', () => {
    const c = parseConfig({});
    expect(c.environments).toEqual([
      { name: 'dev', requires: [], soakMinutes: 0 },
      { name: 'staging', requires: ['dev'], soakMinutes: 0 },
      { name: 'prod', requires: ['staging'], soakMinutes: 0 },
    ]);
    expect(c.deploy).toBe('auto');
    expect(c.preview.enabled).toBe(true);
    expect(c.store).toBeUndefined();
  });

  it('takes explicit requirements and soak', () => {
    const c = parseConfig({ environments: [{ name: 'dev' }, { name: 'qa', requires: [] }, { name: 'prod', requires: ['dev', 'qa'], soakMinutes: 30 }] });
    expect(c.environments[1]!.requires).toEqual([]);
    expect(c.environments[2]).toEqual({ name: 'prod', requires: ['dev', 'qa'], soakMinutes: 30 });
  });

  it('names the bad field', () => {
    expect(() => parseConfig({ environments: [{ name: 'Prod' }] }, 'buildonce.json')).toThrow(/^buildonce\.json: environments\.0\.name: names match/);
    expect(() => parseConfig({ environments: [{ name: 'dev', soakMinutes: -1 }] })).toThrow(/environments\.0\.soakMinutes/);
    expect(() => parseConfig({ environments: [{ name: 'dev' }, { name: 'dev' }] })).toThrow(/environments\.1\.name: "dev" is defined twice/);
    expect(() => parseConfig({ environments: [{ name: 'prod', requires: ['staging'] }, { name: 'staging' }] })).toThrow(
      /environments\.0\.requires\.0: "staging" must be an environment defined earlier/,
    );
    expect(() => parseConfig({ environments: [{ name: 'pr-1' }] })).toThrow(/reserved for preview/);
    expect(() => parseConfig({ enviroments: [] })).toThrow(ConfigError);
    expect(() => parseConfig({ deploy: 'aws' })).toThrow(/deploy/);
    expect(() => parseConfig({ lock: { ttlSeconds: 1 } })).toThrow(/lock\.ttlSeconds/);
  });

  it('lets BUILDONCE_DEPLOY override the file; the store stays as written (resolveStoreLocation applies BUILDONCE_STORE)', () => {
    const c = parseConfig({ store: 's3://a-bucket/x', deploy: 'local' }, 'f', { BUILDONCE_STORE: 'file:///tmp/s', BUILDONCE_DEPLOY: 'cloud' });
    expect(c.store).toBe('s3://a-bucket/x');
    expect(c.deploy).toBe('cloud');
    expect(() => parseConfig({}, 'f', { BUILDONCE_DEPLOY: 'aws' })).toThrow(/BUILDONCE_DEPLOY: "aws" must be one of auto, local, cloud/);
  });

  it('loads the file, or defaults when absent, and reports bad JSON', async () => {
    const dir = tempDir('cfg-');
    expect((await loadConfig(dir, {})).source).toBe('defaults');
    writeFileSync(join(dir, 'buildonce.json'), '{ "environments": [ { "name": "dev" } ] }');
    expect((await loadConfig(dir, {})).environments.map((e) => e.name)).toEqual(['dev']);
    writeFileSync(join(dir, 'buildonce.json'), '{ nope');
    await expect(loadConfig(dir, {})).rejects.toThrow(/buildonce\.json: not JSON/);
  });

  it('resolves chain, preview and unknown environments', () => {
    const c = parseConfig({});
    expect(resolveEnvironment(c, 'prod' as EnvironmentName)).toMatchObject({ kind: 'chain', requires: ['staging'] });
    expect(resolveEnvironment(c, 'pr-42' as EnvironmentName)).toEqual({ kind: 'preview', name: 'pr-42', requires: [], soakMinutes: 0 });
    expect(() => resolveEnvironment(c, 'qa' as EnvironmentName)).toThrow(UnknownEnvironmentError);
    expect(() => resolveEnvironment(c, 'qa' as EnvironmentName)).toThrow(
      'unknown environment "qa": known environments are dev, staging, prod and previews pr-<n> (buildonce.json)',
    );
    expect(() => resolveEnvironment(parseConfig({ preview: { enabled: false } }), 'pr-1' as EnvironmentName)).toThrow(UnknownEnvironmentError);
  });

  it('chooses the deploy target kind from the mode and the store', () => {
    expect(effectiveTargetKind('auto', 'file', 'lambda')).toBe('local');
    expect(effectiveTargetKind('auto', 's3', 'lambda')).toBe('lambda');
    expect(effectiveTargetKind('local', 's3', 'ec2')).toBe('local');
    expect(effectiveTargetKind('cloud', 's3', 'ec2')).toBe('ec2');
    expect(() => effectiveTargetKind('cloud', 'file', 'ec2')).toThrow(/needs an S3 store/);
  });
});

describe('regions', () => {
  const prod = (regions: unknown, extra: object = {}) => ({ store: 's3://home-bucket/b', environments: [{ name: 'prod', regions, ...extra }] });

  it('keeps each region with its normalized store; a region without one uses the home store', () => {
    const c = parseConfig(
      prod(
        { 'us-east-1': {}, 'eu-west-1': { store: 's3://euw1-bucket/buildonce/', registry: 'x.dkr.ecr.eu-west-1.amazonaws.com/r' } },
        { regionFailure: 'hold' },
      ),
    );
    expect(c.environments[0]).toMatchObject({
      regions: [{ name: 'us-east-1' }, { name: 'eu-west-1', store: 's3://euw1-bucket/buildonce', registry: 'x.dkr.ecr.eu-west-1.amazonaws.com/r' }],
      regionFailure: 'hold',
    });
    expect(c.environments[0]!.regions![0]!.store).toBeUndefined();
    expect(parseConfig({ environments: [{ name: 'prod' }] }).environments[0]).toEqual({ name: 'prod', requires: [], soakMinutes: 0 });
  });

  it('refuses two regions sharing one store, in one line naming both', () => {
    expect(() => parseConfig(prod({ 'us-east-1': { store: 's3://same-bucket/p' }, 'eu-west-1': { store: 's3://same-bucket/p/' } }), 'b.json')).toThrow(
      /^b\.json: environments\.0\.regions\.eu-west-1\.store: eu-west-1 and us-east-1 share the store s3:\/\/same-bucket\/p: give each region its own bucket/,
    );
    expect(() => parseConfig(prod({ 'us-east-1': {}, 'eu-west-1': {} }))).toThrow(/eu-west-1 and us-east-1 share the store s3:\/\/home-bucket\/b/);
    expect(() => parseConfig(prod({ 'eu-west-1': { store: 's3://home-bucket/b' } }))).toThrow(/eu-west-1 and \(the home store\) share/);
  });

  it('refuses unknown region names, non-S3 region stores and empty region lists', () => {
    expect(() => parseConfig(prod({ 'eu-west1': {} }))).toThrow(/^buildonce\.json: environments\.0\.regions\.eu-west1: "eu-west1" is not an AWS Region name/);
    expect(() => parseConfig(prod({ 'mars-1': {} }))).toThrow(ConfigError);
    expect(() => parseConfig(prod({ 'eu-west-1': { store: 'file:///tmp/x' } }))).toThrow(
      /regions\.eu-west-1\.store: "file:\/\/\/tmp\/x" must be an s3:\/\/<bucket>\/<prefix> URL/,
    );
    expect(() => parseConfig(prod({}))).toThrow(/regions: list at least one region/);
    expect(() => parseConfig(prod({ 'eu-west-1': { bucket: 'x' } }))).toThrow(/regions/);
    expect(() => parseConfig({ environments: [{ name: 'prod', regionFailure: 'hold' }] })).toThrow(/regionFailure: only environments with "regions"/);
  });

  it('refuses a region list on the local target', () => {
    expect(() => parseConfig({ ...prod({ 'eu-west-1': {} }), deploy: 'local' })).toThrow(/regions: the local deploy target has no regions/);
    const env = resolveEnvironment(parseConfig(prod({ 'eu-west-1': {} })), 'prod' as EnvironmentName);
    expect(() => checkRegionsTarget(env, 'local')).toThrow(/environment prod lists regions \(eu-west-1\) but deploys to the local target/);
    expect(() => checkRegionsTarget(env, 'lambda')).not.toThrow();
    expect(isAwsRegion('ap-southeast-2')).toBe(true);
  });
});
