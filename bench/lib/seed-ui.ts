/**
 * Seeds a file store for bench/ui.sh through the real ledger API (appendEntry): <projects> projects x
 * <envs> environments x <entries> history entries each (every 10th a failed verification followed by
 * an automatic rollback entry, every 25th a manual rollback with a reason), plus two real published
 * versions of svc-000 (the diff page's pair), which are also svc-000's last two prod entries.
 * usage: node -r @swc-node/register bench/lib/seed-ui.ts <storeDir> <projects> <envNames,comma,separated> <entries>
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import { parseManifest, sha256Bytes } from '@buildonce/artifact';
import { FsBlobStore, parseStoreUrl, publishArtifact, publishMetadataFromEnv } from '@buildonce/store';
import { appendEntry, type EntryDraft } from '@buildonce/ledger';

async function main() {
  const [root, projectsArg, envsArg, entriesArg] = process.argv.slice(2);
  const projects = Number(projectsArg ?? 100);
  const envs = (envsArg ?? 'dev,qa,staging,perf,prod').split(',');
  const entries = Number(entriesArg ?? 200);
  const location = parseStoreUrl(`file://${root}`);
  if (location.kind !== 'file') throw new Error('file store only');
  const store = new FsBlobStore(location);
  const dir = mkdtempSync(join(tmpdir(), 'seed-ui-'));
  const diffVersions = ['9000001', '9000002'];
  for (const [i, version] of diffVersions.entries()) {
    const files = [{ name: 'bootstrap.zip', bytes: randomBytes(4096 + i * 512) }, ...(i ? [{ name: 'weights.json', bytes: randomBytes(300) }] : [])];
    for (const f of files) writeFileSync(join(dir, f.name), f.bytes);
    const manifest = parseManifest({
      schemaVersion: 1,
      project: 'svc-000',
      version,
      kind: 'lambda-zip',
      files: files.map((f) => ({ name: f.name, size: f.bytes.length, sha256: sha256Bytes(f.bytes).hex })),
      runtime: 'provided.al2023',
      architecture: 'arm64',
      toolchain: `rust 1.9${4 + i}.0`,
    });
    await publishArtifact({ store, manifest, dir, metadata: { ...publishMetadataFromEnv({}), commit: `${i}`.repeat(40) } });
  }
  const t0 = Date.now();
  const start = new Date(t0 - entries * 3_600_000);
  const limit = pLimit(Number(process.env.SEED_CONCURRENCY ?? 64));
  let done = 0;
  const ledger = async (project: string, env: string) => {
    for (let i = 0; i < entries; i++) {
      let version = String(1_000_000 + i);
      if (project === 'svc-000' && env === 'prod' && i >= entries - 2) version = diffVersions[i - (entries - 2)]!;
      const at = new Date(start.getTime() + i * 3_600_000).toISOString();
      const d: EntryDraft = {
        project,
        environment: env,
        version,
        status: 'succeeded',
        rollback: false,
        artifact: {
          uri: `${location.url}/artifacts/${project}/${version}/`,
          namespace: 'trusted',
          kind: 'lambda-zip',
          file: 'bootstrap.zip',
          sha256: 'a'.repeat(64),
          files: [{ name: 'bootstrap.zip', size: 4096, sha256: 'a'.repeat(64) }],
          provenance: { signed: true, verified: true, rules: ['signature'] },
        },
        deploy: null,
        commit: sha(i),
        runId: String(5000 + i),
        actor: `dev-${i % 7}`,
        startedAt: at,
        finishedAt: at,
        verification: { kind: 'http', passed: true, attempts: 1, durationMs: 420, detail: 'GET /health 200' },
      };
      if (i % 10 === 9 && i < entries - 2) {
        await appendEntry(store, {
          ...d,
          status: 'failed',
          error: 'http check failed: GET /health 503',
          verification: { ...d.verification!, passed: false, attempts: 5 },
        });
        await appendEntry(store, {
          ...d,
          version: String(1_000_000 + i - 1),
          rollback: true,
          automatic: true,
          reason: 'verification failed: GET /health 503',
          verification: undefined,
        });
        i++; // the rollback took this slot
        continue;
      }
      if (i % 25 === 24 && i < entries - 2) {
        await appendEntry(store, { ...d, version: String(1_000_000 + i - 2), rollback: true, reason: 'p99 latency doubled' });
        continue;
      }
      await appendEntry(store, d);
    }
    done++;
  };
  const sha = (i: number) => (i.toString(16).padStart(8, '0') + 'c0ffee').repeat(3).slice(0, 40);
  await Promise.all(Array.from({ length: projects }, (_, p) => `svc-${String(p).padStart(3, '0')}`).flatMap((p) => envs.map((e) => limit(() => ledger(p, e)))));
  process.stderr.write(`seeded ${done} ledgers x ${entries} entries in ${Date.now() - t0} ms\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
