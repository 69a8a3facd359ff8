import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { artifactKey, currentKey, projectArtifactsPrefix, projectKey } from '@buildonce/store';
import { isProjectName } from '@buildonce/values';
import type { ProjectName, EnvironmentName, Version } from '@buildonce/values';

/**
 * deploy/user-data.sh cannot import libs/store keys.ts: it mirrors the project-key encoding and the keys it
 * reads (pointer, artifact, versions listing). This asserts the mirror builds exactly the module's keys.
 */
const script = resolve(__dirname, '../../deploy/user-data.sh');

function sh(fn: string, ...args: string[]): string {
  return execFileSync('bash', ['-c', `BUILDONCE_USER_DATA_KEYS_ONLY=1 source "$0"; ${fn} "$@"`, script, ...args], { encoding: 'utf8' });
}

const names = [
  'express-api',
  '@acme/api',
  '@a.b/c_d-e',
  'A1.x',
  'a--b',
  '@acme/a--b',
  '-x',
  'x-',
  '@acme',
  '@/x',
  'a/b',
  '../x',
  'x y',
  'a'.repeat(128),
  'a'.repeat(129),
  `@${'a'.repeat(60)}/${'b'.repeat(66)}`,
  `@${'a'.repeat(60)}/${'b'.repeat(67)}`,
];

describe('user-data.sh key mirror', () => {
  it('encodes project names like projectKey and refuses the same names', () => {
    for (const n of names) expect(sh('project_key_of', n), n).toBe(isProjectName(n) ? projectKey(n as ProjectName) : '');
  });

  it('builds the pointer, artifact and versions-listing keys the module builds', () => {
    for (const project of ['express-api', '@acme/api']) {
      const k = projectKey(project as ProjectName);
      for (const prefix of ['', 'team/x/']) {
        expect(sh('current_key_of', prefix, k, 'prod')).toBe(prefix + currentKey(project as ProjectName, 'prod' as EnvironmentName));
        for (const ns of ['trusted', 'preview'] as const) {
          expect(sh('artifact_key_of', prefix, ns, k, '123', 'api-deployment.tar.gz')).toBe(
            prefix + artifactKey(project as ProjectName, '123' as Version, 'api-deployment.tar.gz', ns),
          );
          const nsPrefix = ns === 'preview' ? 'preview/' : '';
          expect(sh('versions_prefix_of', prefix + nsPrefix, k)).toBe(prefix + projectArtifactsPrefix(project as ProjectName, ns));
        }
      }
    }
  });
});
