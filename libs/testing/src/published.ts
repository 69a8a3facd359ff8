import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest, serializeManifest, sha256Bytes, sha256File, type Manifest, type PublishMetadata } from '@buildonce/artifact';
import { publishArtifact, publishMetadataFromEnv, type BlobStore } from '@buildonce/store';
import { tempDir } from './temp';

/** A test artifact file to publish: `dir/file`, already written. */
export interface TestArtifactFile {
  store: BlobStore;
  project: string;
  version: string;
  dir: string;
  file: string;
  /** `lambda-zip` (provided.al2023) or `node-tarball` (node>=20, entry main.js); always x86_64, toolchain `test` */
  kind: 'lambda-zip' | 'node-tarball';
  /** a lambda-zip's handler */
  handler?: string;
  /** publish metadata (default: from an empty CI environment: a trusted local build) */
  metadata?: PublishMetadata;
  namespace?: 'trusted' | 'preview';
  /** signed provenance stored with the version */
  provenance?: () => Promise<Buffer | undefined>;
}

/**
 * Publishes one already written file as a version (its manifest from the file's size and sha256), the way
 * the publish command would.
 * @returns the build manifest
 */
export async function publishTestFile(o: TestArtifactFile): Promise<Manifest> {
  const d = await sha256File(join(o.dir, o.file));
  const manifest = parseManifest({
    schemaVersion: 1,
    project: o.project,
    version: o.version,
    kind: o.kind,
    files: [{ name: o.file, size: d.size, sha256: d.hex }],
    ...(o.kind === 'lambda-zip' ? { runtime: 'provided.al2023', ...(o.handler ? { handler: o.handler } : {}) } : { runtime: 'node>=20', entry: 'main.js' }),
    architecture: 'x86_64',
    toolchain: 'test',
  });
  const metadata = o.metadata ?? publishMetadataFromEnv({});
  await publishArtifact({ store: o.store, manifest, dir: o.dir, metadata, namespace: o.namespace ?? 'trusted', provenance: o.provenance });
  return manifest;
}

/**
 * Publishes a lambda-zip version whose one file, `bootstrap.zip`, is `size` random bytes (see {@link publishTestFile}).
 * @returns the build manifest
 */
export async function publishTestZip(
  o: { store: BlobStore; project: string; version: string; size?: number; provenance?: Buffer } & Pick<TestArtifactFile, 'metadata' | 'namespace'>,
): Promise<Manifest> {
  const dir = tempDir('published-');
  writeFileSync(join(dir, 'bootstrap.zip'), randomBytes(o.size ?? 1000));
  const provenance = o.provenance ? async () => o.provenance : undefined;
  return publishTestFile({ ...o, dir, file: 'bootstrap.zip', kind: 'lambda-zip', provenance });
}

/**
 * Writes what a lambda-zip build of `svc` leaves in its output directory: `bootstrap.zip` holding `bytes`
 * and the build manifest `artifact.json` (provided.al2023, x86_64).
 * @returns `dir`
 */
export function writeTestBuildOutput(dir: string, o: { version: string; bytes: Buffer; toolchain: string }): string {
  writeFileSync(join(dir, 'bootstrap.zip'), o.bytes);
  const manifest = parseManifest({
    schemaVersion: 1,
    project: 'svc',
    version: o.version,
    kind: 'lambda-zip',
    files: [{ name: 'bootstrap.zip', size: o.bytes.length, sha256: sha256Bytes(o.bytes).hex }],
    runtime: 'provided.al2023',
    architecture: 'x86_64',
    toolchain: o.toolchain,
  });
  writeFileSync(join(dir, 'artifact.json'), serializeManifest(manifest));
  return dir;
}

/**
 * Writes `files` (name → bytes) into a fresh directory and returns it with their lambda-zip build manifest
 * (provided.al2023, x86_64, handler `bootstrap`, toolchain `test`).
 */
export function writeTestArtifactDir(project: string, version: string, files: Record<string, Buffer>): { dir: string; manifest: Manifest } {
  const dir = tempDir('art-');
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  const manifest = parseManifest({
    schemaVersion: 1,
    project,
    version,
    kind: 'lambda-zip',
    files: Object.entries(files).map(([name, bytes]) => ({ name, size: bytes.length, sha256: sha256Bytes(bytes).hex })),
    runtime: 'provided.al2023',
    architecture: 'x86_64',
    handler: 'bootstrap',
    toolchain: 'test',
  });
  return { dir, manifest };
}
