import pino from 'pino';
import { createApp } from './app';
import { loadReleaseInfo } from './release-info';
import { DEFAULT_SHUTDOWN_GRACE_MS, parseIntEnv, parsePort, startServer } from './server';

/**
 * Entry point (`node main.js` in the unpacked tarball). Environment:
 *  - `PORT` (default 3000), `HOST` (default all interfaces)
 *  - `LOG_LEVEL` (pino level, default `info`)
 *  - `SHUTDOWN_GRACE_MS` (default 10000): how long SIGTERM waits for in-flight requests
 * Logs are one JSON object per line on stdout (pino). SIGTERM/SIGINT → graceful stop, exit 0.
 */
async function main(): Promise<void> {
  const logger = pino({ level: process.env.LOG_LEVEL || 'info', base: { pid: process.pid } });
  let release;
  try {
    // __dirname is the real directory of main.js (`<root>/releases/<version>`), not the `current` link
    release = loadReleaseInfo(__dirname);
  } catch (e) {
    logger.fatal({ err: e }, 'cannot read the release identity');
    process.exit(1);
  }
  const log = logger.child({ project: release.project, version: release.version });
  const port = parsePort(process.env.PORT);
  const graceMs = parseIntEnv('SHUTDOWN_GRACE_MS', process.env.SHUTDOWN_GRACE_MS, DEFAULT_SHUTDOWN_GRACE_MS);
  const running = await startServer(createApp({ release, logger: log }), { port, host: process.env.HOST || undefined, logger: log });
  log.info({ port: running.port, commit: release.commit, source: release.source, node: process.version }, 'listening');

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    void running.close(graceMs).then(() => {
      log.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  console.error(JSON.stringify({ level: 60, msg: 'startup failed', err: e instanceof Error ? e.message : String(e) }));
  process.exit(1);
});
