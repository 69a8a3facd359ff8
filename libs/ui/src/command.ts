import { ConfigError } from '@buildonce/errors';
import { openWorkspaceStore } from '@buildonce/commands';
import { readOnlyStore } from './readonly-store';
import { GitFacts, type DashboardSource } from './model';
import { isLoopback, startUiServer, type UiServer } from './server';
import { writeStaticSite, type StaticSiteResult } from './static';

/** Default port of `buildonce ui`. */
export const DEFAULT_UI_PORT = 4380;

export interface UiCommand {
  workspaceRoot: string;
  /** `--store` (resolveStoreLocation: --store → BUILDONCE_STORE → buildonce.json → embedded file store) */
  store?: string;
  /** `--static <dir>`: write the pages there instead of serving */
  staticDir?: string;
  host?: string;
  port?: number;
  processEnv?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/**
 * Opens the workspace's store the way every command does and wraps it read-only: the dashboard never
 * holds a handle that can write. Git facts come from the workspace's history.
 * @throws ConfigError (buildonce.json, store URL)
 */
export async function openDashboardSource(o: { workspaceRoot: string; store?: string; processEnv?: NodeJS.ProcessEnv }): Promise<DashboardSource> {
  const { store, config, aws } = await openWorkspaceStore({ workspaceRoot: o.workspaceRoot, store: o.store, env: o.processEnv });
  return { store: readOnlyStore(store), config, aws, workspaceRoot: o.workspaceRoot, git: new GitFacts(o.workspaceRoot) };
}

/**
 * `buildonce ui`: serves the dashboard on `host:port` (default 127.0.0.1:4380), or with `staticDir`
 * writes it as a static site. A non-loopback host needs BUILDONCE_UI_TOKEN (said at start).
 * @returns the running server, or what the export wrote
 * @throws ConfigError (bad port, host without token, store URL), the listen error
 */
export async function runUiCommand(c: UiCommand): Promise<{ server: UiServer } | { site: StaticSiteResult }> {
  const env = c.processEnv ?? process.env;
  const source = await openDashboardSource(c);
  if (c.staticDir !== undefined) {
    if (!c.staticDir.trim()) throw new ConfigError('--static needs a directory: buildonce ui --static <dir>');
    return { site: await writeStaticSite(source, c.staticDir, { log: c.log }) };
  }
  const port = c.port ?? DEFAULT_UI_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port must be 0..65535, got ${port}`);
  const host = c.host ?? '127.0.0.1';
  const token = env.BUILDONCE_UI_TOKEN || undefined;
  const server = await startUiServer({ source, host, port, token, log: c.log });
  c.log(`buildonce ui: ${source.store.location.url} (read-only) at ${server.url}`);
  if (!isLoopback(host))
    c.log(`buildonce ui: bound to ${host}: every request needs BUILDONCE_UI_TOKEN (Authorization: Bearer <token>, or sign in at ${server.url}login)`);
  else if (token) c.log('buildonce ui: BUILDONCE_UI_TOKEN is set: requests need it (bearer, or sign in at /login)');
  return { server };
}
