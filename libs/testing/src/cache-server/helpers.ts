import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import pino, { type Logger } from 'pino';
import { Header } from 'tar';
import type { CryptoKey } from 'jose';

/** One entry of a hand-built tar archive (raw header fields: nothing is sanitized, so hostile paths survive). */
export interface TarEntrySpec {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link';
  linkpath?: string;
  data?: Buffer | string;
}

/**
 * Builds an uncompressed ustar archive from raw entries, terminated by two zero blocks. Paths are written as
 * given (tar's Header does no sanitizing), so tests can forge `../evil` or `/etc/passwd` entries like a hostile
 * client would.
 */
export function plainTar(entries: TarEntrySpec[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    const type = e.type ?? 'File';
    const size = type === 'File' ? data.length : 0;
    const h = new Header({ path: e.path, type, linkpath: e.linkpath, size, mode: type === 'Directory' ? 0o755 : 0o644, mtime: new Date(0), uid: 0, gid: 0 });
    const block = Buffer.alloc(512);
    h.encode(block, 0);
    blocks.push(block);
    if (size) {
      blocks.push(data);
      const pad = (512 - (size % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** gzip(plainTar(entries)). */
export function tarGz(entries: TarEntrySpec[]): Buffer {
  return gzipSync(plainTar(entries));
}

/** A body shaped like Nx's (outputs + `terminalOutput` + 4-byte big-endian `code`), `payloadBytes` of random output. */
export function nxLikeBody(payloadBytes = 1024, seed = randomBytes(4).toString('hex')): Buffer {
  const code = Buffer.alloc(4);
  return tarGz([
    { path: 'dist', type: 'Directory' },
    { path: 'dist/out.bin', data: randomBytes(payloadBytes) },
    { path: 'dist/seed.txt', data: seed },
    { path: 'terminalOutput', data: `built ${seed}\n` },
    { path: 'code', data: code },
  ]);
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A pino logger writing JSON lines into `lines` (for asserting access logs). */
export function captureLogger(): { logger: Logger; lines: string[]; records: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Response of a raw HTTP request. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * Sends a request with node:http so tests control framing (chunked bodies without Content-Length, a lying
 * Content-Length, aborting mid-body).
 * @param opts.body bytes to send; with `chunked: true` no Content-Length is set
 * @param opts.contentLength overrides the Content-Length header (bytes)
 * @param opts.stopAfter send only this many body bytes and then wait for the response (for early answers)
 */
export function rawRequest(
  url: string,
  opts: { method: string; headers?: Record<string, string>; body?: Buffer; chunked?: boolean; contentLength?: number; stopAfter?: number },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
    if (opts.body && !opts.chunked) headers['content-length'] = opts.contentLength ?? opts.body.length;
    if (opts.chunked) headers['transfer-encoding'] = 'chunked';
    // split by hand: new URL() would normalize `%2e%2e` and `..` away
    const m = /^http:\/\/([^/:]+):(\d+)(\/.*)$/.exec(url);
    if (!m) throw new Error(`rawRequest needs http://host:port/path, got ${url}`);
    const req = request({ host: m[1], port: Number(m[2]), path: m[3], method: opts.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body) {
      if (opts.stopAfter !== undefined) {
        req.write(opts.body.subarray(0, opts.stopAfter));
        return;
      }
      req.write(opts.body);
    }
    req.end();
  });
}

/** A local OIDC issuer for tests: RSA keys generated here, JWKS served on loopback, tokens signed like GitHub's. */
export interface TestIssuer {
  /** `http://127.0.0.1:<port>`: use as issuer; the JWKS is at `<url>/.well-known/jwks` */
  url: string;
  /** times the JWKS was fetched */
  jwksFetches: number;
  /** Signs `claims` (RS256, current key) with defaults iss=url, iat=now, exp=now+5 min; `kid` override allowed. */
  sign(claims: Record<string, unknown>, opts?: { kid?: string; key?: CryptoKey }): Promise<string>;
  /** A GitHub-Actions-shaped token: aud, repository, ref, event_name, plus overrides. */
  github(aud: string, claims: Record<string, unknown>): Promise<string>;
  /** Replaces the published key with a new one (new `kid`); later tokens use it. */
  rotate(): Promise<void>;
  /** The current public key as SPKI PEM (for key-confusion tests). */
  publicPem(): Promise<string>;
  close(): Promise<void>;
}

/** Starts a TestIssuer on a free loopback port. */
export async function startTestIssuer(): Promise<TestIssuer> {
  const { SignJWT, exportJWK, exportSPKI, generateKeyPair } = await import('jose');
  const { createServer } = await import('node:http');
  let gen = 0;
  let current = { kid: '', priv: undefined as unknown as CryptoKey, pub: undefined as unknown as CryptoKey, jwk: {} as Record<string, unknown> };
  const fresh = async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = `test-key-${++gen}`;
    current = { kid, priv: privateKey, pub: publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
  };
  await fresh();
  const issuer: TestIssuer = {
    url: '',
    jwksFetches: 0,
    async sign(claims, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer.url, iat: now, nbf: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: opts.kid ?? current.kid })
        .sign(opts.key ?? current.priv);
    },
    github(aud, claims) {
      return issuer.sign({
        aud,
        sub: 'repo:acme/app:ref:refs/heads/main',
        repository: 'acme/app',
        ref: 'refs/heads/main',
        event_name: 'push',
        job_workflow_ref: 'acme/app/.github/workflows/ci.yml@refs/heads/main',
        run_id: '1',
        ...claims,
      });
    },
    rotate: fresh,
    publicPem: () => exportSPKI(current.pub),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  const server = createServer((req, res) => {
    if (req.url === '/.well-known/jwks') {
      issuer.jwksFetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [current.jwk] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  issuer.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return issuer;
}

let hashes = 0;
/** A task hash no earlier call in this process returned (decimal, like Nx's): the time in ms and a counter. */
export function newCacheHash(): string {
  return `${Date.now()}${String(++hashes).padStart(4, '0')}`;
}
