import type { Readable } from 'node:stream';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Authenticator } from './auth';
import { CacheMetrics, namespaceKind } from './metrics';

import { isValidHash, type CacheStore } from './storage/cache-store';
import { readNamespaces, writeNamespace, type Principal } from './tokens';
import { StoreAccessError } from '@buildonce/store';

/** Fields of the access log line written for every cache request (never the token). */
interface AccessLog {
  hash?: string;
  namespace?: string;
  tokenIndex?: number;
  /** OIDC identity (`oidc:<repository> <event> <ref>`) */
  identity?: string;
  /** body bytes sent (GET) or received (PUT) */
  bytes: number;
  /** what happened, e.g. `hit`, `miss`, `stored`, `exists`, `unsafe-entry` */
  outcome: string;
  reason?: string;
  /** metrics: the GET lookup result or the PUT rejection reason */
  lookup?: 'hit' | 'miss' | 'corrupt';
  rejected?: string;
  /** body bytes of a stored PUT */
  storedBytes?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    accessLog: AccessLog | null;
    onSent: (() => void) | null;
  }
}

export interface ServerOptions {
  auth: Authenticator;
  /** default: a fresh CacheMetrics */
  metrics?: CacheMetrics;
  store: CacheStore;
  /** largest accepted PUT body, bytes */
  maxBytes: number;
  logger: Logger;
  /** total time allowed to receive one request, ms (default 30 min, enough for 2 GiB on a slow link) */
  requestTimeoutMs?: number;
}

const TEXT = 'text/plain; charset=utf-8';

/**
 * Builds the HTTP server (fastify) implementing the Nx remote cache protocol (Nx 20.8+, OpenAPI
 * "Nx custom remote cache"; docs/architecture.md "Remote cache protocol"):
 * - `GET /v1/cache/{hash}`: 200 gzip tar body | 404 miss | 400 bad hash | 401 text/plain | 403
 * - `PUT /v1/cache/{hash}` (Content-Length required): 200 stored | 400 bad hash, missing Content-Length or a body
 *   that is not a safe gzip tar | 401 | 403 read-only token | 409 entry exists (never overwritten) | 413 too large |
 *   503 storage unavailable
 * - `GET /health`: 200 `{"status":"ok"}`
 * - `GET /metrics`: Prometheus text exposition (no tokens, identities or hashes in labels); unauthenticated
 * Every cache request gets one access-log line, also when the client disconnects first (`aborted: true`).
 * Bodies are never buffered: PUTs stream through validation into storage, GETs stream from storage.
 * Namespaces follow invariant 6: a token's namespace is the only one it writes; untrusted namespaces read
 * themselves then `trusted`; `trusted` reads only itself.
 */
export function buildServer(opts: ServerOptions) {
  const { auth, store, maxBytes, logger } = opts;
  const metrics = opts.metrics ?? new CacheMetrics();
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: maxBytes,
    requestTimeout: opts.requestTimeoutMs ?? 30 * 60_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.decorateRequest('accessLog', null);
  app.decorateRequest('onSent', null);

  // One access-log line (and the metrics) per cache request, written when the response closes: 'close' fires
  // for finished responses and for clients that disconnect first (then once the handler has decided).
  app.addHook('onRequest', async (req, reply) => {
    let closed = false;
    let sent = false;
    let done = false;
    const finish = () => {
      if (done || !req.accessLog) return;
      done = true;
      record(req, reply, !reply.raw.writableFinished);
    };
    reply.raw.once('close', () => {
      closed = true;
      if (reply.raw.writableFinished || sent) finish();
    });
    req.onSent = () => {
      sent = true;
      if (closed) finish();
    };
  });
  app.addHook('onSend', async (req) => {
    req.onSent?.();
  });

  function record(req: FastifyRequest, reply: FastifyReply, aborted: boolean): void {
    const a = req.accessLog!;
    const status = reply.statusCode;
    const kind = namespaceKind(a.namespace);
    metrics.requests.inc({ method: req.method, status: String(status), namespace_kind: kind });
    if (a.lookup) metrics.lookups.inc({ result: a.lookup, namespace_kind: kind });
    if (a.rejected) metrics.rejected.inc({ reason: a.rejected });
    if (a.storedBytes) metrics.bytesIn.inc(a.storedBytes);
    if (req.method === 'GET' && status === 200 && !aborted) metrics.bytesOut.inc(a.bytes);
    logger.info(
      {
        method: req.method,
        hash: a.hash,
        status,
        bytes: a.bytes,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        namespace: a.namespace,
        tokenIndex: a.tokenIndex,
        ...(a.identity ? { identity: a.identity } : {}),
        outcome: a.outcome,
        ...(a.reason ? { reason: a.reason } : {}),
        ...(aborted ? { aborted: true } : {}),
        reqId: req.id,
      },
      'cache request',
    );
  }

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) logger.error({ err, reqId: req.id, method: req.method }, 'unexpected error');
    if (req.accessLog) Object.assign(req.accessLog, { outcome: 'error', reason: err.message });
    return reply
      .code(status)
      .type(TEXT)
      .send(status === 500 ? 'internal error\n' : `${err.message}\n`);
  });

  app.get('/health', async (_req, reply) => reply.code(200).send({ status: 'ok' }));
  app.get('/metrics', async (_req, reply) =>
    reply
      .code(200)
      .type(metrics.registry.contentType)
      .send(await metrics.registry.metrics()),
  );

  app.register(async (api) => {
    // PUT bodies stay unread streams: storage consumes them. No content type is buffered or parsed.
    api.removeAllContentTypeParsers();
    api.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

    api.get('/v1/cache/*', { exposeHeadRoute: false }, async (req, reply) => {
      const log = start(req);
      const principal = await authenticate(req, reply, log);
      if (!principal) return reply;
      const hash = hashParam(req, reply, log);
      if (!hash) return reply;

      let outcome;
      try {
        outcome = await store.get(readNamespaces(principal), hash);
      } catch (e) {
        if (!(e instanceof StoreAccessError)) throw e;
        // A storage outage is answered as a miss: the build runs instead of failing (Nx fails runs on 5xx).
        log.outcome = 'store-error';
        log.reason = e.message;
        logger.error({ hash, namespace: principal.namespace, err: e.message }, 'storage failed on GET; answering miss');
        return reply.code(404).type(TEXT).send('not found\n');
      }
      if (outcome.status === 'miss') {
        log.outcome = outcome.corrupt.length ? 'corrupt' : 'miss';
        log.lookup = outcome.corrupt.length ? 'corrupt' : 'miss';
        if (outcome.corrupt.length) log.reason = outcome.corrupt.map((c) => `${c.namespace}: ${c.reason}`).join('; ');
        return reply.code(404).type(TEXT).send('not found\n');
      }
      log.outcome = outcome.namespace === principal.namespace ? 'hit' : `hit:${outcome.namespace}`;
      log.lookup = 'hit';
      log.bytes = outcome.size;
      return reply
        .code(200)
        .header('content-type', 'application/octet-stream')
        .header('content-length', String(outcome.size))
        .header('x-buildonce-cache-namespace', outcome.namespace)
        .send(outcome.stream);
    });

    api.put('/v1/cache/*', async (req, reply) => {
      const log = start(req);
      const principal = await authenticate(req, closeAfter(reply), log);
      if (!principal) return reply;
      const hash = hashParam(req, reply, log);
      if (!hash) return reply;
      reply.removeHeader('connection');
      const namespace = writeNamespace(principal);
      if (!namespace) {
        log.outcome = 'read-only';
        return reply.code(403).type(TEXT).send('this token is read-only\n');
      }
      const cl = req.headers['content-length'];
      if (cl === undefined || !/^\d+$/.test(cl)) {
        log.outcome = 'no-content-length';
        return closeAfter(reply).code(400).type(TEXT).send('Content-Length is required\n');
      }
      const declared = Number(cl);
      if (declared > maxBytes) {
        log.outcome = 'too-large';
        log.rejected = 'too-large';
        log.reason = `Content-Length ${declared} > ${maxBytes}`;
        return closeAfter(reply).code(413).type(TEXT).send(`entry larger than ${maxBytes} bytes\n`);
      }
      const body = (req.body as Readable | undefined) ?? req.raw;

      let outcome;
      try {
        outcome = await store.put(namespace, hash, body, declared);
      } catch (e) {
        if (!(e instanceof StoreAccessError)) throw e;
        log.outcome = 'store-error';
        log.reason = e.message;
        logger.error({ hash, namespace, err: e.message }, 'storage failed on PUT');
        return closeAfter(reply).code(503).header('retry-after', '5').type(TEXT).send('storage unavailable\n');
      }
      switch (outcome.status) {
        case 'stored':
          log.outcome = 'stored';
          log.bytes = outcome.size;
          log.storedBytes = outcome.size;
          return reply.code(200).type(TEXT).send('stored\n');
        case 'exists':
          log.outcome = 'exists';
          log.bytes = outcome.receivedBytes;
          return reply.code(409).type(TEXT).send('an entry with this hash already exists; entries are never overwritten\n');
        case 'too-large':
          log.outcome = 'too-large';
          log.rejected = 'too-large';
          log.bytes = outcome.receivedBytes;
          return closeAfter(reply).code(413).type(TEXT).send(`entry larger than ${outcome.limitBytes} bytes\n`);
        case 'rejected':
          log.outcome = outcome.kind;
          log.rejected = outcome.kind;
          log.reason = outcome.reason;
          log.bytes = outcome.receivedBytes;
          return closeAfter(reply).code(400).type(TEXT).send(`${outcome.reason}\n`);
        case 'incomplete':
          log.outcome = 'incomplete';
          log.rejected = 'incomplete';
          log.bytes = outcome.receivedBytes;
          return closeAfter(reply).code(400).type(TEXT).send('request body shorter than Content-Length\n');
      }
    });
  });

  function start(req: FastifyRequest): AccessLog {
    const log: AccessLog = { bytes: 0, outcome: 'unknown' };
    req.accessLog = log;
    return log;
  }

  async function authenticate(req: FastifyRequest, reply: FastifyReply, log: AccessLog): Promise<Principal | undefined> {
    const r = await auth.authenticate(req.headers.authorization);
    if (r.ok) {
      log.namespace = r.principal.namespace;
      log.tokenIndex = r.principal.index;
      log.identity = r.principal.identity;
      return r.principal;
    }
    log.outcome = r.status === 401 ? `unauthorized:${r.reason}` : r.reason;
    if (r.detail) log.reason = r.detail;
    if (r.status === 401) reply.header('www-authenticate', 'Bearer realm="buildonce-cache"');
    if (r.status === 503) reply.header('retry-after', '5');
    reply.code(r.status).type(TEXT).send(`${r.message}\n`);
    return undefined;
  }

  function hashParam(req: FastifyRequest, reply: FastifyReply, log: AccessLog): string | undefined {
    const hash = (req.params as Record<string, string | undefined>)['*'] ?? '';
    if (isValidHash(hash)) {
      log.hash = hash;
      return hash;
    }
    log.outcome = 'bad-hash';
    log.hash = hash.slice(0, 140);
    reply.code(400).type(TEXT).send('hash must be 1-128 characters of [0-9a-zA-Z_-]\n');
    return undefined;
  }

  return app;
}

/**
 * Marks the connection to close after this response: used when a PUT is refused before or while reading its
 * body, so an unauthenticated or oversized upload is not drained. (403 and 409 drain instead: Nx treats them as
 * "not stored" and a reset connection would turn them into errors.)
 */
function closeAfter(reply: FastifyReply): FastifyReply {
  return reply.header('connection', 'close');
}

/** The fastify instance built by buildServer. */
export type CacheServer = ReturnType<typeof buildServer>;
