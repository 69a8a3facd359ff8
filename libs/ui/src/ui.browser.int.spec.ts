import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { currentKey } from '@buildonce/store';
import { runPromoteCommand } from '@buildonce/commands';
import { HOSTILE, removeTempDirs, type SeededWorkspace, seedWorkspace, tempDir, VERSIONS } from '@buildonce/testing';
import { axeViolations } from '@buildonce/testing/src/browser';
import { serveDashboard, type ServedDashboard } from '@buildonce/testing/src/dashboard';
import { runUiCommand } from './command';
import type { EnvironmentName, ProjectName } from '@buildonce/values';

/**
 * The dashboard in a real browser (Debian's chromium through playwright-core) over a file store filled
 * by real publishes, promotions, a failed verification with its automatic rollback, and rollbacks with
 * and without a reason. One browser for the whole file; generous timeouts (a loaded 2-core machine).
 */

let ws: SeededWorkspace;
let dashboard: ServedDashboard | undefined;
let shots: string;

beforeAll(async () => {
  ws = await seedWorkspace();
  shots = tempDir('buildonce-ui-shots-');
  dashboard = await serveDashboard(ws.root, { ...process.env, BUILDONCE_STORE: undefined, BUILDONCE_UI_TOKEN: undefined });
});

afterAll(async () => {
  await dashboard?.close();
  removeTempDirs();
});

const open = (path: string): Promise<Page> => dashboard!.open(path);

/** Text of the pipeline cell of a project and environment. */
const cellText = (page: Page, project: string, env: string) => page.locator(`tr[data-project="${project}"] td[data-env="${env}"]`).innerText();

async function expectNoInjection(page: Page): Promise<void> {
  expect(await page.evaluate(() => (globalThis as { __pwned?: string }).__pwned)).toBeUndefined();
  expect(await page.locator('main img, main svg, main script, main b, main a[href^="javascript:"]').count()).toBe(0);
}

describe('buildonce ui over a file store (chromium)', () => {
  it('the pipeline matrix shows what runs where, the drift mark, previews apart, and passes axe', async () => {
    const page = await open('/');
    expect(await page.locator('table.matrix').first().locator('thead th').allInnerTexts()).toEqual(['Project', 'dev', 'staging', 'prod']);
    expect(await cellText(page, 'scorer', 'dev')).toContain(VERSIONS.v2);
    expect(await cellText(page, 'scorer', 'dev')).toContain('rollback');
    expect(await cellText(page, 'scorer', 'staging')).toContain(VERSIONS.v2);
    expect(await cellText(page, 'scorer', 'staging')).toContain('automatic rollback');
    const prod = await cellText(page, 'scorer', 'prod');
    expect(prod).toContain(VERSIONS.v1);
    expect(prod).toContain('staging is 1 commit ahead');
    expect(prod).toContain('carol');
    expect(await cellText(page, '@acme/api', 'dev')).toContain(VERSIONS.api);
    const previews = page.locator('section[aria-labelledby="preview-h"]');
    expect(await previews.locator('thead th').allInnerTexts()).toEqual(['Project', 'pr-7']);
    expect(await previews.locator('tr[data-project="scorer"] td[data-env="pr-7"]').innerText()).toContain(VERSIONS.p7);
    // the exact CLI command to copy, per cell
    expect(await page.locator('tr[data-project="scorer"] td[data-env="prod"] .cmd code').first().textContent()).toBe('npx nx run scorer:promote --env=prod');
    await page.screenshot({ path: join(shots, 'pipeline.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    await expectNoInjection(page);
    await page.close();
  });

  it('the keyboard reaches the skip link first, then the filter controls and every cell link', async () => {
    const page = await open('/');
    const focused = async () =>
      page.evaluate(() => {
        const d = (globalThis as unknown as { document: { activeElement: { tagName: string; id: string; textContent: string | null } | null } }).document;
        const a = d.activeElement;
        return a ? `${a.tagName.toLowerCase()}#${a.id}:${(a.textContent ?? '').trim().slice(0, 30)}` : '';
      });
    await page.keyboard.press('Tab');
    expect(await focused()).toMatch(/^a#:Skip to content/);
    await page.keyboard.press('Enter');
    expect(page.url()).toMatch(/#main$/);
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      seen.push(await focused());
    }
    expect(seen).toEqual(expect.arrayContaining(['input#f-project:', expect.stringMatching(/^select#f-env:/), 'button#:Filter']));
    expect(seen.some((s) => s.startsWith('a#:' + VERSIONS.api))).toBe(true);
    await page.close();
  });

  it('filters live in the URL and survive a reload', async () => {
    const page = await open('/');
    await page.fill('#f-project', 'acme');
    await page.selectOption('#f-env', 'dev');
    await Promise.all([page.waitForURL(/project=acme/), page.click('form.filter button[type=submit]')]);
    expect(new URL(page.url()).searchParams.get('env')).toBe('dev');
    for (const p of [page, page]) {
      await p.reload();
      expect(await p.inputValue('#f-project')).toBe('acme');
      expect(await p.inputValue('#f-env')).toBe('dev');
      expect(await p.locator('tr[data-project="@acme/api"]').isVisible()).toBe(true);
      expect(await p.locator('tr[data-project="scorer"]').first().isVisible()).toBe(false);
      expect(await p.locator('th[data-env="prod"]').first().isVisible()).toBe(false);
      expect(await p.locator('section[aria-labelledby="preview-h"]').isVisible()).toBe(false);
    }
    // the same link opened fresh (shared) shows the same view
    const shared = await open(new URL(page.url()).pathname + new URL(page.url()).search);
    expect(await shared.locator('tr[data-project="scorer"]').first().isVisible()).toBe(false);
    await page.screenshot({ path: join(shots, 'pipeline-filtered.png') });
    await page.close();
    await shared.close();
  });

  it('the staging history shows the failed verification and its automatic rollback, newest first', async () => {
    const page = await open('/history/scorer/staging.html');
    const rows = page.locator('table.history tbody tr');
    expect(await rows.count()).toBe(4);
    const kinds = await page.locator('table.history tbody tr td:nth-child(2)').allInnerTexts();
    expect(kinds).toEqual(['automatic rollback', 'failed verification', 'succeeded', 'succeeded']);
    const failed = await rows.nth(1).innerText();
    expect(failed).toContain(VERSIONS.v3);
    expect(failed).toContain('smoke: /score answers 500');
    expect(failed).toContain('command ×1');
    expect(await rows.nth(0).innerText()).toMatch(/verification failed: 1003 in staging/);
    expect(await rows.nth(2).innerText()).toContain('weights retrained on November data');
    // run ids link to the CI run of the repository the manifest records
    expect(await rows.nth(0).locator('a[href^="https://github.com/acme/scorer/actions/runs/77"]').count()).toBe(1);
    await page.screenshot({ path: join(shots, 'history-staging.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    await page.close();
  });

  it('a manual rollback shows its reason (hostile text stays text) and one without says so', async () => {
    const prod = await open('/history/scorer/prod.html');
    const top = prod.locator('table.history tbody tr').first();
    expect(await top.locator('td:nth-child(2)').innerText()).toBe('rollback');
    expect(await top.locator('.reason').textContent()).toBe(HOSTILE.reason);
    const actors = await prod.locator('table.history td.who').allTextContents();
    expect(actors).toContain(HOSTILE.actor);
    await expectNoInjection(prod);
    expect(await axeViolations(prod)).toEqual([]);
    const dev = await open('/history/scorer/dev.html');
    expect(await dev.locator('table.history tbody tr').first().locator('.reason').textContent()).toBe('no reason given');
    await prod.close();
    await dev.close();
  });

  it('the diff page lists the commits and file deltas of two published versions', async () => {
    const page = await open(`/diff/scorer/${VERSIONS.v1}-${VERSIONS.v2}.html`);
    const commits = page.locator('ol.commits li');
    expect(await commits.count()).toBe(1);
    expect(await commits.first().locator('.subject').textContent()).toBe(HOSTILE.subject);
    expect(await commits.first().locator('.author').textContent()).toBe('Ada Dev');
    const files = await page.locator('table.files tbody tr').allInnerTexts();
    expect(files.find((f) => f.startsWith('weights.json'))).toMatch(/added/);
    expect(files.find((f) => f.startsWith('bootstrap.zip'))).toMatch(/changed.*\+\d+ B/);
    const facts = await page.locator('section[aria-labelledby="facts-h"] tbody').innerText();
    expect(facts).toMatch(/toolchain\s+rust 1\.94\.0\s+rust 1\.95\.0/);
    expect(facts).toMatch(/glibc ceiling\s+2\.26\s+2\.34/);
    await expectNoInjection(page);
    await page.screenshot({ path: join(shots, 'diff.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    // the picker navigates to any other pair
    await page.selectOption('#d-from', VERSIONS.v2);
    await page.selectOption('#d-to', VERSIONS.v3);
    await Promise.all([page.waitForURL(new RegExp(`${VERSIONS.v2}-${VERSIONS.v3}\\.html$`)), page.click('form.picker button')]);
    expect(await page.locator('ol.commits li').count()).toBe(1);
    expect(await page.locator('ol.commits .subject').textContent()).toBe('scorer: faster scoring');
    await page.close();
  });

  it('the version page shows the manifest, provenance verdicts and every environment it ran in', async () => {
    const page = await open(`/version/scorer/${VERSIONS.v2}.html`);
    const text = await page.locator('main').innerText();
    expect(text).toMatch(/architecture\s+arm64/);
    expect(text).toMatch(/glibc ceiling\s+2\.34/);
    expect(text).toContain('weights.json');
    expect(text).toContain(ws.commits.v2);
    expect(text).toMatch(/unsigned/);
    const envs = await page.locator('section[aria-labelledby="envs-h"] li').allInnerTexts();
    expect(envs.find((e) => e.startsWith('dev'))).toMatch(/^dev: current/);
    expect(envs.find((e) => e.startsWith('staging'))).toMatch(/^staging: current/);
    expect(envs.find((e) => e.startsWith('prod'))).toMatch(/^prod: was current/);
    expect(await axeViolations(page)).toEqual([]);
    await page.close();
  });

  it('the pipeline refreshes itself when a pointer moves', async () => {
    const page = await open('/');
    await page.waitForFunction(
      () => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } | null } }).document.getElementById('live') !== null,
    );
    await page.waitForTimeout(2500); // the first poll has taken the baseline fingerprint
    const dir = tempDir('buildonce-ui-redeploy-');
    // 1003 again in dev through the real promote command (the artifact is in the store; its build manifest is all promote reads)
    writeFileSync(
      join(dir, 'artifact.json'),
      JSON.stringify({
        schemaVersion: 1,
        project: 'scorer',
        version: VERSIONS.v3,
        kind: 'lambda-zip',
        files: [{ name: 'bootstrap.zip', size: 1, sha256: '0'.repeat(64) }],
        runtime: 'provided.al2023',
        architecture: 'arm64',
        handler: 'bootstrap',
        toolchain: 'rust 1.95.0',
      }),
    );
    await runPromoteCommand({
      project: 'scorer' as ProjectName,
      workspaceRoot: ws.root,
      env: 'dev' as EnvironmentName,
      outputDir: dir,
      deploy: { target: 'local', localRoot: join(ws.root, '.buildonce/deploy') },
      processEnv: { ...process.env, BUILDONCE_STORE: undefined },
      reason: 'retry after the fix',
      log: () => undefined,
    });
    await page.waitForFunction(
      (v) => {
        const d = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document;
        return d.querySelector('tr[data-project="scorer"] td[data-env="dev"] a.version')?.textContent === v;
      },
      VERSIONS.v3,
      { timeout: 60_000 },
    );
    await page.close();
  });

  it('the static export renders the same pipeline without a server, filters included', async () => {
    const dir = join(tempDir('buildonce-ui-static-'), 'site');
    const r = await runUiCommand({ workspaceRoot: ws.root, staticDir: dir, log: () => undefined, processEnv: { ...process.env, BUILDONCE_STORE: undefined } });
    expect('site' in r && r.site.pages).toBeGreaterThan(5);
    const live = await open('/');
    const served = await live.locator('table.matrix').first().locator('a.version').allTextContents();
    const page = await dashboard!.context.newPage();
    await page.goto(pathToFileURL(join(dir, 'index.html')).href);
    expect(await page.locator('table.matrix').first().locator('a.version').allTextContents()).toEqual(served);
    expect(await page.locator('#live').count()).toBe(0);
    await page.screenshot({ path: join(shots, 'static.png'), fullPage: true });
    await page.goto(pathToFileURL(join(dir, 'index.html')).href + '?env=prod');
    expect(await page.locator('th[data-env="dev"]').first().isVisible()).toBe(false);
    expect(await page.locator('th[data-env="prod"]').first().isVisible()).toBe(true);
    // links work offline: history → diff
    await page.goto(pathToFileURL(join(dir, 'history/scorer/staging.html')).href);
    expect(await page.locator('table.history tbody tr').count()).toBe(4);
    await page.click(`a[href$="diff/scorer/${VERSIONS.v1}-${VERSIONS.v2}.html"]`);
    expect(await page.locator('ol.commits .subject').textContent()).toBe(HOSTILE.subject);
    await expectNoInjection(page);
    await live.close();
    await page.close();
  });

  it('a malformed history entry or pointer is an error in its cell; the rest of the page and the server stay up', async () => {
    const root = join(ws.root, '.buildonce/store');
    const bad = join(root, currentKey('@acme/api' as ProjectName, 'dev' as EnvironmentName));
    mkdirSync(join(bad, '..'), { recursive: true });
    writeFileSync(bad, '{"schemaVersion": 1, "seq": "<img src=x onerror=window.__pwned=1>"');
    const page = await open('/');
    const cell = page.locator('tr[data-project="@acme/api"] td[data-env="dev"]');
    expect(await cell.locator('.cell-error').innerText()).toMatch(/could not read: .*current\.json: not JSON/);
    expect(await cellText(page, 'scorer', 'prod')).toContain(VERSIONS.v1);
    await expectNoInjection(page);
    const hist = await open('/history/@acme/api/dev.html'.replace('@acme/api', 'acme--api'));
    expect(await hist.locator('main').innerText()).toContain(VERSIONS.api);
    const res = await fetch(new URL('/version/scorer/not-a-version.html', dashboard!.server.url));
    expect(res.status).toBe(404);
    expect((await fetch(dashboard!.server.url)).status).toBe(200);
    await page.close();
    await hist.close();
  });
});
