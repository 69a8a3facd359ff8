import { request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, parseStoreUrl } from '@buildonce/store';
import { appendEntry } from '@buildonce/ledger';
import { parseConfig } from '@buildonce/config';
import { ConfigError } from '@buildonce/errors';
import { removeTempDirs, tempDir, unusedAwsClients } from '@buildonce/testing';
import { draft } from '@buildonce/testing';
import { readOnlyStore } from './readonly-store';
import { startUiServer, type UiServer } from './server';
import type { Version, ProjectName, EnvironmentName } from '@buildonce/values';

afterAll(removeTempDirs);

async function source() {
  const inner = openStore(parseStoreUrl(`file://${tempDir('ui-server-')}`));
  await appendEntry(inner, draft('41' as Version, { project: 'svc' as ProjectName, environment: 'dev' as EnvironmentName, actor: '<b>x</b>' }));
  return { store: readOnlyStore(inner), config: parseConfig({}), aws: unusedAwsClients() };
}

/** GET with an explicit Host header (fetch does not allow setting it). */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the dashboard server: binding, token, headers', () => {
  const servers: UiServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  it('binds loopback by default, sends a strict CSP, and answers only loopback Host headers', async () => {
    const s = await startUiServer({ source: await source(), port: 0 });
    servers.push(s);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const ok = await get(s.url);
    expect(ok.status).toBe(200);
    expect(String(ok.headers['content-security-policy'])).toContain("script-src 'self'");
    expect(ok.body).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(ok.body).not.toContain('<b>x</b>');
    expect((await get(s.url, { host: 'attacker.example:80' })).status).toBe(421);
    expect((await get(`${s.url}api/fingerprint`)).body).toMatch(/^\{"fingerprint":"[0-9a-f]{64}"\}$/);
    expect((await get(`${s.url}nope`)).status).toBe(404);
  });

  it('refuses a non-loopback host without BUILDONCE_UI_TOKEN, in one line', async () => {
    const e = await startUiServer({ source: await source(), port: 0, host: '0.0.0.0' }).then(
      () => undefined,
      (x: Error) => x,
    );
    expect(e).toBeInstanceOf(ConfigError);
    expect(e!.message).toMatch(/^--host=0\.0\.0\.0 exposes the dashboard .*BUILDONCE_UI_TOKEN/);
    expect(e!.message).not.toContain('\n');
  });

  it('with a token: bearer or the login cookie, anything else is sent to the login form', async () => {
    const token = 's3cret-token';
    const s = await startUiServer({ source: await source(), port: 0, host: '0.0.0.0', token });
    servers.push(s);
    const base = `http://127.0.0.1:${s.port}/`;
    const anon = await get(base);
    expect(anon.status).toBe(303);
    expect(anon.headers.location).toBe('/login?next=%2F');
    expect((await get(`${base}api/fingerprint`)).status).toBe(401);
    expect((await get(base, { authorization: 'Bearer wrong' })).status).toBe(303);
    expect((await get(base, { authorization: `Bearer ${token}` })).status).toBe(200);
    const bad = await fetch(`${base}login`, { method: 'POST', body: new URLSearchParams({ token: 'nope', next: '/' }), redirect: 'manual' });
    expect(bad.status).toBe(401);
    const good = await fetch(`${base}login`, { method: 'POST', body: new URLSearchParams({ token, next: '//evil.example/' }), redirect: 'manual' });
    expect(good.status).toBe(303);
    expect(good.headers.get('location')).toBe('/');
    const cookie = good.headers.get('set-cookie')!.split(';')[0]!;
    expect(good.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    expect((await get(base, { cookie })).status).toBe(200);
  });

  it('is read-only over HTTP too: no method but GET changes anything', async () => {
    const s = await startUiServer({ source: await source(), port: 0 });
    servers.push(s);
    expect((await fetch(s.url, { method: 'POST', body: 'x' })).status).toBe(405);
  });
});
