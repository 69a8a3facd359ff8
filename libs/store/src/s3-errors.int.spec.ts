import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sha256Bytes } from '@buildonce/artifact';
import { s3Request } from '@buildonce/testing';
import { useFaultyMotoBucket } from '@buildonce/testing/src/moto-hooks';
import { StoreAccessError } from './errors';
import { verifyObject } from './artifacts';
import { openStore } from './open';
import { parseStoreUrl } from './url';
import type { BlobStore } from './blob';

// S3 errors reach users as one-line store errors naming the bucket and the fix, and
// throttling is retried with backoff (retry settings from @buildonce/aws).
const bucket = 's3-errors';
const s3 = useFaultyMotoBucket(bucket);
let store: BlobStore;

beforeAll(() => {
  store = openStore(parseStoreUrl(`s3://${bucket}/e`));
});
afterEach(() => s3().proxy.setFaults({ rate: 0, eligible: undefined }));

/**
 * A store whose S3 endpoint is an HTTP server answering every request with `status`, `contentType` and
 * `body` (a captive portal, a misconfigured proxy). Close `server` when done.
 */
async function oddEndpoint(status: number, contentType: string, body: string): Promise<{ server: Server; port: number; odd: BlobStore }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': contentType });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const odd = openStore(parseStoreUrl(`s3://${bucket}/e`), {
    env: { ...process.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` },
    clientConfig: { endpoint: `http://127.0.0.1:${port}` },
  });
  return { server, port, odd };
}

describe('S3 error mapping through a fault proxy', () => {
  it('retries throttling (503 SlowDown) with backoff and succeeds', async () => {
    const only = s3Request('PUT', '/throttled/');
    const fired = [s3().proxy.failNext('503', only), s3().proxy.failNext('503', only), s3().proxy.failNext('503', only)];
    expect(await store.putBytesIfAbsent('throttled/a.json', Buffer.from('{}'))).toBe('created');
    await Promise.all(fired);
    expect((await store.getBytes('throttled/a.json'))!.bytes.toString()).toBe('{}');
  });

  it.each([
    ['503', /^S3 is throttling requests to bucket "s3-errors" \(SlowDown\).*: retry later or lower the request rate/],
    ['500', /^S3 request put .* on bucket "s3-errors" failed with InternalError .*: retry; if it persists check the S3 service health/],
    ['reset', /^cannot reach S3 for bucket "s3-errors" .*: check the network and AWS_ENDPOINT_URL/],
  ] as const)('persistent %s faults end in one StoreAccessError line naming the bucket and the fix', async (kind, message) => {
    s3().proxy.setFaults({ rate: 1, kinds: [kind], eligible: s3Request('PUT', '/persistent/') });
    const err = await store.putBytesIfAbsent(`persistent/${kind}.json`, Buffer.from('{}')).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(StoreAccessError);
    expect(err!.message.split('\n')).toHaveLength(1);
    expect(err!.message).toMatch(message);
  });

  it('an endpoint answering 200 + HTML to every request is an error naming the endpoint, never empty data', async () => {
    const { server, port, odd } = await oddEndpoint(200, 'text/html', '<!doctype html><html><body>Welcome to the network: please sign in</body></html>');
    try {
      const list = async () => {
        for await (const o of odd.list('releases/')) void o;
      };
      for (const [what, op] of [
        ['list', list],
        ['get', () => odd.getBytes('releases/x/prod/current.json')],
        ['stream', () => odd.getStream('x.json')],
        ['head', () => odd.head('artifacts/x/1/manifest.json')],
      ] as const) {
        const err = await (op as () => Promise<unknown>)().then(
          () => undefined,
          (e: Error) => e,
        );
        expect(err, what).toBeInstanceOf(StoreAccessError);
        expect(err!.message, what).toContain(`127.0.0.1:${port}`);
        expect(err!.message, what).toMatch(/not an S3 response|failed with/);
        expect(err!.message.split('\n')).toHaveLength(1);
      }
    } finally {
      server.close();
    }
  });

  it('an error body the SDK cannot parse (UnknownError) is mapped too', async () => {
    const { server, odd } = await oddEndpoint(418, 'text/plain', 'teapot');
    try {
      const err = await odd.getBytes('x.json').then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(StoreAccessError);
      expect(err!.message).toMatch(/^S3 request get .* on bucket "s3-errors" failed with HTTP 418/);
      expect(err!.message.split('\n')).toHaveLength(1);
    } finally {
      server.close();
    }
  });

  it('a multipart upload whose completion response is lost is not an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's3-mpu-'));
    try {
      const bytes = Buffer.alloc(9 * 1024 * 1024, 7);
      writeFileSync(join(dir, 'big.bin'), bytes);
      const fired = s3().proxy.failNext('lost', (r) => r.method === 'POST' && r.url.includes('uploadId='));
      const r = await store.putFileIfAbsent('mpu/big.bin', join(dir, 'big.bin'), { sha256Hex: sha256Bytes(bytes).hex, size: bytes.length });
      await fired;
      expect(['created', 'exists']).toContain(r);
      expect((await store.head('mpu/big.bin'))!.size).toBe(bytes.length);
      // publish verifies a multipart object by its composite checksum against the local file (no download)
      const expected = { size: bytes.length, sha256: sha256Bytes(bytes).hex };
      const composite = { ...(await store.head('mpu/big.bin'))!.compositeSha256!, partSize: 8 * 1024 * 1024 };
      expect(await verifyObject(store, 'mpu/big.bin', expected, join(dir, 'big.bin'))).toEqual({ ok: true, method: 'composite', composite });
      expect(await verifyObject(store, 'mpu/big.bin', expected)).toEqual({ ok: true, method: 'rehash', composite });
      writeFileSync(join(dir, 'other.bin'), Buffer.alloc(bytes.length, 8));
      expect((await verifyObject(store, 'mpu/big.bin', expected, join(dir, 'other.bin'))).ok).toBe(true); // falls back to rehashing the stored bytes
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(readdirSync(tmpdir()).length).toBeGreaterThan(0);
  });
});
