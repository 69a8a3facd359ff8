import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repo, walk } from './repo-files';

/**
 * A command builds one lazy set of AWS clients (`openWorkspaceStore` in libs/commands, or the executor / CLI
 * command that has no workspace store) and passes it down; libs below take it as a parameter. A lib that called
 * `awsClients(` itself would read its own environment (process.env, not the command's) and build a second set.
 * Allowed callers (production code):
 * - libs/aws: the factory itself;
 * - libs/commands, tools/executors: the command layer;
 * - libs/store/src/s3-blob.ts: the store's own S3 clients (path style, a single-attempt client for multipart
 *   parts), configured per store from the store's options; nothing else of AWS goes through it.
 * Specs and test helpers (libs/testing, tools/e2e-adoption, tools/ci-checks) build clients against moto as they need.
 */
const allowed = ['libs/aws/', 'libs/commands/', 'tools/executors/', 'libs/store/src/s3-blob.ts', 'libs/testing/', 'tools/e2e-adoption/', 'tools/ci-checks/'];

/** `file:line` of every `awsClients(` call in a production source file outside the allowed callers. */
function adHocAwsClients(files: { path: string; text: string }[]): string[] {
  const found: string[] = [];
  for (const f of files) {
    if (!/\.[cm]?[jt]s$/.test(f.path) || /\.spec\.[cm]?[jt]s$/.test(f.path) || allowed.some((a) => f.path.startsWith(a))) continue;
    f.text.split('\n').forEach((line, i) => {
      if (/\bawsClients\s*\(/.test(line)) found.push(`${f.path}:${i + 1}`);
    });
  }
  return found;
}

describe('AWS clients', () => {
  it('are built only at the command layer (and the store edge), never ad hoc below it', () => {
    const files: { path: string; text: string }[] = [];
    for (const top of ['apps', 'libs', 'tools']) walk(join(repo, top), (p) => files.push({ path: relative(repo, p), text: readFileSync(p, 'utf8') }));
    expect(files.length).toBeGreaterThan(100);
    const found = adHocAwsClients(files);
    expect(found, `awsClients( below the command layer (take the command's AwsClients as a parameter instead): ${found.join(', ')}`).toEqual([]);
  });

  it('the check can fail', () => {
    const text = "import { awsClients } from '@buildonce/aws';\nconst kms = awsClients().kms();\n";
    expect(adHocAwsClients([{ path: 'libs/promotion/src/provenance.ts', text }])).toEqual(['libs/promotion/src/provenance.ts:2']);
    expect(adHocAwsClients([{ path: 'libs/promotion/src/provenance.spec.ts', text }])).toEqual([]);
    expect(adHocAwsClients([{ path: 'libs/commands/src/commands.ts', text }])).toEqual([]);
  });
});
