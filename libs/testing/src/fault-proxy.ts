import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * What the proxy does to one request:
 * - `500` / `503`: answers `500 InternalError` / `503 SlowDown` (S3 REST error XML) without forwarding;
 * - `reset`: destroys the client connection without forwarding (the SDK sees ECONNRESET / socket hang up);
 * - `lost`: forwards the request, lets the upstream apply it and answer, then destroys the client
 *   connection instead of relaying the answer ("applied but response lost");
 * - `bad-digest`: answers `400 BadDigest` without forwarding, as S3 does when a body does not match its
 *   `x-amz-checksum-sha256` (bytes damaged in transit; moto does not check part checksums itself).
 * - `403` / `throttle`: answers `403 AccessDenied` / `400 Throttling` without forwarding, as XML for
 *   REST-XML requests and as an AWS JSON error (`__type`, `x-amzn-query-error`) for JSON-protocol ones.
 * - `501`: answers `501 NotImplemented` without forwarding, as S3 answers a conditional CopyObject on a bucket
 *   whose policy enforces conditional writes.
 * `bad-digest`, `403`, `throttle` and `501` are not among the default random kinds ({@link FAULT_KINDS}); name them in
 * `kinds` or `failNext`.
 */
export type FaultKind = '500' | '503' | 'reset' | 'lost' | 'bad-digest' | '403' | 'throttle' | '501';
/** the kinds random faults draw from by default (transient faults a client retries or survives) */
export const FAULT_KINDS: readonly FaultKind[] = ['500', '503', 'reset', 'lost'];

/** The parts of a request a fault rule looks at. */
export interface ProxiedRequest {
  method: string;
  /** path + query, e.g. `/bucket/key?uploads` */
  url: string;
  headers: IncomingMessage['headers'];
}

export interface FaultProxyOptions {
  /** upstream base URL, e.g. moto's `http://127.0.0.1:<port>` */
  target: string;
  /** fraction (0..1) of eligible requests that get a random fault (default 0) */
  rate?: number;
  /** which fault kinds random faults draw from (default all four) */
  kinds?: readonly FaultKind[];
  /** only requests this returns true for are eligible for random faults (default all) */
  eligible?: (r: ProxiedRequest) => boolean;
  /** PRNG seed (default 1): the same seed and request order give the same faults */
  seed?: number;
  /** called for every request as it arrives, with the fault it gets (tests count requests per kind) */
  onRequest?: (r: ProxiedRequest, fault: FaultKind | undefined) => void;
}

/** Counters of what the proxy saw and did. */
export interface FaultStats {
  requests: number;
  faults: Record<FaultKind, number>;
  /** total faults injected */
  injected: number;
}

/** A running fault-injecting HTTP proxy (see {@link startFaultProxy}). */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: use as AWS_ENDPOINT_URL instead of moto's */
  endpoint: string;
  port: number;
  readonly stats: FaultStats;
  /** changes the random fault fraction (0..1) from now on */
  setRate(rate: number): void;
  /** changes the random fault settings from now on (unset fields keep their value) */
  setFaults(f: Pick<FaultProxyOptions, 'rate' | 'kinds' | 'eligible'>): void;
  /**
   * Queues a fault for the next request matching `match` (checked before random faults; each queued
   * fault fires once, in order of queueing). Resolves the returned promise once it has fired.
   */
  failNext(kind: FaultKind, match?: (r: ProxiedRequest) => boolean): Promise<ProxiedRequest>;
  /** stops listening and closes every open connection */
  stop(): Promise<void>;
}

/** mulberry32: a small seeded PRNG (uniform in [0, 1)). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function s3Error(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}

/**
 * Starts a fault-injecting HTTP/1.1 proxy on a free loopback port in front of `target` (a test helper
 * for the fault suite; plain HTTP, as moto_server speaks it). Requests are forwarded unchanged
 * (method, path, headers, streamed body); faults are injected per request, randomly at `rate` among
 * `kinds` or deterministically with {@link FaultProxy.failNext}. Bodies of refused requests are
 * drained first, so clients never see EPIPE for a fault that answers.
 */
export async function startFaultProxy(o: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(o.target);
  const random = prng(o.seed ?? 1);
  let kinds = o.kinds ?? FAULT_KINDS;
  let rate = o.rate ?? 0;
  let eligible = o.eligible;
  const stats: FaultStats = { requests: 0, faults: { '500': 0, '503': 0, reset: 0, lost: 0, 'bad-digest': 0, '403': 0, throttle: 0, '501': 0 }, injected: 0 };
  const queued: { kind: FaultKind; match: (r: ProxiedRequest) => boolean; fired: (r: ProxiedRequest) => void }[] = [];
  const sockets = new Set<Socket>();

  const pick = (r: ProxiedRequest): FaultKind | undefined => {
    const i = queued.findIndex((q) => q.match(r));
    if (i >= 0) {
      const [q] = queued.splice(i, 1);
      q!.fired(r);
      return q!.kind;
    }
    if (rate > 0 && (eligible?.(r) ?? true) && random() < rate) return kinds[Math.floor(random() * kinds.length)];
    return undefined;
  };

  const forward = (req: IncomingMessage, onResponse: (up: IncomingMessage) => void, onError: (e: Error) => void): void => {
    const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, onResponse);
    up.on('error', onError);
    req.pipe(up);
  };

  const server: Server = createServer((req, res) => {
    stats.requests++;
    const info: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    const fault = pick(info);
    o.onRequest?.(info, fault);
    if (fault) {
      stats.faults[fault]++;
      stats.injected++;
    }
    const fail = () => {
      res.destroy();
      req.socket.destroy();
    };
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === '403' || fault === 'throttle') {
      const [status, code, message] =
        fault === '403' ? [403, 'AccessDenied', 'User is not authorized to perform this action'] : [400, 'Throttling', 'Rate exceeded'];
      const json = String(req.headers['content-type'] ?? '').includes('json');
      req.resume();
      req.on('end', () => {
        if (!json) return s3Error(res, status, code, message);
        const body = JSON.stringify({ __type: fault === '403' ? 'AccessDeniedException' : 'ThrottlingException', message });
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.0',
          'x-amzn-query-error': `${code};Sender`,
          'content-length': Buffer.byteLength(body),
          connection: 'close',
        });
        res.end(body);
      });
      return;
    }
    if (fault === '500' || fault === '503' || fault === 'bad-digest' || fault === '501') {
      req.resume();
      req.on('end', () =>
        fault === '501'
          ? s3Error(res, 501, 'NotImplemented', 'A header you provided implies functionality that is not implemented')
          : fault === '500'
            ? s3Error(res, 500, 'InternalError', 'We encountered an internal error. Please try again.')
            : fault === '503'
              ? s3Error(res, 503, 'SlowDown', 'Please reduce your request rate.')
              : s3Error(res, 400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.'),
      );
      return;
    }
    if (fault === 'lost') {
      forward(
        req,
        (up) => {
          up.resume();
          up.on('end', () => req.socket.destroy());
          up.on('error', () => req.socket.destroy());
        },
        fail,
      );
      return;
    }
    forward(
      req,
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.rawHeaders);
        up.pipe(res);
        up.on('error', fail);
      },
      fail,
    );
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = addr && typeof addr === 'object' ? addr.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stats,
    setRate(r: number) {
      rate = r;
    },
    setFaults(f) {
      if (f.rate !== undefined) rate = f.rate;
      if (f.kinds) kinds = f.kinds;
      if ('eligible' in f) eligible = f.eligible;
    },
    failNext(kind, match = () => true) {
      return new Promise((fired) => queued.push({ kind, match, fired }));
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Matches S3 requests by method and a substring of the path (e.g. `('PUT', '/history/')`). */
export function s3Request(method: string, pathIncludes: string): (r: ProxiedRequest) => boolean {
  return (r) => r.method === method && decodeURIComponent(r.url).includes(pathIncludes);
}
