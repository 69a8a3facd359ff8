import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RegistryServer, pushTestBaseImage, type TestBaseImage } from '@buildonce/testing';
import { ImageIntegrityError } from './errors';
import { digestOf } from './oci';
import { copyImageToRegistry, type ImageRegionCopyOptions } from './region-copy';
import { RegistryClient } from './registry';

/*
 * Image region copies between two real registries (CNCF distribution): the home registry holds the test
 * image (a Docker manifest list over amd64 + arm64), the region registry starts empty. Cross-registry
 * copies stream blobs; a copy between two repositories of one registry mounts them.
 */
let home: RegistryServer;
let region: RegistryServer;
let image: TestBaseImage;
const requests: string[] = [];
const client = (s: RegistryServer) =>
  new RegistryClient({ registry: s.host, scheme: 'http', onRequest: (m, p, st) => requests.push(`${s.host} ${m} ${p} ${st}`) });
const writes = () => requests.filter((r) => / (POST|PUT|PATCH) /.test(r));

beforeAll(async () => {
  [home, region] = await Promise.all([startRegistry(), startRegistry()]);
  image = await pushTestBaseImage(client(home), 'rust-scorer', 'v1');
});
afterAll(async () => {
  await Promise.all([home?.stop(), region?.stop()]);
});

/** copyImageToRegistry from the home registry's `rust-scorer` repository into `repo` of `to`. */
function copyFromHome(digest: string, to: RegistryServer, repo: string, o: Partial<ImageRegionCopyOptions> = {}) {
  return copyImageToRegistry({ source: client(home), sourceRepository: 'rust-scorer', digest, destination: client(to), destinationRepository: repo, ...o });
}

describe('copyImageToRegistry (two real registries)', () => {
  it('dry run lists the copies and writes nothing', async () => {
    const logs: string[] = [];
    requests.length = 0;
    const r = await copyFromHome(image.indexDigest, region, 'scorer-euw1', { dryRun: true, log: (l) => logs.push(l) });
    expect(r).toMatchObject({ status: 'dry-run', blobsUploaded: 4, blobsMounted: 0, manifestsPut: 3 });
    expect(logs.filter((l) => l.startsWith('dry run: would copy blob'))).toHaveLength(4);
    expect(writes()).toEqual([]);
    expect(await client(region).headManifest('scorer-euw1', image.indexDigest)).toBeUndefined();
  });

  it('streams every blob into another registry and puts the index and its children by digest', async () => {
    requests.length = 0;
    const r = await copyFromHome(image.indexDigest, region, 'scorer-euw1');
    expect(r).toMatchObject({ status: 'copied', uri: `${region.host}/scorer-euw1@${image.indexDigest}`, blobsUploaded: 4, blobsMounted: 0, manifestsPut: 3 });
    expect(writes().some((w) => w.includes('?mount') || w.includes('mount='))).toBe(false);
    const dst = client(region);
    const got = await dst.getManifest('scorer-euw1', image.indexDigest);
    expect(got.digest).toBe(image.indexDigest);
    for (const d of Object.values(image.manifests)) expect((await dst.headManifest('scorer-euw1', d))?.digest).toBe(d);
    // no tag was written: deploys are by digest
    expect(await dst.listTags('scorer-euw1')).toEqual([]);
  });

  it('an image the destination already serves is present: nothing read from the source, nothing uploaded', async () => {
    requests.length = 0;
    const r = await copyFromHome(image.indexDigest, region, 'scorer-euw1');
    expect(r).toMatchObject({ status: 'present', blobsUploaded: 0, manifestsPut: 0 });
    expect(writes()).toEqual([]);
    expect(requests.filter((q) => q.startsWith(home.host))).toEqual([]);
  });

  it('a copy between two repositories of one registry mounts the blobs; blobs already there are not sent again', async () => {
    requests.length = 0;
    const r = await copyFromHome(image.manifests.amd64, home, 'region/scorer');
    expect(r).toMatchObject({ status: 'copied', blobsMounted: 2, blobsUploaded: 0, manifestsPut: 1 });
    expect(writes().filter((w) => w.includes(' POST '))).toHaveLength(2);
    const again = await copyFromHome(image.indexDigest, home, 'region/scorer');
    expect(again).toMatchObject({ status: 'copied', blobsMounted: 2, blobsExisting: 2, manifestsPut: 3 });
  });

  it('a source manifest whose bytes do not hash to the digest is refused before anything is written', async () => {
    const digest = image.manifests.arm64;
    // the registry serves what its storage holds: swap the manifest's stored bytes
    const data = join(home.root, 'data/docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
    const original = await readFile(data);
    const swapped = Buffer.from(original.toString('utf8').replace('"size":', '"size": '));
    expect(digestOf(swapped)).not.toBe(digest);
    await writeFile(data, swapped);
    try {
      requests.length = 0;
      await expect(
        copyImageToRegistry({
          source: client(home),
          sourceRepository: 'rust-scorer',
          digest,
          destination: client(region),
          destinationRepository: 'scorer-tampered',
        }),
      ).rejects.toThrow(ImageIntegrityError);
      expect(writes()).toEqual([]);
      expect(await client(region).headManifest('scorer-tampered', digest)).toBeUndefined();
    } finally {
      await writeFile(data, original);
    }
  });
});
