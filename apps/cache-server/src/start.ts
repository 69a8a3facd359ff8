import pino, { type Logger } from 'pino';
import { Authenticator } from './auth';
import type { ServerConfig } from './config';
import { CacheMetrics } from './metrics';
import { OidcVerifier } from './oidc';
import { buildServer, type CacheServer } from './server';
import { CacheStore } from './storage/cache-store';
import { openBackend } from './storage/open';
import { Scrubber } from './storage/scrubber';
import { SharedLru, type SharedLruStore } from './storage/shared-lru';

/** A started server: its address and a graceful stop. */
export interface RunningServer {
  app: CacheServer;
  /** `http://host:port` actually bound (port 0 resolves to the real port) */
  url: string;
  port: number;
  store: CacheStore;
  metrics: CacheMetrics;
  /** the LRU cap shared by replicas (S3 store with `maxStoreBytes`) */
  shared?: SharedLru;
  /** the background scrubber, when `scrubMibPerSecond` > 0 */
  scrubber?: Scrubber;
  /** Stops accepting connections, waits for in-flight requests (up to the shutdown timeout, ms), closes. */
  close(): Promise<void>;
}

/**
 * Starts the cache server from a configuration: opens and checks the store (fails fast), then listens.
 * @param opts.env environment for the S3 client (AWS_* variables); default `process.env`
 * @param opts.scrubPauseMs pause between scrubber passes, ms (default 60 000)
 * @throws StoreAccessError when the store is unusable; listen errors (EADDRINUSE) as thrown by node
 */
export async function startServer(
  config: ServerConfig,
  logger: Logger = pino({ base: { service: 'buildonce-cache' } }),
  opts: { env?: NodeJS.ProcessEnv; scrubPauseMs?: number } = {},
): Promise<RunningServer> {
  const backend = await openBackend(config.store, {
    maxBytes: config.maxBytes,
    spoolDir: config.spoolDir,
    env: opts.env,
    uploadBufferBytes: config.uploadBufferBytes,
  });
  await backend.check();
  let metrics: CacheMetrics | undefined;
  const onEvict = ({ namespace, hash, size }: { namespace: string; hash: string; size: number }) => {
    metrics?.evictions.inc();
    metrics?.evictedBytes.inc(size);
    logger.info({ hash, namespace, bytes: size }, 'evicted least-recently-used entry');
  };
  // S3 with a cap: recency and eviction shared by every replica through the bucket (one evictor under a lease)
  const shared =
    config.maxStoreBytes !== undefined && config.store.kind === 's3'
      ? new SharedLru(backend as unknown as SharedLruStore, {
          maxStoreBytes: config.maxStoreBytes,
          cycleMs: config.lruCycleMs,
          onEvict,
          onError: (e) => logger.error({ err: e.message }, 'shared LRU cycle failed; retried next cycle'),
        })
      : undefined;
  const store = new CacheStore(backend, {
    maxBytes: config.maxBytes,
    maxStoreBytes: shared ? undefined : config.maxStoreBytes,
    shared,
    onCorrupt: ({ namespace, hash, reason }) => logger.error({ hash, namespace, reason }, 'stored entry failed verification; served as a miss and quarantined'),
    onEvict,
  });
  await store.init();
  const scrubber = config.scrubMibPerSecond
    ? new Scrubber(store, {
        mibPerSecond: config.scrubMibPerSecond,
        pauseMs: opts.scrubPauseMs,
        onError: (e) => logger.error({ err: e.message }, 'scrub pass stopped by a storage error; retried after the pause'),
      })
    : undefined;
  metrics = new CacheMetrics(
    () => store.storeBytes ?? shared?.lastSeenBytes,
    scrubber && (() => ({ progress: scrubber.progress, rateBytesPerSecond: scrubber.rateBytesPerSecond })),
  );
  const auth = new Authenticator(config.tokens, config.oidc ? new OidcVerifier(config.oidc) : undefined);
  const app = buildServer({ auth, metrics, store, maxBytes: config.maxBytes, logger });
  await app.listen({ port: config.port, host: config.host });
  const addr = app.server.address();
  const port = addr && typeof addr === 'object' ? addr.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  logger.info(
    {
      port,
      host: config.host,
      store: backend.url,
      maxBytes: config.maxBytes,
      ...(config.maxStoreBytes ? { maxStoreBytes: config.maxStoreBytes, storeBytes: store.storeBytes } : {}),
      tokens: config.tokens.size,
      scrubMibPerSecond: config.scrubMibPerSecond ?? 0,
      ...(config.oidc ? { oidc: { issuer: config.oidc.issuer, audience: config.oidc.audience, repositories: config.oidc.repositories } } : {}),
    },
    'buildonce cache server listening',
  );
  scrubber?.start();
  shared?.start();
  let closing: Promise<void> | undefined;
  return {
    app,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    store,
    metrics,
    scrubber,
    shared,
    close() {
      closing ??= (async () => {
        await scrubber?.stop();
        await shared?.stop();
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timeout: closing remaining connections');
            app.server.closeAllConnections();
            resolve();
          }, config.shutdownTimeoutMs);
          timer.unref();
        });
        await Promise.race([app.close(), timeout]);
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
