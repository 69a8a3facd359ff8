/**
 * A small OCI distribution client (OCI distribution spec v1.1,
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md), on Node's fetch:
 * manifests (HEAD/GET/PUT/DELETE), blobs (HEAD/GET, monolithic POST+PUT upload, cross-repository
 * mount), tag listing. Authentication per the Docker token spec the registries implement
 * (https://distribution.github.io/distribution/spec/auth/token/): anonymous first; on `401` with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…` a token is fetched from the realm (with basic
 * credentials when configured) and cached per scope; on `Basic` the credentials are sent.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { MANIFEST_ACCEPT, digestOf } from './oci';
import { ImageIntegrityError, ImageNotFoundError, RegistryAuthError, RegistryError } from './errors';

/** Credentials for one registry: basic (username/password, also used at the token realm) or a static bearer token. */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  token?: string;
}

export interface RegistryClientOptions {
  /** host[:port] */
  registry: string;
  scheme: 'http' | 'https';
  credentials?: RegistryCredentials;
  /** counts requests by kind (tests, bench) */
  onRequest?: (method: string, path: string, status: number) => void;
}

/** What a manifest HEAD/GET returned. */
export interface ManifestInfo {
  digest: string;
  mediaType: string;
  size: number;
}

type Body = () => RequestInit['body'] | undefined;

interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header (`Bearer realm="…",service="…",scope="…"`). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'basic') return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = p[2] ?? p[3] ?? '';
  return { scheme, params };
}

function pull(repo: string): string {
  return `repository:${repo}:pull`;
}
function pushPull(repo: string): string {
  return `repository:${repo}:pull,push`;
}

async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const e = j.errors?.[0];
    if (e) return `${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`.slice(0, 300);
  } catch {
    /* not JSON */
  }
  return text.replace(/\s+/g, ' ').slice(0, 200);
}

/** Client for one registry host. Stateless except for cached bearer tokens. */
export class RegistryClient {
  private readonly tokens = new Map<string, string>();
  private basicKnown = false;
  readonly base: string;

  constructor(private readonly o: RegistryClientOptions) {
    this.base = `${o.scheme}://${o.registry === 'docker.io' ? 'registry-1.docker.io' : o.registry}`;
  }

  get registry(): string {
    return this.o.registry;
  }

  private basicHeader(): string | undefined {
    const c = this.o.credentials;
    if (c?.username === undefined || c.password === undefined) return undefined;
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
  }

  private authHeader(scope: string): string | undefined {
    if (this.o.credentials?.token) return `Bearer ${this.o.credentials.token}`;
    const t = this.tokens.get(scope);
    if (t) return `Bearer ${t}`;
    if (this.basicKnown) return this.basicHeader();
    return undefined;
  }

  /** Token endpoint request (GET realm?service=&scope=), basic credentials when configured. */
  private async fetchToken(ch: Challenge, scope: string): Promise<void> {
    const realm = ch.params.realm;
    if (!realm) throw new RegistryAuthError(`registry ${this.o.registry}: Bearer challenge without a realm`);
    const url = new URL(realm);
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    for (const s of scope.split(' ')) url.searchParams.append('scope', s); // one scope parameter per scope (token spec)
    const headers: Record<string, string> = {};
    const basic = this.basicHeader();
    if (basic) headers.authorization = basic;
    const res = await fetch(url, { headers });
    if (!res.ok) {
      throw new RegistryAuthError(
        `registry ${this.o.registry}: token endpoint ${url.origin}${url.pathname} answered ${res.status} for scope ${scope}: set BUILDONCE_REGISTRY_USERNAME/BUILDONCE_REGISTRY_PASSWORD (or log in to ECR with AWS credentials)`,
        res.status,
      );
    }
    const j = (await res.json()) as { token?: string; access_token?: string };
    const token = j.token ?? j.access_token;
    if (!token) throw new RegistryAuthError(`registry ${this.o.registry}: token endpoint returned no token`);
    this.tokens.set(scope, token);
  }

  /**
   * One request with the auth dance: at most one retry after a 401 challenge.
   * @param path absolute path (`/v2/…`) or absolute URL (upload locations)
   */
  async request(method: string, path: string, opts: { scope: string; headers?: Record<string, string>; body?: Body; expect?: number[] }): Promise<Response> {
    const url = /^https?:\/\//.test(path) ? path : this.base + path;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...opts.headers };
      const auth = this.authHeader(opts.scope);
      if (auth) headers.authorization = auth;
      const body = opts.body?.();
      let res: Response;
      try {
        res = await fetch(url, { method, headers, body, redirect: 'follow', ...(body ? { duplex: 'half' } : {}) } as RequestInit);
      } catch (e) {
        throw new RegistryError(
          `registry ${this.o.registry}: ${method} ${url} failed: ${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause?: Error }).cause!.message})` : ''}: check the registry address and that it is running`,
          undefined,
          { cause: e },
        );
      }
      this.o.onRequest?.(method, new URL(url).pathname, res.status);
      if (res.status === 401 && attempt === 0) {
        const ch = parseChallenge(res.headers.get('www-authenticate'));
        await res.arrayBuffer().catch(() => undefined);
        if (ch?.scheme === 'bearer') {
          await this.fetchToken(ch, opts.scope);
          continue;
        }
        if (ch?.scheme === 'basic' && this.basicHeader() && !this.basicKnown) {
          this.basicKnown = true;
          continue;
        }
      }
      if (res.status === 401 || res.status === 403) {
        const why = await errorText(res);
        throw new RegistryAuthError(
          `registry ${this.o.registry}: ${method} ${new URL(url).pathname} → ${res.status} ${why}: check BUILDONCE_REGISTRY_USERNAME/BUILDONCE_REGISTRY_PASSWORD or your AWS credentials for ECR`,
          res.status,
        );
      }
      if (opts.expect && !opts.expect.includes(res.status)) {
        const why = await errorText(res);
        throw new RegistryError(`registry ${this.o.registry}: ${method} ${new URL(url).pathname} → ${res.status} ${why}`, res.status);
      }
      return res;
    }
  }

  /** HEAD /v2/<repo>/manifests/<ref>: digest, media type and size; undefined on 404. */
  async headManifest(repo: string, ref: string): Promise<ManifestInfo | undefined> {
    const res = await this.request('HEAD', `/v2/${repo}/manifests/${ref}`, { scope: pull(repo), headers: { accept: MANIFEST_ACCEPT }, expect: [200, 404] });
    if (res.status === 404) return undefined;
    const digest = res.headers.get('docker-content-digest');
    if (!digest) {
      // registries SHOULD send it; fall back to a GET
      const got = await this.getManifest(repo, ref);
      return { digest: got.digest, mediaType: got.mediaType, size: got.bytes.length };
    }
    return { digest, mediaType: (res.headers.get('content-type') ?? '').split(';')[0]!, size: Number(res.headers.get('content-length') ?? 0) };
  }

  /**
   * GET /v2/<repo>/manifests/<ref>. When `ref` is a digest the bytes are checked against it.
   * @throws ImageNotFoundError on 404; ImageIntegrityError when the bytes do not hash to the digest
   */
  async getManifest(repo: string, ref: string): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${ref}`, { scope: pull(repo), headers: { accept: MANIFEST_ACCEPT }, expect: [200, 404] });
    if (res.status === 404) {
      await res.arrayBuffer();
      throw new ImageNotFoundError(
        `image ${this.o.registry}/${repo}${ref.startsWith('sha256:') ? '@' : ':'}${ref} not found: check the reference (and that it was pushed)`,
      );
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = digestOf(bytes);
    if (ref.startsWith('sha256:') && digest !== ref)
      throw new ImageIntegrityError(`manifest ${this.o.registry}/${repo}@${ref} has digest ${digest}: the registry returned other bytes`);
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    try {
      const j = JSON.parse(bytes.toString('utf8')) as { mediaType?: string };
      if (j.mediaType) mediaType = j.mediaType;
    } catch {
      throw new RegistryError(`manifest ${this.o.registry}/${repo}:${ref} is not JSON`);
    }
    return { bytes, mediaType, digest };
  }

  /**
   * PUT /v2/<repo>/manifests/<ref> (tag or digest).
   * @returns the digest the registry reports (Docker-Content-Digest)
   */
  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<string | undefined> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${ref}`, {
      scope: pushPull(repo),
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: () => bytes,
      expect: [200, 201, 202],
    });
    await res.arrayBuffer();
    return res.headers.get('docker-content-digest') ?? undefined;
  }

  /** DELETE /v2/<repo>/manifests/<digest> (202; 404 counts as already gone). @returns whether it existed */
  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('DELETE', `/v2/${repo}/manifests/${digest}`, { scope: `repository:${repo}:delete,pull,push`, expect: [200, 202, 404] });
    await res.arrayBuffer();
    return res.status !== 404;
  }

  /** HEAD /v2/<repo>/blobs/<digest>: size in bytes, or undefined when absent. */
  async headBlob(repo: string, digest: string): Promise<number | undefined> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scope: pull(repo), expect: [200, 404] });
    return res.status === 200 ? Number(res.headers.get('content-length') ?? 0) : undefined;
  }

  /** GET /v2/<repo>/blobs/<digest> as a stream (redirects followed). @throws ImageNotFoundError on 404 */
  async getBlob(repo: string, digest: string): Promise<Readable> {
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scope: pull(repo), expect: [200, 404] });
    if (res.status === 404 || !res.body) throw new ImageNotFoundError(`blob ${digest} not found in ${this.o.registry}/${repo}`);
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
  }

  /**
   * Uploads a blob unless present (OCI distribution spec "Pushing blobs"): optional cross-repository
   * mount (`POST …/blobs/uploads/?mount=&from=`, 201 = mounted; a registry that cannot mount answers 202
   * and the upload goes on), else a monolithic upload (POST → 202 Location → `PUT <location>?digest=`,
   * the registry checks the bytes against the digest). The bytes come from a file, or from `source`
   * opened only when they are needed (e.g. another registry's blob GET, streamed through, never buffered).
   * @param source a file path, or a function opening a stream of exactly `size` bytes (called at most once)
   * @returns `mounted` or `uploaded`
   * @throws RegistryError (refused upload, or a 202 without Location), RegistryAuthError, what `source` throws
   */
  async pushBlob(repo: string, digest: string, size: number, source: string | (() => Promise<Readable>), mountFrom?: string): Promise<'mounted' | 'uploaded'> {
    const q = mountFrom && mountFrom !== repo ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}` : '';
    const scope = mountFrom && mountFrom !== repo ? `${pushPull(repo)} ${pull(mountFrom)}` : pushPull(repo);
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/${q}`, { scope, headers: { 'content-length': '0' }, expect: [201, 202] });
    await start.arrayBuffer();
    if (start.status === 201) return 'mounted';
    const loc = start.headers.get('location');
    if (!loc) throw new RegistryError(`registry ${this.o.registry}: upload of ${digest} got 202 without a Location header`);
    const url = new URL(loc, this.base + '/');
    url.searchParams.set('digest', digest);
    const stream = typeof source === 'string' ? undefined : await source();
    let opened = false;
    const body = (): RequestInit['body'] => {
      if (typeof source === 'string') return Readable.toWeb(createReadStream(source)) as unknown as RequestInit['body'];
      // a stream can be sent once; the POST above already fetched the token this scope needs
      if (opened) throw new RegistryError(`registry ${this.o.registry}: upload of ${digest} was refused after its bytes were streamed; retry the promotion`);
      opened = true;
      return Readable.toWeb(stream!) as unknown as RequestInit['body'];
    };
    try {
      const put = await this.request('PUT', url.toString(), {
        scope,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body,
        expect: [201, 204],
      });
      await put.arrayBuffer();
    } finally {
      stream?.destroy();
    }
    return 'uploaded';
  }

  /** GET /v2/<repo>/tags/list, following `Link: <…>; rel="next"` pages. Empty when the repository does not exist. */
  async listTags(repo: string): Promise<string[]> {
    const out: string[] = [];
    let path: string | undefined = `/v2/${repo}/tags/list`;
    while (path) {
      const res: Response = await this.request('GET', path, { scope: pull(repo), expect: [200, 404] });
      if (res.status === 404) {
        await res.arrayBuffer();
        return out;
      }
      const j = (await res.json()) as { tags?: string[] | null };
      out.push(...(j.tags ?? []));
      const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
      path = next ? new URL(next, this.base + '/').toString() : undefined;
    }
    return out;
  }
}
