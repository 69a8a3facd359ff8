/**
 * Helper of bench/publish-large.sh.
 *   publish <file> <storeUrl> <version>   publishes <file> as the only file of a version (publishArtifact,
 *                                        multipart above 8 MiB) and prints one JSON line:
 *                                        { ms, bytes, maxRssMiB, attempts, status }; retries the whole
 *                                        publish up to 3 times (it is idempotent) and counts attempts
 *   verify <storeUrl> <version>           verifyArtifact (sizes + sha256 of every file); prints "ok"
 *   proxy <targetUrl> <rate>             runs the fault proxy of libs/testing, prints its endpoint, and on
 *                                        SIGTERM prints one JSON line of its stats
 */
import { basename, dirname } from 'node:path';
import { parseManifest, sha256File } from '@buildonce/artifact';
import { openStore, parseStoreUrl, publishArtifact, verifyArtifact } from '@buildonce/store';
import { startFaultProxy } from '@buildonce/testing';

async function main(): Promise<void> {
  const [cmd, a, b, c] = process.argv.slice(2);
  if (cmd === 'publish') {
    const file = a!;
    // BENCH_PART_MIB / BENCH_PARTS_IN_FLIGHT override the multipart settings (for measuring them)
    const partMib = Number(process.env.BENCH_PART_MIB) || undefined;
    const inFlight = Number(process.env.BENCH_PARTS_IN_FLIGHT) || undefined;
    const store = openStore(parseStoreUrl(b!), { multipart: { partSize: partMib && partMib * 1024 * 1024, concurrency: inFlight } });
    const t0 = Date.now();
    const d = await sha256File(file);
    const manifest = parseManifest({
      schemaVersion: 1, project: 'big', version: c!, kind: 'lambda-zip',
      files: [{ name: basename(file), size: d.size, sha256: d.hex }],
      runtime: 'provided.al2023', architecture: 'x86_64', handler: 'bootstrap', toolchain: 'bench',
    });
    let attempts = 0;
    let status = 'failed';
    let lastError = '';
    const errors: string[] = [];
    while (attempts < 3 && status === 'failed') {
      attempts++;
      try {
        status = (await publishArtifact({ store, manifest, dir: dirname(file), metadata: { publishedAt: new Date().toISOString(), builder: 'local:bench', trusted: true } })).status;
      } catch (e) {
        lastError = (e as Error).message.split('\n')[0]!;
        errors.push(`${(e as Error).name}: ${lastError.slice(0, 200)}`);
      }
    }
    const ms = Date.now() - t0;
    const maxRssMiB = process.resourceUsage().maxRSS / 1024;
    process.stdout.write(JSON.stringify({ ms, bytes: d.size, maxRssMiB: Math.round(maxRssMiB), attempts, status, errors }) + '\n');
    if (status === 'failed') process.exitCode = 1;
  } else if (cmd === 'verify') {
    await verifyArtifact(openStore(parseStoreUrl(a!)), 'big', b!);
    process.stdout.write('ok\n');
  } else if (cmd === 'proxy') {
    const proxy = await startFaultProxy({ target: a!, rate: Number(b), seed: 7 });
    process.stdout.write(`${proxy.endpoint}\n`);
    process.on('SIGTERM', () => {
      process.stderr.write(JSON.stringify(proxy.stats) + '\n');
      void proxy.stop().then(() => process.exit(0));
    });
  } else {
    throw new Error('usage: publish-large.ts publish <file> <storeUrl> <version> | verify <storeUrl> <version> | proxy <targetUrl> <rate>');
  }
}
void main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
