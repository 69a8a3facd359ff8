import { describe, expect, it } from 'vitest';
import { ConfigError } from '@buildonce/errors';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';
import type { VerifiedArtifact } from './artifact';
import type { PromoteRequest } from './promote';
import { regionImageRepository } from './regions';

const digest = `sha256:${'a'.repeat(64)}`;
const use1 = '123456789012.dkr.ecr.us-east-1.amazonaws.com/scorer';
const euw1 = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/scorer';
const r = { project: 'scorer' as ProjectName, version: '42' as Version, environment: { name: 'prod' as EnvironmentName } } as Pick<
  PromoteRequest,
  'project' | 'version' | 'environment'
>;
const image = (repository: string) =>
  ({
    stored: { manifest: { kind: 'oci-image', image: { digest } }, registry: { repository, uri: `${repository}@${digest}`, tags: [] } },
  }) as unknown as VerifiedArtifact;
const zip = { stored: { manifest: { kind: 'lambda-zip' } } } as unknown as VerifiedArtifact;

describe('regionImageRepository', () => {
  it("is the region's registry, the published repository for the home region without one, and nothing for zips", () => {
    expect(regionImageRepository(r, image(use1), { name: 'eu-west-1', home: false, registry: euw1 })).toBe(euw1);
    expect(regionImageRepository(r, image(use1), { name: 'us-east-1', home: true })).toBe(use1);
    expect(regionImageRepository(r, image('127.0.0.1:5000/scorer'), { name: 'us-east-1', home: true })).toBe('127.0.0.1:5000/scorer');
    expect(regionImageRepository(r, zip, { name: 'eu-west-1', home: false })).toBeUndefined();
  });

  it('refuses, in one line naming the buildonce.json field, a region without registry and an ECR registry of another region', () => {
    const cases: [Parameters<typeof regionImageRepository>[2], string, RegExp][] = [
      [{ name: 'eu-west-1', home: false }, use1, /environments\.prod\.regions\.eu-west-1\.registry to a repository in eu-west-1/],
      [{ name: 'eu-west-1', home: true }, use1, /environments\.prod\.regions\.eu-west-1\.registry/],
      [
        { name: 'eu-west-1', home: false, registry: use1 },
        use1,
        /environments\.prod\.regions\.eu-west-1\.registry: .* is an ECR repository in us-east-1, not in eu-west-1/,
      ],
    ];
    for (const [region, published, message] of cases) {
      let err: unknown;
      try {
        regionImageRepository(r, image(published), region);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('\n');
    }
  });
});
