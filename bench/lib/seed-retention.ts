/**
 * Seeds a file store for bench/retention.sh: <projects> projects x <per> versions, each a small
 * published artifact (bootstrap.zip + manifest.json) backdated over the last <days> days, plus a
 * ledger per project (prod current + 5 history entries) so retention has versions it must keep.
 * usage: node -r @swc-node/register bench/lib/seed-retention.ts <storeDir> <projects> <per> <days>
 */
import { mkdtempSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseManifest, sha256Bytes } from '@buildonce/artifact';
import { FsBlobStore, parseStoreUrl, publishArtifact, publishMetadataFromEnv } from '@buildonce/store';

async function main() {
  const [root, projectsArg, perArg, daysArg] = process.argv.slice(2);
  const projects = Number(projectsArg ?? 20);
  const per = Number(perArg ?? 250);
  const days = Number(daysArg ?? 120);
  const location = parseStoreUrl(`file://${root}`);
  if (location.kind !== 'file') throw new Error('file store only');
  const store = new FsBlobStore(location);
  const dir = mkdtempSync(join(tmpdir(), 'seed-'));
  const meta = publishMetadataFromEnv({});
  const now = Date.now();
  for (let p = 0; p < projects; p++) {
    const project = `svc-${String(p).padStart(2, '0')}`;
    const versions: string[] = [];
    for (let i = 0; i < per; i++) {
      const version = String(1_000_000 + p * 10_000 + i);
      const bytes = randomBytes(4096);
      writeFileSync(join(dir, 'bootstrap.zip'), bytes);
      const manifest = parseManifest({
        schemaVersion: 1,
        project,
        version,
        kind: 'lambda-zip',
        files: [{ name: 'bootstrap.zip', size: bytes.length, sha256: sha256Bytes(bytes).hex }],
        runtime: 'provided.al2023',
        architecture: 'x86_64',
        toolchain: 'bench',
      });
      await publishArtifact({ store, manifest, dir, metadata: meta });
      const when = new Date(now - ((per - i) / per) * days * 86_400_000 - 2 * 3_600_000);
      for (const f of ['bootstrap.zip', 'manifest.json']) utimesSync(join(root, 'artifacts', project, version, f), when, when);
      versions.push(version);
    }
    const ledger = versions.slice(per / 2, per / 2 + 6);
    for (const [i, v] of ledger.entries()) {
      await store.putBytesIfAbsent(
        `releases/${project}/prod/history/${String(i + 1).padStart(12, '0')}.json`,
        Buffer.from(JSON.stringify({ seq: i + 1, version: v })),
      );
    }
    await store.putBytesIfMatch(`releases/${project}/prod/current.json`, Buffer.from(JSON.stringify({ seq: ledger.length, version: ledger.at(-1) })), null);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
