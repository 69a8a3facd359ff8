/**
 * Helper of bench/publish-large.sh.
 *   publish <file> <storeUrl> <version>   publishes <file> as the only file of a version (publishArtifact,
 *                                        multipart above 8 MiB) and prints one JSON line:
 *                                        { ms, bytes, maxRssMiB, attempts, status }; retries the whole
 *                                        publish up to 3 times (it is idempotent) and counts attempts
 *   verify <storeUrl> <version>           verifyArtifact (sizes + sha256 of every file); prints "ok"
 *   fetch <storeUrl> <version> <root> [--verify]
 *                                        the local target's fetch of a published node-tarball version:
 *                                        deployLocal (download + sha256 while writing + unpack + flip) with the
 *                                        manifest handed over as promotion does; --verify first runs
 *                                        verifyArtifact as promotion does. Prints { ms, maxRssMiB, status }
 *   proxy <targetUrl> <rate>             runs the fault proxy of libs/testing, prints its endpoint, and on
 *                                        SIGTERM prints one JSON line of its stats
 */
import { basename, dirname } from 'node:path';
import { parseManifest, sha256File } from '@buildonce/artifact';
import { openStore, parseStoreUrl, publishArtifact, readStoredManifest, verifyArtifact } from '@buildonce/store';
import { deployLocal } from '@buildonce/deploy';
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
    const tarball = /\.tar\.gz$/.test(file);
    const manifest = parseManifest({
      schemaVersion: 1,
      project: 'big',
      version: c!,
      kind: tarball ? 'node-tarball' : 'lambda-zip',
      files: [{ name: basename(file), size: d.size, sha256: d.hex }],
      ...(tarball ? { runtime: 'node>=20', entry: 'main.js' } : { runtime: 'provided.al2023', handler: 'bootstrap' }),
      architecture: 'x86_64',
      toolchain: 'bench',
    });
    let attempts = 0;
    let status = 'failed';
    let lastError = '';
    const errors: string[] = [];
    while (attempts < 3 && status === 'failed') {
      attempts++;
      try {
        status = (
          await publishArtifact({
            store,
            manifest,
            dir: dirname(file),
            metadata: { publishedAt: new Date().toISOString(), builder: 'local:bench', trusted: true },
          })
        ).status;
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
  } else if (cmd === 'fetch') {
    const store = openStore(parseStoreUrl(a!));
    const t0 = Date.now();
    const stored = process.argv.includes('--verify') ? await verifyArtifact(store, 'big', b!) : await readStoredManifest(store, 'big', b!);
    const r = await deployLocal({ store, project: 'big', version: b!, root: c!, stored });
    const ms = Date.now() - t0;
    process.stdout.write(JSON.stringify({ ms, maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), status: r.status }) + '\n');
  } else if (cmd === 'proxy') {
    const proxy = await startFaultProxy({ target: a!, rate: Number(b), seed: 7 });
    process.stdout.write(`${proxy.endpoint}\n`);
    process.on('SIGTERM', () => {
      process.stderr.write(JSON.stringify(proxy.stats) + '\n');
      void proxy.stop().then(() => process.exit(0));
    });
  } else {
    throw new Error(
      'usage: publish-large.ts publish <file> <storeUrl> <version> | verify <storeUrl> <version> | fetch <storeUrl> <version> <root> [--verify] | proxy <targetUrl> <rate>',
    );
  }
}
void main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
