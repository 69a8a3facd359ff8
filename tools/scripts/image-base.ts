/**
 * Pushes the stand-in Lambda base image (libs/image testkit: a tiny provided.al2023-like image with
 * /lambda-entrypoint.sh, LAMBDA_RUNTIME_DIR=/var/runtime, amd64 + arm64) to a registry and prints its
 * reference by digest. Offline machines and the README's local walkthrough use it instead of
 * public.ecr.aws/lambda/provided:al2023. Its bytes are deterministic, so the digest is always the same.
 * usage: node -r @swc-node/register tools/scripts/image-base.ts <host:port>
 */
import { RegistryClient } from '@buildonce/image';
import { pushTestBaseImage } from '@buildonce/testing';

async function main(): Promise<void> {
  const host = process.argv[2];
  if (!host) throw new Error('usage: image-base.ts <host:port>');
  const r = await pushTestBaseImage(new RegistryClient({ registry: host, scheme: 'http' }));
  process.stdout.write(`${r.reference}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`image-base: ${e.message}\n`);
  process.exit(1);
});
