import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, nxLikeBody } from '@buildonce/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The production artifact: the project's `bundle` command (esbuild → one CommonJS file) copied to a directory
 * with no node_modules, started with `node main.js`, configured only by environment variables.
 */

const workspaceRoot = resolve(__dirname, '../../..');
const TOKEN = 'prod-rw-6f2e8a4c1d3b5790';

let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cache-server-bundle-'));
  bundle = join(dir, 'main.js');
  const project = JSON.parse(readFileSync(join(__dirname, '..', 'project.json'), 'utf8')) as { targets: { bundle: { options: { command: string } } } };
  const command = project.targets.bundle.options.command.replace('dist/apps/cache-server-bundle/main.js', bundle);
  expect(command).toContain(bundle);
  await execa(command, { shell: true, cwd: workspaceRoot, env: { PATH: `${join(workspaceRoot, 'node_modules/.bin')}:${process.env.PATH}` } });
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  waitFor(re: RegExp, ms?: number): Promise<string>;
}

function startBundle(env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [bundle], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const onData = (d: Buffer) => {
    for (const l of d.toString().split('\n').filter(Boolean)) {
      lines.push(l);
      for (const w of [...waiters])
        if (w.re.test(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    lines,
    exited,
    waitFor(re, ms = 15_000) {
      const hit = lines.find((l) => re.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`timed out waiting for ${re}; output:\n${lines.join('\n')}`)), ms);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), res(l)) });
      });
    },
  };
}

describe('bundled server (node dist/apps/cache-server-bundle/main.js)', () => {
  it('runs outside the workspace and finishes an in-flight upload on SIGTERM before exiting 0', async () => {
    const port = await freePort();
    const store = join(dir, 'store');
    const p = startBundle({ PORT: String(port), HOST: '127.0.0.1', BUILDONCE_CACHE_TOKENS: `${TOKEN}:read-write`, BUILDONCE_CACHE_STORE: store });
    try {
      await p.waitFor(/buildonce cache server listening/);
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/health`)).status).toBe(200);

      // an upload in flight: half the body sent, then SIGTERM, then the rest
      const body = nxLikeBody(3 * 1024 * 1024);
      const half = Math.floor(body.length / 2);
      let finishUpload!: () => void;
      const response = new Promise<number>((resolveStatus, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/v1/cache/1234567890',
            method: 'PUT',
            agent: false,
            headers: { authorization: `Bearer ${TOKEN}`, 'content-length': body.length, 'content-type': 'application/octet-stream' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolveStatus(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.write(body.subarray(0, half));
        finishUpload = () => req.end(body.subarray(half));
      });
      await new Promise((r) => setTimeout(r, 200));
      p.child.kill('SIGTERM');
      await p.waitFor(/shutting down/);
      // no new connections once closing
      await expect(fetch(`${base}/health`)).rejects.toThrow();
      finishUpload();
      expect(await response).toBe(200);
      expect(await p.exited).toBe(0);
      expect(p.lines.some((l) => /"outcome":"stored"/.test(l) && /"hash":"1234567890"/.test(l))).toBe(true);
      expect(p.lines.join('\n')).not.toContain(TOKEN);
      // every stdout line is JSON (pino)
      for (const l of p.lines.filter((x) => x.startsWith('{'))) expect(() => JSON.parse(l)).not.toThrow();
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  });

  it('a fresh process serves what the previous one stored (directory store survives restarts)', async () => {
    const port = await freePort();
    const p = startBundle({ PORT: String(port), HOST: '127.0.0.1', BUILDONCE_CACHE_TOKENS: `${TOKEN}:read-only`, BUILDONCE_CACHE_STORE: join(dir, 'store') });
    try {
      await p.waitFor(/listening/);
      const res = await fetch(`http://127.0.0.1:${port}/v1/cache/1234567890`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(3 * 1024 * 1024);
      p.child.kill('SIGINT');
      expect(await p.exited).toBe(0);
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  });

  it('exits 2 with a one-line JSON error on bad configuration, without echoing tokens', async () => {
    const p = startBundle({ BUILDONCE_CACHE_TOKENS: 'super-secret-token:admin' });
    expect(await p.exited).toBe(2);
    const out = p.lines.join('\n');
    expect(out).toMatch(/invalid configuration/);
    expect(out).toMatch(/access \\"admin\\"/);
    expect(out).not.toContain('super-secret-token');
  });

  it('exits 1 when the store is unusable', async () => {
    // a path below a regular file can never be created (ENOTDIR)
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const p = startBundle({ BUILDONCE_CACHE_TOKENS: `${TOKEN}:read-write`, BUILDONCE_CACHE_STORE: join(file, 'store'), PORT: String(await freePort()) });
    expect(await p.exited).toBe(1);
    expect(p.lines.join('\n')).toMatch(/store unusable/);
  });
});
