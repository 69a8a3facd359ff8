import pino from 'pino';
import { loadConfig, type ServerConfig } from './config';
import { ConfigError } from './errors';
import { startServer, type RunningServer } from './start';
import { StoreAccessError } from '@buildonce/store';

/** CLI entry: reads the environment, starts, and shuts down gracefully on SIGTERM / SIGINT. */
async function main(): Promise<void> {
  const logger = pino({ base: { service: 'buildonce-cache' } });
  let config: ServerConfig;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      logger.fatal({ err: e.message }, 'invalid configuration');
      process.exit(2);
    }
    throw e;
  }
  let server: RunningServer;
  try {
    server = await startServer(config, logger);
  } catch (e) {
    logger.fatal({ err: (e as Error).message }, e instanceof StoreAccessError ? 'store unusable' : 'could not start');
    process.exit(1);
  }
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close().then(
      () => {
        logger.info('stopped');
        logger.flush?.();
        process.exit(0);
      },
      (e: Error) => {
        logger.error({ err: e.message }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

void main();
