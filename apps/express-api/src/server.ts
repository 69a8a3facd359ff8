import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Logger } from 'pino';

/** Default time (ms) in-flight requests get to finish after SIGTERM before connections are cut. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export interface RunningServer {
  server: Server;
  /** the bound TCP port (useful with port 0) */
  port: number;
  /**
   * Graceful stop: stops accepting connections, closes idle keep-alive connections, waits for
   * in-flight requests up to `graceMs`, then cuts what is left. Resolves when the server is closed.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Parses a non-negative decimal integer from the environment. Unset/empty → `fallback`.
 * @throws Error naming the variable and the bad value
 */
export function parseIntEnv(name: string, raw: string | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,15}$/.test(raw) || Number(raw) > max) throw new Error(`${name} must be an integer between 0 and ${max}, got "${raw}"`);
  return Number(raw);
}

/** `PORT` (0–65535, default 3000). @throws Error naming the bad value */
export function parsePort(raw: string | undefined, fallback = 3000): number {
  return parseIntEnv('PORT', raw, fallback, 65535);
}

/**
 * Starts the HTTP server on `host:port` (port 0 = any free port).
 * @throws the listen error (EADDRINUSE, EACCES)
 */
export async function startServer(app: Express, opts: { port: number; host?: string; logger: Logger }): Promise<RunningServer> {
  const server = createServer(app);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    close(graceMs = DEFAULT_SHUTDOWN_GRACE_MS) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          opts.logger.warn({ graceMs }, 'grace period over, closing remaining connections');
          server.closeAllConnections();
        }, graceMs);
        timer.unref();
        // keep-alive sockets whose request finishes during the grace period become idle: close them too
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        sweep.unref();
        server.on('request', (_req, res: ServerResponse) => res.setHeader('connection', 'close'));
        server.close(() => {
          clearTimeout(timer);
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
