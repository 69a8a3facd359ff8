import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ManifestError, parseManifest, sha256Bytes } from '@buildonce/artifact';
import type { ReleaseInfo } from './release-info';

/** Largest request body accepted by the JSON and raw endpoints (bytes). */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface AppOptions {
  release: ReleaseInfo;
  logger: Logger;
  /** clock for `startedAt` / uptime (ms since epoch); tests inject it */
  now?: () => number;
}

/** One JSON log line per finished request: method, path, status, duration (ms), bytes sent. */
function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      logger.info(
        {
          method: req.method,
          path: req.path,
          status: res.statusCode,
          durationMs: Math.round(ms * 100) / 100,
          bytes: Number(res.getHeader('content-length') ?? 0),
        },
        'request',
      );
    });
    next();
  };
}

/**
 * The API (Express 5):
 *  - `GET /health` → 200 `{ status: "ok", version, commit }` (version from the artifact at run time)
 *  - `GET /v1/release` → the release identity and uptime
 *  - `POST /v1/manifests/validate` (JSON body) → 200 `{ valid: true, manifest }` or 422 `{ valid: false, error }`
 *    using the workspace's manifest schema (`@buildonce/artifact`)
 *  - `POST /v1/sha256` (any body, ≤ 10 MB) → `{ size, sha256, sha256Base64 }` of the raw bytes
 * Errors are JSON: 400 for malformed bodies, 404 for unknown routes, 413 for oversized bodies, 500 otherwise.
 */
export function createApp(opts: AppOptions): Express {
  const { release, logger } = opts;
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestLog(logger));

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', version: release.version, commit: release.commit });
  });

  app.get('/v1/release', (_req, res) => {
    res.json({ ...release, startedAt: new Date(startedAt).toISOString(), uptimeMs: now() - startedAt });
  });

  app.post('/v1/manifests/validate', express.json({ limit: MAX_BODY_BYTES }), (req, res) => {
    if (req.body === undefined) {
      res.status(415).json({ error: 'send the manifest as Content-Type: application/json' });
      return;
    }
    try {
      res.json({ valid: true, manifest: parseManifest(req.body, 'request body') });
    } catch (e) {
      if (!(e instanceof ManifestError)) throw e;
      res.status(422).json({ valid: false, error: e.message });
    }
  });

  app.post('/v1/sha256', express.raw({ type: () => true, limit: MAX_BODY_BYTES }), (req, res) => {
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const d = sha256Bytes(body);
    res.json({ size: d.size, sha256: d.hex, sha256Base64: d.base64 });
  });

  app.use((req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
  });

  const onError: ErrorRequestHandler = (err: { status?: number; statusCode?: number; type?: string; message?: string }, req, res, _next) => {
    const status = err.status ?? err.statusCode ?? 500;
    if (status >= 500) logger.error({ err, method: req.method, path: req.path }, 'request failed');
    const message = status === 413 ? `body larger than ${MAX_BODY_BYTES} bytes` : status < 500 ? (err.message ?? 'bad request') : 'internal error';
    res.status(status).json({ error: message });
  };
  app.use(onError);
  return app;
}
