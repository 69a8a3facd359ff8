import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { HOSTILE, type MotoServer, removeTempDirs, type SeededWorkspace, seedWorkspace, startMoto, tempDir, VERSIONS } from '@buildonce/testing';
import { axeViolations } from '@buildonce/testing/src/browser';
import { serveDashboard, type ServedDashboard } from '@buildonce/testing/src/dashboard';

/**
 * The dashboard over an S3 store on moto_server, filled by the same real publishes, promotions and
 * rollbacks as the file-store test; then S3 goes away and the page says so while the server stays up.
 */

let moto: MotoServer | undefined;
let ws: SeededWorkspace;
let dashboard: ServedDashboard | undefined;
let shots: string;

beforeAll(async () => {
  moto = await startMoto();
  await moto.createBucket('ui-releases');
  const processEnv = { ...process.env, ...moto.env, BUILDONCE_STORE: undefined, BUILDONCE_UI_TOKEN: undefined };
  ws = await seedWorkspace({ store: 's3://ui-releases/team', processEnv });
  shots = tempDir('buildonce-ui-s3-shots-');
  // the SDK's retries would stretch the "S3 is down" page over minutes: one attempt is what the page needs
  dashboard = await serveDashboard(ws.root, { ...processEnv, AWS_MAX_ATTEMPTS: '1' });
});

afterAll(async () => {
  await dashboard?.close();
  await moto?.stop();
  removeTempDirs();
});

const open = (path: string): Promise<Page> => dashboard!.open(path);

describe('buildonce ui over S3 (moto_server, chromium)', () => {
  it('shows the store, the matrix and the drift', async () => {
    const page = await open('/');
    expect(await page.locator('header .store code').innerText()).toBe('s3://ui-releases/team');
    const cell = (p: string, env: string) => page.locator(`tr[data-project="${p}"] td[data-env="${env}"]`).innerText();
    expect(await cell('scorer', 'dev')).toContain(VERSIONS.v2);
    expect(await cell('scorer', 'staging')).toContain('automatic rollback');
    expect(await cell('scorer', 'prod')).toContain('staging is 1 commit ahead');
    expect(await cell('@acme/api', 'dev')).toContain(VERSIONS.api);
    await page.screenshot({ path: join(shots, 'pipeline-s3.png'), fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    await page.close();
  });

  it('history and diff read the ledger and manifests from S3', async () => {
    const h = await open('/history/scorer/staging.html');
    expect(await h.locator('table.history tbody tr td:nth-child(2)').allInnerTexts()).toEqual([
      'automatic rollback',
      'failed verification',
      'succeeded',
      'succeeded',
    ]);
    const d = await open(`/diff/scorer/${VERSIONS.v1}-${VERSIONS.v2}.html`);
    expect(await d.locator('ol.commits .subject').textContent()).toBe(HOSTILE.subject);
    expect(await d.locator('table.files tbody').innerText()).toMatch(/weights\.json\s+added/);
    expect(await d.evaluate(() => (globalThis as { __pwned?: string }).__pwned)).toBeUndefined();
    await h.close();
    await d.close();
  });

  it('S3 down: the page shows the store error and the server keeps serving', async () => {
    await moto!.stop();
    moto = undefined;
    const page = await open('/');
    expect(await page.locator('.page-error').innerText()).toMatch(/the store could not be listed: /);
    const again = await open('/history/scorer/prod.html');
    expect(await again.locator('.page-error').innerText()).toMatch(/the history could not be read: /);
    await page.screenshot({ path: join(shots, 'pipeline-s3-down.png'), fullPage: true });
    await page.close();
    await again.close();
  });
});
