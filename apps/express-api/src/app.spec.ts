import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import express from 'express';
import pino from 'pino';
import { createApp } from './app';
import type { ReleaseInfo } from './release-info';
import { parsePort, startServer, type RunningServer } from './server';

const release: ReleaseInfo = { project: 'express-api', version: '123456', commit: 'abc', publishedAt: '2026-01-01T00:00:00.000Z', source: 'deployed' };

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close(100);
  running = undefined;
});

async function serve(): Promise<{ url: string; lines: Record<string, unknown>[] }> {
  const { logger, lines } = capture();
  running = await startServer(createApp({ release, logger }), { port: 0, host: '127.0.0.1', logger });
  return { url: `http://127.0.0.1:${running.port}`, lines };
}

describe('express-api', () => {
  it('GET /health answers with the release version and commit, and logs one JSON line', async () => {
    const { url, lines } = await serve();
    const res = await fetch(`${url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', version: '123456', commit: 'abc' });
    await new Promise((r) => setTimeout(r, 20));
    expect(lines.find((l) => l.msg === 'request')).toMatchObject({ method: 'GET', path: '/health', status: 200 });
  });

  it('GET /v1/release describes the running artifact', async () => {
    const { url } = await serve();
    const body = (await (await fetch(`${url}/v1/release`)).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ project: 'express-api', version: '123456', source: 'deployed', publishedAt: '2026-01-01T00:00:00.000Z' });
    expect(typeof body.uptimeMs).toBe('number');
  });

  it('POST /v1/manifests/validate checks a manifest with the workspace schema', async () => {
    const { url } = await serve();
    const good = {
      schemaVersion: 1,
      project: 'p',
      version: '1',
      kind: 'node-tarball',
      files: [{ name: 'a.tar.gz', size: 1, sha256: 'a'.repeat(64) }],
      runtime: 'node>=20',
      architecture: 'x86_64',
      entry: 'main.js',
      toolchain: 't',
    };
    const post = (body: string, type = 'application/json') =>
      fetch(`${url}/v1/manifests/validate`, { method: 'POST', body, headers: { 'content-type': type } });
    const ok = await post(JSON.stringify(good));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ valid: true, manifest: { project: 'p' } });
    const bad = await post(JSON.stringify({ ...good, version: 'x' }));
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { error: string }).error).toMatch(/version: a version is the decimal Nx task hash/);
    const malformed = await post('{');
    expect(malformed.status).toBe(400);
    expect(await post('x', 'text/plain').then((r) => r.status)).toBe(415);
  });

  it('POST /v1/sha256 hashes the raw body', async () => {
    const { url } = await serve();
    const res = await fetch(`${url}/v1/sha256`, { method: 'POST', body: 'abc' });
    expect(await res.json()).toEqual({
      size: 3,
      sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      sha256Base64: 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=',
    });
  });

  it('unknown routes are JSON 404s', async () => {
    const { url } = await serve();
    const res = await fetch(`${url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'no route GET /nope' });
  });

  it('close() lets an in-flight request finish, then stops', async () => {
    const { logger } = capture();
    const app = express();
    app.get('/slow', (_req, res) => {
      setTimeout(() => res.json({ done: true }), 150);
    });
    app.use(createApp({ release, logger }));
    running = await startServer(app, { port: 0, host: '127.0.0.1', logger });
    const inflight = fetch(`http://127.0.0.1:${running.port}/slow`).then((r) => r.json());
    await new Promise((r) => setTimeout(r, 30));
    const closed = running.close(5_000);
    expect(await inflight).toEqual({ done: true });
    await closed;
    await expect(fetch(`http://127.0.0.1:${running.port}/health`)).rejects.toThrow();
  });

  it('parses PORT strictly', () => {
    expect(parsePort(undefined)).toBe(3000);
    expect(parsePort('8080')).toBe(8080);
    expect(() => parsePort('80a')).toThrow(/PORT must be an integer between 0 and 65535/);
    expect(() => parsePort('70000')).toThrow(/PORT/);
  });
});
