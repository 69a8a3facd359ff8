import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readZipEntry } from '@buildonce/artifact';
import { elfMachine } from '@buildonce/rust';
import type { AwsClients } from '@buildonce/aws';
import { buildImage, imageConfigChanges, type AssembledImage, type ImageConfigChanges, type ImageFile } from './assemble';
import { clientFor } from './credentials';
import { parseImageReference } from './reference';
import { REGISTRY_ENV } from './publish';
import type { Platform } from './oci';
import { ImageConfigError } from './errors';
import type { Manifest } from '@buildonce/artifact';
import type { ProjectName, Version } from '@buildonce/values';

/** ELF `e_machine` name (libs/rust readElfVersionNeeds) of the executables each platform runs. */
const PLATFORM_MACHINE: Record<Platform, string> = { 'linux/amd64': 'x86_64', 'linux/arm64': 'aarch64' };

/**
 * Why an image file cannot run on the image's platform, or undefined: an ELF executable whose machine is not
 * the platform's (an arm64 image carrying an x86_64 `bootstrap` would build, push and deploy, then fail on
 * every invoke with `exec format error`). Files that are not ELF (scripts, data) are not judged.
 * @param head the file's first bytes (at least 20: the ELF header's machine field)
 * @param what the file's name in messages (its destination)
 */
export function platformMismatch(head: Buffer, platform: Platform, what: string): string | undefined {
  const machine = elfMachine(head);
  const want = PLATFORM_MACHINE[platform];
  if (machine === undefined || machine === want) return undefined;
  return `image file ${what} is an ELF executable for ${machine} but the image platform is ${platform} (${want}): build it for ${want} or set platform to match`;
}

/** First bytes of a file (enough for an ELF header's machine field). */
async function fileHead(path: string, bytes = 64): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A file of the image as the `oci-image` executor names it: a workspace path (or an entry of a zip there). */
export interface ImageFileOption {
  /** workspace-relative (or absolute) path of a build output, e.g. `dist/apps/rust-scorer/bootstrap.zip` */
  source: string;
  /** take this entry of the zip at `source` instead of the file itself (e.g. `bootstrap`) */
  zipEntry?: string;
  /** absolute path in the image; `${VAR}` expands from the base image's Env (e.g. `${LAMBDA_RUNTIME_DIR}/bootstrap`) */
  destination: string;
  /** octal permission string, e.g. `0755` (default 0644) */
  mode?: string;
}

export interface BuildImageTargetOptions extends ImageConfigChanges {
  project: ProjectName;
  version: Version;
  workspaceRoot: string;
  outputDir: string;
  baseImage: string;
  platform: Platform;
  files: ImageFileOption[];
  runtime: string;
  handler?: string;
  /** blob cache (absolute); default `<workspace>/.buildonce/cache/oci` */
  cacheDir?: string;
  processEnv?: NodeJS.ProcessEnv;
  /** AWS clients (ECR tokens for an ECR base image), built once by the caller (the oci-image executor) */
  aws: AwsClients;
  log: (line: string) => void;
}

/**
 * What the `oci-image` executor does: resolves the files (zip entries read in memory), opens a client
 * for the base image's registry (credentials per `registryCredentials`: BUILDONCE_REGISTRY_* only for the
 * BUILDONCE_REGISTRY host, ECR tokens for ECR hosts, else anonymous) and runs {@link buildImage} into
 * `outputDir` (one layer with every file). Logs `[project] …` lines.
 * @throws ImageConfigError for missing sources / bad modes / an ELF executable built for another machine than
 *   `platform`; everything buildImage throws
 */
export async function buildImageTarget(o: BuildImageTargetOptions): Promise<{ image: AssembledImage; manifest: Manifest }> {
  const env = o.processEnv ?? process.env;
  const tag = `[${o.project}]`;
  const files: ImageFile[] = [];
  for (const f of o.files) {
    const src = f.source.startsWith('/') ? f.source : join(o.workspaceRoot, f.source);
    if (f.mode !== undefined && !/^0?[0-7]{3,4}$/.test(f.mode)) throw new ImageConfigError(`file ${f.destination}: mode "${f.mode}" is not octal like 0755`);
    const mode = f.mode !== undefined ? parseInt(f.mode, 8) : undefined;
    const what = f.zipEntry ? `entry "${f.zipEntry}" of ${src}` : src;
    const read = f.zipEntry ? readZipEntry(src, f.zipEntry) : fileHead(src);
    const bytes = await read.catch((e: Error) => {
      throw new ImageConfigError(`image file ${f.destination}: cannot read ${what} (${e.message}): build the project that makes it first (dependsOn)`);
    });
    const bad = platformMismatch(bytes, o.platform, f.destination);
    if (bad) throw new ImageConfigError(bad);
    // a zip entry goes in from memory; a plain file is streamed from its path (only its head was read)
    files.push(f.zipEntry ? { destination: f.destination, bytes, mode } : { destination: f.destination, path: src, mode });
  }
  const baseRef = parseImageReference(o.baseImage);
  const configured = env[REGISTRY_ENV] ? parseImageReference(env[REGISTRY_ENV]!).registry : undefined;
  const baseClient = await clientFor(baseRef, { configuredHost: configured, env, aws: o.aws });
  const r = await buildImage({
    project: o.project,
    version: o.version,
    runtime: o.runtime,
    handler: o.handler,
    baseImage: o.baseImage,
    platform: o.platform,
    layers: [{ name: 'files', files }],
    ...imageConfigChanges(o),
    outDir: o.outputDir,
    cacheDir: o.cacheDir ?? join(o.workspaceRoot, '.buildonce', 'cache', 'oci'),
    baseClient,
    log: (l) => o.log(`${tag} ${l}`),
  });
  o.log(
    `${tag} built image ${r.image.digest} (${r.image.platform}, ${r.image.size} bytes in ${r.image.layers.length} layer(s)) version ${o.version} → ${o.outputDir}`,
  );
  return r;
}
