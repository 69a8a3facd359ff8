/**
 * Test child (multipart.int.spec.ts): publishes one file as version <version> of project `big` to an S3
 * store and kills itself with SIGKILL once <killAtBytes> bytes of the upload have been sent (progress
 * callback: no finally blocks, no abort, like a lost CI runner). killAtBytes = -1: never.
 * Prints the publish status on success. [partsInFlight] sets the multipart concurrency.
 * Usage: publish-crash-child.ts <storeUrl> <file> <version> <killAtBytes> [partsInFlight]
 */
import { basename, dirname } from 'node:path';
import { parseManifest, sha256File } from '@buildonce/artifact';
import { openStore } from './open';
import { parseStoreUrl } from './url';
import { publishArtifact } from './artifacts';

const [storeUrl, file, version, killAt, inFlight] = process.argv.slice(2) as [string, string, string, string, string | undefined];
async function main(): Promise<void> {
  const d = await sha256File(file);
  const manifest = parseManifest({
    schemaVersion: 1,
    project: 'big',
    version,
    kind: 'lambda-zip',
    files: [{ name: basename(file), size: d.size, sha256: d.hex }],
    runtime: 'provided.al2023',
    architecture: 'x86_64',
    handler: 'bootstrap',
    toolchain: 'test',
  });
  const limit = Number(killAt);
  const r = await publishArtifact({
    store: openStore(parseStoreUrl(storeUrl), inFlight ? { multipart: { concurrency: Number(inFlight) } } : {}),
    manifest,
    dir: dirname(file),
    metadata: { publishedAt: new Date().toISOString(), builder: 'local:test', trusted: true },
    log: (l) => process.stderr.write(`${l}\n`),
    onProgress: (_f, loaded) => {
      if (limit >= 0 && loaded >= limit) process.kill(process.pid, 'SIGKILL');
    },
  });
  process.stdout.write(`${r.status}\n`);
}
main().catch((e: Error) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
