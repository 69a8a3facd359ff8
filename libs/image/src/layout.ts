/**
 * OCI image layout on disk (OCI image spec "image-layout": `oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`), readable by skopeo (`oci:<dir>`), crane and containerd.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { MEDIA_OCI_INDEX, canonicalJson, digestHex, imageIndexSchema, imageManifestSchema, type Descriptor, type ImageManifest } from './oci';
import { ImageIntegrityError } from './errors';

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_INDEX_FILE = 'index.json';
/** Annotation naming a manifest inside an image layout (`oci:<dir>:<ref>` in skopeo). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** Path of a blob in a layout. */
export function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digestHex(digest));
}

/** True when the layout (or cache) holds the blob with the expected size. */
export async function hasBlob(dir: string, digest: string, size?: number): Promise<boolean> {
  const st = await stat(blobPath(dir, digest)).catch(() => undefined);
  return !!st && (size === undefined || st.size === size);
}

/**
 * Streams bytes into `blobs/sha256/<hex>` of a layout, checking the digest (and size) on the way;
 * written to a temp name and renamed, so a blob file is always complete.
 * @throws ImageIntegrityError when the bytes do not match
 */
export async function writeBlobStream(dir: string, digest: string, source: Readable, size?: number): Promise<void> {
  const dest = blobPath(dir, digest);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const hash = createHash('sha256');
  let n = 0;
  try {
    await pipeline(
      source,
      async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          hash.update(chunk);
          n += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(tmp),
    );
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest || (size !== undefined && n !== size))
      throw new ImageIntegrityError(`blob ${digest} (${size ?? '?'} bytes) arrived as ${got} (${n} bytes): the registry returned other bytes`);
    await rename(tmp, dest);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Writes in-memory bytes as a blob; @returns its descriptor fields */
export async function writeBlobBytes(dir: string, bytes: Buffer, digest: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(blobPath(dir, digest), bytes);
}

/** Copies a blob between layouts/caches (the bytes are content-addressed, so a copy is always valid). */
export async function copyBlob(fromDir: string, toDir: string, digest: string): Promise<void> {
  await mkdir(join(toDir, 'blobs', 'sha256'), { recursive: true });
  const tmp = `${blobPath(toDir, digest)}.tmp-${process.pid}`;
  await copyFile(blobPath(fromDir, digest), tmp);
  await rename(tmp, blobPath(toDir, digest));
}

/** Writes `oci-layout` and `index.json` naming one manifest (with `ref` as its ref.name annotation). */
export async function writeLayoutIndex(dir: string, manifest: Descriptor, ref: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, OCI_LAYOUT_FILE), canonicalJson({ imageLayoutVersion: '1.0.0' }));
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_OCI_INDEX,
    manifests: [{ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, annotations: { [REF_NAME_ANNOTATION]: ref } }],
  };
  await writeFile(join(dir, OCI_INDEX_FILE), canonicalJson(index));
}

/** One image read back from a layout: its manifest (bytes, parsed, digest) and every blob it needs. */
export interface LayoutImage {
  manifestBytes: Buffer;
  manifest: ImageManifest;
  manifestDescriptor: Descriptor;
  /** config first, then layers */
  blobs: Descriptor[];
}

/**
 * Reads the single image of a layout written by {@link writeLayoutIndex} and checks the manifest digest.
 * @throws ImageIntegrityError for a missing or mismatched manifest blob
 */
export async function readLayoutImage(dir: string): Promise<LayoutImage> {
  const index = imageIndexSchema.parse(JSON.parse(await readFile(join(dir, OCI_INDEX_FILE), 'utf8')));
  const desc = index.manifests[0];
  if (!desc) throw new ImageIntegrityError(`image layout ${dir} has no manifest: rebuild the image`);
  const bytes = await readFile(blobPath(dir, desc.digest)).catch(() => {
    throw new ImageIntegrityError(`image layout ${dir} lacks manifest blob ${desc.digest}: rebuild the image`);
  });
  const d = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (d !== desc.digest) throw new ImageIntegrityError(`image layout ${dir}: manifest blob hashes to ${d}, index says ${desc.digest}: rebuild the image`);
  const manifest = imageManifestSchema.parse(JSON.parse(bytes.toString('utf8')));
  return { manifestBytes: bytes, manifest, manifestDescriptor: desc, blobs: [manifest.config, ...manifest.layers] };
}

/** sha256 of a file as `sha256:<hex>` and its size (bytes). */
export async function digestFile(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path)) {
    hash.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}
