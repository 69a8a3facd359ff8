import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Browser helpers (import `@buildonce/testing/src/browser`; kept out of the package index so tests that
 * need no browser never load playwright-core).
 */

/** Debian's chromium (apt `chromium`, tools/scripts/debian-packages.txt); BUILDONCE_CHROMIUM overrides. */
export const CHROMIUM_PATH = process.env.BUILDONCE_CHROMIUM || '/usr/bin/chromium';

/**
 * Launches one headless Chromium for a test file (playwright-core drives the installed browser through
 * `executablePath`; no browser download). The flags are what this container needs: no sandbox (root),
 * no GPU, nothing that phones home.
 * @throws Error naming the missing binary and the apt package
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`${CHROMIUM_PATH} is missing: apt-get install -y chromium (tools/scripts/debian-packages.txt)`);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 120_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
}

/** A browser with the one context a dashboard spec file uses. */
export interface DashboardBrowser {
  browser: Browser;
  context: BrowserContext;
  /** closes the context, then the browser */
  close(): Promise<void>;
}

/**
 * {@link launchChromium} with one context for the dashboard specs: CSP bypassed on purpose (escaping must hold
 * by itself, not because the policy blocks inline script), a 1280x900 viewport, 60 s timeouts (a loaded
 * 2-core machine).
 */
export async function launchDashboardBrowser(): Promise<DashboardBrowser> {
  const browser = await launchChromium();
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(60_000);
  context.setDefaultNavigationTimeout(60_000);
  return {
    browser,
    context,
    close: async () => {
      await context.close();
      await browser.close();
    },
  };
}

/** One axe-core violation, reduced to what a failing assertion should print. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/**
 * Runs axe-core (WCAG 2.x A/AA rules, labelled controls, keyboard-reachable names) on the page
 * as it is now; evaluated through the DevTools protocol, so the page's own CSP does not block it.
 * @returns the violations (empty: none)
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const source = readFileSync(createRequire(__filename).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(source);
  return page.evaluate(async () => {
    const axe = (
      globalThis as unknown as {
        axe: {
          run: (ctx: unknown, o: unknown) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] }>;
        };
      }
    ).axe;
    const r = await axe.run((globalThis as unknown as { document: unknown }).document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
}
