import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseManifest, sha256File, writeDeterministicZip, type Manifest } from '@buildonce/artifact';
import { publishArtifact, publishMetadataFromEnv, type ArtifactNamespace, type BlobStore } from '@buildonce/store';
import type { DeployRequest, DeployResult, DeployTarget } from '@buildonce/deploy';

/**
 * Test helper (not exported from the package index): publishes a small fake artifact directly with
 * publishArtifact — a deterministic zip for `lambda-zip`, random bytes named like the tarball for
 * `node-tarball`. Returns the manifest and the directory holding the build output + artifact.json.
 */
export async function publishFake(
  store: BlobStore,
  o: { project: string; version: string; kind?: Manifest['kind']; namespace?: ArtifactNamespace; trusted?: boolean; content?: string },
): Promise<{ manifest: Manifest; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fake-artifact-'));
  const kind = o.kind ?? 'lambda-zip';
  const name = kind === 'lambda-zip' ? 'bootstrap.zip' : `${o.project}-deployment.tar.gz`;
  if (kind === 'lambda-zip') {
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
      throw new Error(m);
    }
    this.deployed.push(req.version);
    return { target: 'local', root: `/fake/${req.environment}/${req.project}`, path: `/fake/${req.environment}/${req.project}/releases/${req.version}`, status: 'deployed' };
  }
}
