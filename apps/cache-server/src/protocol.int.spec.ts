import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '@buildonce/store';
import { captureLogger, type MotoServer, nxLikeBody, plainTar, rawRequest, servedEntry, sha256Hex, startMoto, tarGz, newCacheHash } from '@buildonce/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCacheStore, type CacheStoreSpec, type ServerConfig } from './config';
import { startServer, type RunningServer } from './start';
import { FsCacheBackend } from './storage/fs-backend';
import { S3CacheBackend, uploadBufferBytes } from './storage/s3-backend';
import { recordKey, type EntryRecord } from './storage/cache-store';
import { parseTokens } from './tokens';

const TOKENS = {
  rw: 'rw-main-7f3a9c1e5b2d',
  ro: 'ro-dev-2b8e4f6a1c9d',
  pr7: 'pr7-rw-5c1d9e3f7a2b',
  pr7ro: 'pr7-ro-8a4f2c6e1d3b',
  pr8: 'pr8-rw-3e7b1a5d9c4f',
};
const TOKEN_ENV = [
  `${TOKENS.rw}:read-write`,
  `${TOKENS.ro}:read-only`,
  `${TOKENS.pr7}:read-write:pr-7`,
  `${TOKENS.pr7ro}:read-only:pr-7`,
  `${TOKENS.pr8}:read-write:pr-8`,
].join(',');
const MAX_BYTES = 24 * 1024 * 1024;

interface Backend {
  name: string;
  setup(): Promise<{ store: CacheStoreSpec; env?: NodeJS.ProcessEnv }>;
  /** every stored key under the store root/prefix */
  keys(): Promise<string[]>;
  /** overwrite a stored blob with same-length different bytes */
  corrupt(key: string): Promise<void>;
  teardown(): Promise<void>;
}

function dirBackend(): Backend {
  let root = '';
  return {
    name: 'directory',
    async setup() {
      root = mkdtempSync(join(tmpdir(), 'cache-server-dir-'));
      return { store: parseCacheStore(root, '/') };
    },
    async keys() {
      const out: string[] = [];
      const walk = (d: string, rel: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          if (e.name === '.tmp' || e.name === '.locks') continue;
          if (e.isDirectory()) walk(join(d, e.name), rel ? `${rel}/${e.name}` : e.name);
          else out.push(rel ? `${rel}/${e.name}` : e.name);
        }
      };
      walk(root, '');
      return out;
    },
    async corrupt(key) {
      const p = new FsCacheBackend(root).pathOf(key);
      // past the filesystem's timestamp granularity (a jiffy), as any later change is: a same-tick in-place
      // change keeps the mtime and is the scrubber's to find (docs/cache-server.md, threat model)
      await new Promise((r) => setTimeout(r, 20));
      const b = readFileSync(p);
      b[b.length - 10] = b[b.length - 10]! ^ 0xff;
      writeFileSync(p, b);
      expect(statSync(p).size).toBe(b.length);
    },
    async teardown() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function s3Backend(): Backend {
  let moto: MotoServer;
  let client: S3Client;
  let restoreEnv: () => void = () => undefined;
  const bucket = 'nx-cache-test';
  const prefix = 'team/cache';
  return {
    name: 's3 (moto_server)',
    async setup() {
      moto = await startMoto();
      restoreEnv = useEnv(moto.env);
      client = createS3Client();
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return { store: parseCacheStore(`s3://${bucket}/${prefix}`, '/'), env: moto.env };
    },
    async keys() {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }));
      return (out.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1));
    },
    async corrupt(key) {
      const Key = `${prefix}/${key}`;
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key }));
      const b = Buffer.from(await got.Body!.transformToByteArray());
      b[b.length - 10] = b[b.length - 10]! ^ 0xff;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: b }));
    },
    async teardown() {
      client?.destroy();
      await moto?.stop();
      restoreEnv();
    },
  };
}

/** Sets variables in process.env (the AWS SDK's credential chain reads it); returns a restore function. */
function useEnv(vars: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

describe.each([dirBackend(), s3Backend()])('Nx remote cache protocol on the $name backend', (backend) => {
  let server: RunningServer;
  let base: string;
  const logs = captureLogger();
  let spoolDir: string;

  beforeAll(async () => {
    const { store, env } = await backend.setup();
    spoolDir = mkdtempSync(join(tmpdir(), 'cache-server-spool-'));
    const config: ServerConfig = {
      port: 0,
      host: '127.0.0.1',
      maxBytes: MAX_BYTES,
      store,
      tokens: parseTokens(TOKEN_ENV),
      spoolDir,
      shutdownTimeoutMs: 5000,
    };
    server = await startServer(config, logs.logger, { env });
    base = `${server.url}/v1/cache`;
  });

  afterAll(async () => {
    await server?.close();
    await backend.teardown();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  /** a fresh Nx-style decimal hash per call */
  const newHash = newCacheHash;
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  const put = (hash: string, body: Buffer, token = TOKENS.rw) =>
    fetch(`${base}/${hash}`, { method: 'PUT', headers: { ...auth(token), 'content-type': 'application/octet-stream' }, body });
  const get = (hash: string, token = TOKENS.rw) => fetch(`${base}/${hash}`, { headers: { ...auth(token), accept: 'application/octet-stream' } });
  const blobKeys = async (hash: string) => (await backend.keys()).filter((k) => k.includes(`/blobs/${hash}.`));
  /** PUTs a new entry with `size` bytes of output (200) and returns its hash, its body and the key of its blob. */
  const putNewEntry = async (size: number) => {
    const hash = newHash();
    const body = nxLikeBody(size);
    expect((await put(hash, body)).status).toBe(200);
    const [blob] = await blobKeys(hash);
    return { hash, body, blob: blob! };
  };

  it('GET /health answers 200 without a token', async () => {
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET of an unknown hash is 404', async () => {
    const res = await get(newHash());
    expect(res.status).toBe(404);
  });

  it('PUT stores (200, not 202) and GET returns the identical bytes', async () => {
    const hash = newHash();
    const body = nxLikeBody(200_000);
    const p = await put(hash, body);
    expect(p.status).toBe(200);
    const g = await get(hash);
    expect(g.status).toBe(200);
    expect(g.headers.get('content-type')).toBe('application/octet-stream');
    expect(g.headers.get('content-length')).toBe(String(body.length));
    expect(sha256Hex(Buffer.from(await g.arrayBuffer()))).toBe(sha256Hex(body));
  });

  it('a second PUT of an existing hash is 409 and never overwrites', async () => {
    const hash = newHash();
    const first = nxLikeBody(1000, 'first');
    const second = nxLikeBody(1000, 'second');
    expect((await put(hash, first)).status).toBe(200);
    const again = await put(hash, second);
    expect(again.status).toBe(409);
    const g = await get(hash);
    expect(sha256Hex(Buffer.from(await g.arrayBuffer()))).toBe(sha256Hex(first));
    expect(await blobKeys(hash)).toHaveLength(1);
  });

  it('concurrent PUTs of one hash: exactly one 200, the rest 409, one intact entry, no stray blobs', async () => {
    const hash = newHash();
    const bodies = Array.from({ length: 6 }, (_, i) => nxLikeBody(300_000, `racer-${i}`));
    const statuses = await Promise.all(bodies.map((b) => put(hash, b).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
    const got = Buffer.from(await (await get(hash)).arrayBuffer());
    expect(bodies.map(sha256Hex)).toContain(sha256Hex(got));
    expect(await blobKeys(hash)).toHaveLength(1);
  });

  it('401 with a text/plain body for a missing, malformed or unknown token (GET and PUT)', async () => {
    const hash = newHash();
    const body = nxLikeBody(100);
    const cases: Response[] = [
      await fetch(`${base}/${hash}`),
      await fetch(`${base}/${hash}`, { headers: { authorization: 'Bearer nope' } }),
      await fetch(`${base}/${hash}`, { headers: { authorization: `Basic ${TOKENS.rw}` } }),
      await fetch(`${base}/${hash}`, { method: 'PUT', body }),
      await put(hash, body, 'not-a-token'),
    ];
    for (const res of cases) {
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect((await res.text()).length).toBeGreaterThan(0);
    }
    expect((await get(hash)).status).toBe(404);
  });

  it('403 for a PUT with a read-only token; read-only tokens still read', async () => {
    const hash = newHash();
    const body = nxLikeBody(100);
    const denied = await put(hash, body, TOKENS.ro);
    expect(denied.status).toBe(403);
    expect(denied.headers.get('content-type')).toMatch(/^text\/plain/);
    expect((await get(hash)).status).toBe(404);
    expect((await put(hash, body, TOKENS.rw)).status).toBe(200);
    expect((await get(hash, TOKENS.ro)).status).toBe(200);
  });

  it.each([
    ['a dot', 'abc.def'],
    ['an encoded traversal', '%2e%2e'],
    ['a slash', 'abc/def'],
    ['129 characters', 'a'.repeat(129)],
    ['an empty hash', ''],
    ['a space', 'ab%20cd'],
  ])('400 for a hash with %s (GET and PUT)', async (_n, hash) => {
    // node:http sends the path as written (fetch would normalize %2e%2e away)
    const g = await rawRequest(`${base}/${hash}`, { method: 'GET', headers: auth(TOKENS.rw) });
    expect(g.status).toBe(400);
    const p = await rawRequest(`${base}/${hash}`, { method: 'PUT', headers: auth(TOKENS.rw), body: nxLikeBody(100) });
    expect(p.status).toBe(400);
  });

  it('accepts a 128-character hash of [0-9a-zA-Z_-]', async () => {
    const hash = ('aZ09_-' + newHash()).padEnd(128, 'x');
    expect((await put(hash, nxLikeBody(100))).status).toBe(200);
    expect((await get(hash)).status).toBe(200);
  });

  it('400 for a PUT without Content-Length (chunked)', async () => {
    const hash = newHash();
    const res = await rawRequest(`${base}/${hash}`, { method: 'PUT', headers: auth(TOKENS.rw), body: nxLikeBody(1000), chunked: true });
    expect(res.status).toBe(400);
    expect(res.body.toString()).toMatch(/Content-Length/);
    expect((await get(hash)).status).toBe(404);
  });

  it('413 up front when Content-Length exceeds BUILDONCE_CACHE_MAX_BYTES, without reading the body', async () => {
    const hash = newHash();
    const big = Buffer.alloc(MAX_BYTES + 1);
    // only 64 KiB of the declared body is sent: the answer must not wait for the rest
    const res = await rawRequest(`${base}/${hash}`, { method: 'PUT', headers: auth(TOKENS.rw), body: big, stopAfter: 65536 });
    expect(res.status).toBe(413);
    expect(res.headers.connection).toBe('close');
    expect((await get(hash)).status).toBe(404);
  });

  it('413 when the streamed byte count passes the limit (a body longer than declared), nothing stored', async () => {
    const hash = newHash();
    const body = nxLikeBody(400_000);
    // CacheStore level: HTTP framing cannot deliver more than Content-Length, so the counter is exercised directly
    const out = await server.store.put('trusted', hash, Readable.from([body.subarray(0, 1000), body.subarray(1000)]), 5000);
    expect(out.status).toBe('too-large');
    expect(await server.store.exists('trusted', hash)).toBe(false);
    expect(await blobKeys(hash)).toEqual([]);
  });

  it.each([
    [
      '../evil',
      () =>
        tarGz([
          { path: 'dist/ok.js', data: 'ok' },
          { path: '../evil', data: 'pwned' },
        ]),
    ],
    ['dist/../../evil', () => tarGz([{ path: 'dist/../../evil', data: 'pwned' }])],
    ['/etc/cron.d/evil', () => tarGz([{ path: '/etc/cron.d/evil', data: 'pwned' }])],
    ['a symlink to /', () => tarGz([{ path: 'root', type: 'SymbolicLink', linkpath: '/' }])],
    ['a plain tar (not gzip)', () => plainTar([{ path: 'a', data: 'x' }])],
    ['gzip garbage', () => Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(5000, 7)])],
    ['a truncated gzip tar', () => nxLikeBody(60_000).subarray(0, 30_000)],
  ])('400 for a body with %s; nothing is stored and the temp blob is deleted', async (_n, make) => {
    const hash = newHash();
    const res = await put(hash, make());
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect((await get(hash)).status).toBe(404);
    expect(await blobKeys(hash)).toEqual([]);
    // the hash is still free for a valid body
    expect((await put(hash, nxLikeBody(100))).status).toBe(200);
  });

  it('a client that disconnects mid-upload leaves nothing behind and the server stays up', async () => {
    const hash = newHash();
    const body = nxLikeBody(2_000_000);
    const { request } = await import('node:http');
    await new Promise<void>((resolve) => {
      const req = request(`${base}/${hash}`, { method: 'PUT', headers: { ...auth(TOKENS.rw), 'content-length': body.length }, agent: false });
      req.on('error', () => resolve());
      req.write(body.subarray(0, 500_000), () =>
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 100),
      );
    });
    for (let i = 0; i < 50 && (await blobKeys(hash)).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await blobKeys(hash)).toEqual([]);
    expect((await get(hash)).status).toBe(404);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await put(hash, body)).status).toBe(200);
  });

  it('a flood of uploads aborted mid-body closes each descriptor once: the server process survives 1,600 of them', async () => {
    // A descriptor closed twice may close a socket that reused its number; libuv then aborts the process
    // (SIGABRT in epoll_ctl), which here would kill the test worker. 100 rounds made that certain before.
    const { request } = await import('node:http');
    const flood = new Set<string>();
    for (let round = 0; round < 100; round++) {
      await Promise.all(
        Array.from(
          { length: 16 },
          () =>
            new Promise<void>((resolve) => {
              const hash = newHash();
              flood.add(hash);
              const req = request(`${base}/${hash}`, { method: 'PUT', headers: { ...auth(TOKENS.rw), 'content-length': 1_000_000 }, agent: false });
              req.on('error', () => resolve());
              req.on('close', () => resolve());
              req.flushHeaders();
              req.write(Buffer.from([0x1f, 0x8b, 8, 0]), () => setImmediate(() => req.destroy()));
            }),
        ),
      );
    }
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    // every aborted upload is finished and logged before the next test measures its own (a busy server lags)
    const logged = () => logs.records().filter((r) => r.msg === 'cache request' && flood.has(String(r.hash))).length;
    for (let i = 0; i < 1200 && logged() < flood.size; i++) await new Promise((r) => setTimeout(r, 100));
    expect(logged()).toBe(flood.size);
  });

  it('clients that abort right after the headers leave no blob behind, and each abort gets an access-log line', async () => {
    const { request } = await import('node:http');
    const hashes = Array.from({ length: 16 }, () => newHash());
    await Promise.all(
      hashes.map(
        (hash) =>
          new Promise<void>((resolve) => {
            const req = request(`${base}/${hash}`, { method: 'PUT', headers: { ...auth(TOKENS.rw), 'content-length': 1_000_000 }, agent: false });
            req.on('error', () => resolve());
            req.on('close', () => resolve());
            req.flushHeaders();
            req.write(Buffer.from([0x1f, 0x8b, 8, 0]), () => setImmediate(() => req.destroy()));
          }),
      ),
    );
    const lines = () => logs.records().filter((r) => r.msg === 'cache request' && r.method === 'PUT' && hashes.includes(String(r.hash)));
    for (let i = 0; i < 50 && lines().length < hashes.length; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300));
    for (const hash of hashes) expect(await blobKeys(hash), hash).toEqual([]);
    expect(lines()).toHaveLength(hashes.length);
    for (const l of lines()) expect(l).toMatchObject({ aborted: true, outcome: 'incomplete', namespace: 'trusted' });
  });

  it('streams a multi-part-sized entry (12 MiB) both ways intact', async () => {
    const hash = newHash();
    const body = nxLikeBody(12 * 1024 * 1024);
    expect((await put(hash, body)).status).toBe(200);
    const g = await get(hash);
    expect(g.status).toBe(200);
    expect(sha256Hex(Buffer.from(await g.arrayBuffer()))).toBe(sha256Hex(body));
  });

  /** Rewrites the entry's record as records were before blob identities: GETs then re-hash the blob. */
  const dropIdentity = async (hash: string) => {
    const rk = recordKey('trusted', hash);
    const { identity, ...rest } = JSON.parse((await server.store.backend.getRecord(rk))!.toString()) as EntryRecord;
    expect(identity).toBeDefined();
    await server.store.backend.delete(rk);
    await server.store.backend.putRecordIfAbsent(rk, Buffer.from(JSON.stringify(rest) + '\n'));
  };

  it.each([
    ['small', 2000],
    ['large', 3 * 1024 * 1024],
  ])('a %s blob modified in place after it was recorded is never served: identity mismatch, clean 404, quarantined, repairable', async (_n, size) => {
    const { hash, body, blob } = await putNewEntry(size);
    await backend.corrupt(blob);
    const miss = await get(hash);
    expect(miss.status).toBe(404);
    const line = logs.records().find((r) => r.msg === 'cache request' && r.hash === hash && r.method === 'GET');
    expect(line).toMatchObject({ status: 404, outcome: 'corrupt', namespace: 'trusted' });
    expect(String(line!.reason)).toMatch(backend.name === 'directory' ? /mtimeNs is .*replaced or modified/ : /not the object written/);
    expect((await backend.keys()).some((k) => k.includes(`/quarantine/${hash}.`))).toBe(true);
    expect((await get(hash)).status).toBe(404);
    expect((await put(hash, body)).status).toBe(200);
    expect(await servedEntry(get(hash))).toEqual({ status: 200, namespace: 'trusted', sha256: sha256Hex(body) });
  });

  it.each([
    ['small (verified in memory)', 2000],
    ['large (S3: verified through a spool file; directory: verified while streaming)', 3 * 1024 * 1024],
  ])('a corrupted %s entry whose record predates identities is re-hashed: never served whole, logged, quarantined, repairable', async (_n, size) => {
    const { hash, body, blob } = await putNewEntry(size);
    await dropIdentity(hash);
    await backend.corrupt(blob);
    const miss = await get(hash);
    if (backend.name === 'directory' && size > 2 * 1024 * 1024) {
      // headers went out before the mismatch was known: the body is cut short before its last chunk
      expect(miss.status).toBe(200);
      const got = await miss.arrayBuffer().then(
        (b) => b.byteLength,
        () => -1,
      );
      expect(got).not.toBe(body.length);
      // the quarantine runs after the cut response: wait until the bad record has been moved aside
      const moved = async () => {
        const keys = await backend.keys();
        return keys.some((k) => k.includes(`/quarantine/${hash}.`)) && !keys.includes(recordKey('trusted', hash));
      };
      for (let i = 0; i < 100 && !(await moved()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await moved()).toBe(true);
      expect((await get(hash)).status).toBe(404);
    } else {
      expect(miss.status).toBe(404);
      const line = logs.records().find((r) => r.msg === 'cache request' && r.hash === hash && r.method === 'GET');
      expect(line).toMatchObject({ status: 404, outcome: 'corrupt', namespace: 'trusted' });
      expect(String(line!.reason)).toMatch(/sha256/);
    }
    expect(logs.records().some((r) => r.level === 50 && r.hash === hash && /failed verification/.test(String(r.msg)))).toBe(true);
    // quarantined: the key is free again and a trusted builder can repair it
    expect((await backend.keys()).some((k) => k.includes(`/quarantine/${hash}.`))).toBe(true);
    expect((await put(hash, body)).status).toBe(200);
    expect((await get(hash)).status).toBe(200);
  });

  it('a record pointing at a missing blob is a miss, not an error', async () => {
    const { hash, blob } = await putNewEntry(100);
    await server.store.backend.delete(blob);
    expect((await get(hash)).status).toBe(404);
  });

  describe('namespaces (invariant 6: pull requests cannot poison trusted builds)', () => {
    it('a PR upload is restored by the same PR, never by trusted tokens or another PR', async () => {
      const hash = newHash();
      const body = nxLikeBody(1000, 'from-pr-7');
      expect((await put(hash, body, TOKENS.pr7)).status).toBe(200);
      expect(await servedEntry(get(hash, TOKENS.pr7ro))).toEqual({ status: 200, namespace: 'pr-7', sha256: sha256Hex(body) });
      expect((await get(hash, TOKENS.rw)).status).toBe(404);
      expect((await get(hash, TOKENS.ro)).status).toBe(404);
      expect((await get(hash, TOKENS.pr8)).status).toBe(404);
    });

    it('a PR that uploads first cannot block or replace the trusted entry (CREEP)', async () => {
      const hash = newHash();
      const poisoned = nxLikeBody(1000, 'poisoned');
      const genuine = nxLikeBody(1000, 'genuine');
      expect((await put(hash, poisoned, TOKENS.pr7)).status).toBe(200);
      expect((await put(hash, genuine, TOKENS.rw)).status).toBe(200);
      expect(await servedEntry(get(hash, TOKENS.ro))).toEqual({ status: 200, namespace: 'trusted', sha256: sha256Hex(genuine) });
      // the PR still sees its own entry first
      expect(await servedEntry(get(hash, TOKENS.pr7))).toEqual({ status: 200, namespace: 'pr-7', sha256: sha256Hex(poisoned) });
    });

    it('a PR reads trusted entries when it has none of its own', async () => {
      const hash = newHash();
      const body = nxLikeBody(1000, 'main');
      expect((await put(hash, body, TOKENS.rw)).status).toBe(200);
      expect(await servedEntry(get(hash, TOKENS.pr7))).toEqual({ status: 200, namespace: 'trusted', sha256: sha256Hex(body) });
    });

    it('PR entries live under their own key prefix', async () => {
      const hash = newHash();
      expect((await put(hash, nxLikeBody(100), TOKENS.pr8)).status).toBe(200);
      expect(await server.store.backend.getRecord(recordKey('pr-8', hash))).toBeDefined();
      expect(await server.store.backend.getRecord(recordKey('trusted', hash))).toBeUndefined();
      const rec = JSON.parse((await server.store.backend.getRecord(recordKey('pr-8', hash)))!.toString()) as EntryRecord;
      expect(rec).toMatchObject({ schemaVersion: 1, hash, namespace: 'pr-8' });
      expect(rec.blob.startsWith('v1/untrusted/pr-8/blobs/')).toBe(true);
    });
  });

  it('/metrics counts requests by method/status/namespace kind, bytes, hits/misses and rejections, without tokens or hashes', async () => {
    const scrape = async () => {
      const res = await fetch(`${server.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      const value = (series: string) => {
        const line = text.split('\n').find((l) => l.startsWith(series + ' '));
        return line ? Number(line.slice(series.length + 1)) : 0;
      };
      return { text, value };
    };
    const before = await scrape();
    const hash = newHash();
    const body = nxLikeBody(4000);
    await put(hash, body, TOKENS.pr7);
    await (await get(hash, TOKENS.pr7)).arrayBuffer();
    await (await get(newHash(), TOKENS.rw)).arrayBuffer();
    await (await put(newHash(), Buffer.from('not a tarball'))).arrayBuffer();
    await new Promise((r) => setTimeout(r, 50));
    const after = await scrape();
    const delta = (series: string) => after.value(series) - before.value(series);
    expect(delta('buildonce_cache_requests_total{method="PUT",status="200",namespace_kind="untrusted"}')).toBe(1);
    expect(delta('buildonce_cache_requests_total{method="GET",status="200",namespace_kind="untrusted"}')).toBe(1);
    expect(delta('buildonce_cache_requests_total{method="GET",status="404",namespace_kind="trusted"}')).toBe(1);
    expect(delta('buildonce_cache_requests_total{method="PUT",status="400",namespace_kind="trusted"}')).toBe(1);
    expect(delta('buildonce_cache_lookups_total{result="hit",namespace_kind="untrusted"}')).toBe(1);
    expect(delta('buildonce_cache_lookups_total{result="miss",namespace_kind="trusted"}')).toBe(1);
    expect(delta('buildonce_cache_rejected_bodies_total{reason="not-gzip"}')).toBe(1);
    expect(delta('buildonce_cache_received_bytes_total')).toBe(body.length);
    expect(delta('buildonce_cache_sent_bytes_total')).toBe(body.length);
    for (const t of Object.values(TOKENS)) expect(after.text).not.toContain(t);
    expect(after.text).not.toContain(hash);
    expect(after.text).not.toContain('pr-7');
  });

  it('access logs are JSON lines with method, hash, status, bytes, ms, namespace, and never a token', async () => {
    const hash = newHash();
    const body = nxLikeBody(5000);
    await put(hash, body, TOKENS.pr7);
    await (await get(hash, TOKENS.pr7)).arrayBuffer();
    await new Promise((r) => setTimeout(r, 50));
    const recs = logs.records().filter((r) => r.msg === 'cache request' && r.hash === hash);
    expect(recs).toHaveLength(2);
    expect(recs[0]).toMatchObject({ method: 'PUT', hash, status: 200, bytes: body.length, namespace: 'pr-7', outcome: 'stored' });
    expect(recs[1]).toMatchObject({ method: 'GET', hash, status: 200, bytes: body.length, namespace: 'pr-7', outcome: 'hit' });
    for (const r of recs) expect(typeof r.ms).toBe('number');
    const all = logs.lines.join('\n');
    for (const t of [...Object.values(TOKENS), 'not-a-token', 'nope']) expect(all).not.toContain(t);
  });
});

// The S3 multipart upload path, independent of the HTTP layer: a body streamed in many small chunks.
describe('S3CacheBackend.writeBlob', () => {
  let moto: MotoServer;
  let restoreEnv: () => void = () => undefined;
  beforeAll(async () => {
    moto = await startMoto();
    restoreEnv = useEnv(moto.env);
  });
  afterAll(async () => {
    await moto?.stop();
    restoreEnv();
  });

  it('streams an unknown-length body as multipart and reads it back verified', async () => {
    const client = createS3Client();
    await client.send(new CreateBucketCommand({ Bucket: 'mp-test' }));
    const be = new S3CacheBackend({ bucket: 'mp-test', prefix: '', maxBytes: 1 << 30, spoolDir: tmpdir(), client });
    const body = nxLikeBody(11 * 1024 * 1024);
    const chunks: Buffer[] = [];
    for (let i = 0; i < body.length; i += 65536) chunks.push(body.subarray(i, i + 65536));
    await be.writeBlob('x/blob.tgz', Readable.from(chunks));
    const read = await be.readVerified('x/blob.tgz', { size: body.length, sha256: sha256Hex(body) });
    expect(read.status).toBe('ok');
    const wrong = await be.readVerified('x/blob.tgz', { size: body.length, sha256: '0'.repeat(64) });
    expect(wrong.status).toBe('corrupt');
    expect(await be.readVerified('x/none.tgz', { size: 1, sha256: '0'.repeat(64) })).toEqual({ status: 'missing' });
    client.destroy();
  });

  it('an upload over the replica upload-buffer budget waits with its body unread, then completes', async () => {
    const client = createS3Client();
    await client.send(new CreateBucketCommand({ Bucket: 'budget-test' }));
    const size = 6 * 1024 * 1024;
    const each = uploadBufferBytes(size, 5 * 1024 * 1024);
    // room for one upload of this size, not two
    const be = new S3CacheBackend({ bucket: 'budget-test', prefix: '', maxBytes: 1 << 30, spoolDir: tmpdir(), client, uploadBufferBytes: each + each / 2 });
    const first = new PassThrough();
    const a = be.writeBlob('x/a.tgz', first, size);
    first.write(randomBytes(1024 * 1024));
    await new Promise((r) => setTimeout(r, 100));
    expect(be.uploadBufferInUse).toBe(Math.ceil(each / 1024) * 1024);
    let pulled = 0;
    const secondBody = randomBytes(size);
    const second = new Readable({
      read() {
        pulled++;
        this.push(secondBody);
        this.push(null);
      },
    });
    const b = be.writeBlob('x/b.tgz', second, size);
    await new Promise((r) => setTimeout(r, 300));
    expect(pulled).toBe(0); // waiting for room: the body is not read (TCP holds the client back)
    first.end(randomBytes(size - 1024 * 1024));
    await a;
    await b;
    expect(pulled).toBeGreaterThan(0);
    expect(be.uploadBufferInUse).toBe(0);
    expect((await be.readVerified('x/b.tgz', { size, sha256: sha256Hex(secondBody) })).status).toBe('ok');
    client.destroy();
  });
});
