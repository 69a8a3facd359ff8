import { readFileSync, writeFileSync } from 'node:fs';
import { CreateFunctionCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseManifest, sha256File, writeDeterministicZip, type Manifest } from '@buildonce/artifact';
import { publishArtifact, publishMetadataFromEnv, type ArtifactNamespace, type BlobStore } from '@buildonce/store';
import { DeployError, type DeployRequest, type DeployResult, type DeployTarget } from '@buildonce/deploy';
import type { EntryDraft, HistoryEntry } from '@buildonce/ledger';
import { tempDir } from '@buildonce/testing';
import type { ProjectName, Version, EnvironmentName } from '@buildonce/values';

/**
 * Test helper (not exported from the package index): publishes a small fake artifact directly with
 * publishArtifact — a deterministic zip for `lambda-zip`, random bytes named like the tarball for
 * `node-tarball`. Returns the manifest and the directory holding the build output + artifact.json.
 */
export async function publishFake(
  store: BlobStore,
  o: {
    project: ProjectName;
    version: Version;
    kind?: Manifest['kind'];
    namespace?: ArtifactNamespace;
    trusted?: boolean;
    content?: string;
    /** lambda-zip: ship this real binary as `bootstrap` (plus a `version.txt`, so every version's zip differs) */
    bootstrap?: string;
  },
): Promise<{ manifest: Manifest; dir: string }> {
  const dir = tempDir('fake-artifact-');
  const kind = o.kind ?? 'lambda-zip';
  const name = kind === 'lambda-zip' ? 'bootstrap.zip' : `${o.project}-deployment.tar.gz`;
  if (kind === 'lambda-zip' && o.bootstrap) {
    await writeDeterministicZip(
      [
        { name: 'bootstrap', path: o.bootstrap },
        { name: 'version.txt', bytes: Buffer.from(`${o.project}@${o.version}\n`), mode: 0o644 },
      ],
      join(dir, name),
    );
  } else if (kind === 'lambda-zip') {
    await writeDeterministicZip([{ name: 'bootstrap', bytes: Buffer.from(`#!/bin/sh\n# ${o.project} ${o.version} ${o.content ?? ''}\n`) }], join(dir, name));
  } else {
    writeFileSync(join(dir, name), Buffer.concat([Buffer.from(`${o.project}@${o.version}`), randomBytes(64)]));
  }
  const d = await sha256File(join(dir, name));
  const manifest = parseManifest({
    schemaVersion: 1,
    project: o.project,
    version: o.version,
    kind,
    files: [{ name, size: d.size, sha256: d.hex }],
    runtime: kind === 'lambda-zip' ? 'provided.al2023' : 'nodejs20.x',
    architecture: 'x86_64',
    ...(kind === 'lambda-zip' ? { handler: 'bootstrap' } : { entry: 'main.js' }),
    toolchain: 'test',
  });
  writeFileSync(join(dir, 'artifact.json'), JSON.stringify(manifest, null, 2));
  const metadata = { ...publishMetadataFromEnv({ GITHUB_SHA: `sha-${o.version}` }), ...(o.trusted === false ? { trusted: false } : {}) };
  await publishArtifact({ store, manifest, dir, metadata, namespace: o.namespace ?? 'trusted' });
  return { manifest, dir };
}

/** A deploy target that records calls and can be told to fail (no AWS). */
export class FakeTarget implements DeployTarget {
  readonly kind = 'local' as const;
  deployed: string[] = [];
  failNext?: string;
  preflightError?: Error;
  describe(req: Pick<DeployRequest, 'project' | 'environment'>): string {
    return `fake ${req.project}/${req.environment}`;
  }
  async preflight(): Promise<void> {
    if (this.preflightError) throw this.preflightError;
  }
  async deploy(req: DeployRequest): Promise<DeployResult> {
    if (this.failNext) {
      const m = this.failNext;
      this.failNext = undefined;
      throw new DeployError(m);
    }
    this.deployed.push(req.version);
    return {
      target: 'local',
      root: `/fake/${req.environment}/${req.project}`,
      path: `/fake/${req.environment}/${req.project}/releases/${req.version}`,
      status: 'deployed',
    };
  }
}

/**
 * Creates an IAM role the way IaC would, with a raw IAM Query API call (`CreateRole`, API version
 * 2010-05-08) — moto's Lambda only accepts roles that exist, and no IAM SDK client is installed.
 * @returns the role ARN
 */
export async function createLambdaRole(endpoint: string, roleName = 'buildonce-test-lambda'): Promise<string> {
  const body = new URLSearchParams({
    Action: 'CreateRole',
    Version: '2010-05-08',
    RoleName: roleName,
    AssumeRolePolicyDocument: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    }),
  });
  const res = await fetch(`${endpoint}/`, {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
    },
  });
  const text = await res.text();
  const arn = /<Arn>([^<]+)<\/Arn>/.exec(text)?.[1];
  if (!res.ok || !arn) throw new Error(`CreateRole failed: ${res.status} ${text.slice(0, 200)}`);
  return arn;
}

/** A history entry draft for ledger tests (project `svc`, env `prod` unless overridden). */
export function draft(version: Version, o: Partial<EntryDraft> = {}): EntryDraft {
  return {
    project: 'svc' as ProjectName,
    environment: 'prod' as EnvironmentName,
    version,
    status: 'succeeded',
    rollback: false,
    artifact: { uri: `file:///s/artifacts/svc/${version}/`, namespace: 'trusted', kind: 'node-tarball', file: 'a.tar.gz', sha256: 'b'.repeat(64), files: [] },
    deploy: null,
    commit: 'c0ffee',
    runId: null,
    actor: 'tester',
    startedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    ...o,
  };
}

/**
 * Creates the Lambda functions a promotion updates, the way IaC would: one per name, provided.al2023,
 * x86_64, handler `bootstrap`, a placeholder zip as code, with `role` or else a role from
 * {@link createLambdaRole} (Lambda CreateFunction through `lambda`, IAM on moto at `endpoint`). Functions
 * of several regions share one role (IAM is global): create it once and pass it.
 */
export async function createPlaceholderFunctions(lambda: LambdaClient, endpoint: string, names: readonly string[], role?: string): Promise<void> {
  role ??= await createLambdaRole(endpoint);
  const placeholder = join(tempDir('placeholder-'), 'placeholder.zip');
  await writeDeterministicZip([{ name: 'bootstrap', bytes: Buffer.from('placeholder') }], placeholder);
  for (const FunctionName of names) {
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName,
        Runtime: 'provided.al2023',
        Role: role,
        Handler: 'bootstrap',
        Architectures: ['x86_64'],
        Code: { ZipFile: readFileSync(placeholder) },
      }),
    );
  }
}

/**
 * A succeeded history entry of project `p` in `staging` at `version` (seq 1, a trusted lambda-zip of
 * bootstrap.zip, no commit or run, actor `t`, 2026-01-01), for pure gate and policy specs; `o` overrides.
 */
export function historyEntryOf(version: string, o: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    schemaVersion: 1,
    seq: 1,
    project: 'p' as ProjectName,
    environment: 'staging' as EnvironmentName,
    version: version as Version,
    status: 'succeeded',
    rollback: false,
    previousVersion: null,
    artifact: { uri: 'file:///s/artifacts/p/1/', namespace: 'trusted', kind: 'lambda-zip', file: 'bootstrap.zip', sha256: 'a'.repeat(64), files: [] },
    deploy: null,
    commit: null,
    runId: null,
    actor: 't',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:00.000Z',
    ...o,
  };
}
