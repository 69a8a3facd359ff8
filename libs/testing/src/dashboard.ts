import type { BrowserContext, Page } from 'playwright-core';
import { runUiCommand, type UiServer } from '@buildonce/ui';
import { launchDashboardBrowser } from './browser';

/**
 * The served dashboard with a browser to read it (import `@buildonce/testing/src/dashboard`; kept out of the
 * package index, like ./browser, so tests that need no browser never load playwright-core).
 */

/** A `buildonce ui` server on a free port and the browser context its pages open in. */
export interface ServedDashboard {
  server: UiServer;
  context: BrowserContext;
  /**
   * Opens a path of the server (resolved against its URL) in a new page of the context.
   * @throws Error naming the path and the status when the answer is not 200
   */
  open(path: string): Promise<Page>;
  /** closes the browser, then the server */
  close(): Promise<void>;
}

/**
 * Starts `buildonce ui` for a workspace through the real command (loopback, any free port, log discarded)
 * and launches the dashboard browser ({@link launchDashboardBrowser}) to read it.
 * @param processEnv the command's environment: the store (BUILDONCE_STORE, AWS settings) and BUILDONCE_UI_TOKEN come from it
 * @throws Error when the command does not serve, or the browser does not launch (the server is closed again)
 */
export async function serveDashboard(workspaceRoot: string, processEnv: NodeJS.ProcessEnv): Promise<ServedDashboard> {
  const r = await runUiCommand({ workspaceRoot, port: 0, log: () => undefined, processEnv });
  if (!('server' in r)) throw new Error('expected a server');
  const server = r.server;
  const dashboard = await launchDashboardBrowser().catch(async (e: unknown) => {
    await server.close();
    throw e;
  });
  return {
    server,
    context: dashboard.context,
    open: async (path) => {
      const page = await dashboard.context.newPage();
      const res = await page.goto(new URL(path, server.url).href);
      if (res?.status() !== 200) throw new Error(`${path}: expected status 200, got ${res?.status() ?? 'no response'}`);
      return page;
    },
    close: async () => {
      await dashboard.close();
      await server.close();
    },
  };
}
