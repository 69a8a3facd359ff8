import { ImageConfigError } from './errors';

/** A parsed image reference: `[scheme://]host[:port]/repo/path[:tag][@sha256:…]`. */
export interface ImageReference {
  /** `http` for loopback registries (127.0.0.1, localhost, ::1) or an explicit `http://` prefix; else `https` */
  scheme: 'http' | 'https';
  /** registry host[:port] as used in URIs (`docker.io` is mapped to `registry-1.docker.io` for requests) */
  registry: string;
  /** repository path, e.g. `lambda/provided` */
  repository: string;
  tag?: string;
  digest?: string;
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const REPO = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** True for hosts where plain HTTP is the default (loopback). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Parses an image reference (OCI distribution spec naming: repository components of lowercase
 * alphanumerics and separators; tags `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`; digests `sha256:<hex>`).
 * A first component without `.`/`:` (and not `localhost`) means Docker Hub (`docker.io`, `library/` added).
 * @throws ImageConfigError naming the reference and what is wrong
 */
export function parseImageReference(ref: string): ImageReference {
  let rest = ref.trim();
  let scheme: 'http' | 'https' | undefined;
  const m = /^(https?):\/\//.exec(rest);
  if (m) {
    scheme = m[1] as 'http' | 'https';
    rest = rest.slice(m[0].length);
  }
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new ImageConfigError(`image reference "${ref}": digest must be sha256:<64 lowercase hex>`);
  }
  const slash = rest.indexOf('/');
  let registry = 'docker.io';
  let path = rest;
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    path = rest.slice(slash + 1);
  }
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageConfigError(`image reference "${ref}": tag "${tag}" is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})`);
  }
  if (registry === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  if (!REPO.test(path))
    throw new ImageConfigError(`image reference "${ref}": repository "${path}" must be lowercase letters, digits and separators (OCI distribution naming)`);
  return {
    scheme: scheme ?? (isLoopbackHost(registry) ? 'http' : 'https'),
    registry,
    repository: path,
    ...(tag ? { tag } : {}),
    ...(digest ? { digest } : {}),
  };
}

/** `host/repo` (no scheme, tag or digest). */
export function repositoryUri(r: Pick<ImageReference, 'registry' | 'repository'>): string {
  return `${r.registry}/${r.repository}`;
}

/** `host/repo@sha256:…`: the immutable image URI (what Lambda's `ImageUri` takes). */
export function imageUriByDigest(r: Pick<ImageReference, 'registry' | 'repository'>, digest: string): string {
  return `${repositoryUri(r)}@${digest}`;
}

/** True when a tag is valid per the distribution spec. */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** ECR private registry host: `<account>.dkr.ecr.<region>.amazonaws.com[.cn]`; returns account and region. */
export function ecrHost(registry: string): { account: string; region: string } | undefined {
  const m = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(registry);
  return m ? { account: m[1]!, region: m[2]! } : undefined;
}
