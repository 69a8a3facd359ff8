import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifestJson } from '@buildonce/artifact';
import { removeTempDirs, repoRoot, tempDir } from '@buildonce/testing';
import { readZipEntry, type Architecture } from '@buildonce/artifact';
import { buildRustLambdaZip } from './cargo';
import { GlibcTooNewError, readElfVersionNeeds } from './elf';
import type { ProjectName, Version } from '@buildonce/values';

/**
 * Real cargo builds of apps/rust-scorer (a copy) for arm64 and x86_64 on this host, the built bootstrap
 * serving Lambda Runtime API invocations (arm64 under qemu-user), and the glibc ceiling refusing it.
 */
const offlineRegistry = process.env.BUILDONCE_CARGO_OFFLINE_REGISTRY ?? '/usr/share/cargo/registry';
let tmp: string;
let crate: string;

beforeAll(() => {
  tmp = tempDir('cargo-int-');
  crate = join(tmp, 'rust-scorer');
  cpSync(join(repoRoot, 'apps/rust-scorer'), crate, { recursive: true, filter: (src) => !src.includes('/target') });
});
afterAll(removeTempDirs);

function build(architecture: Architecture, outputDir: string, runtime = 'provided.al2023', lines: string[] = []) {
  return buildRustLambdaZip({
    project: 'rust-scorer' as ProjectName,
    version: '123' as Version,
    cargoDir: crate,
    outputDir,
    architecture,
    binary: 'bootstrap',
    runtime,
    offlineRegistry,
    cargoLambda: 'auto',
    log: (l) => lines.push(l),
  });
}

interface Invocation {
  path: string;
  errorType: string | undefined;
  body: unknown;
}

/**
 * A Lambda Runtime API (2018-06-01) on 127.0.0.1:<free port> that hands out `events` one per
 * `GET /runtime/invocation/next`, records the POSTed results, then answers 500 so the runtime exits.
 * Events are written in 16 KiB pieces without a Content-Length, so Node's HTTP server sends them chunked
 * (as AWS's runtime interface emulator does above 2 KiB); connections are kept alive and counted.
 * Source: AWS Lambda developer guide, "Using the Lambda runtime API for custom runtimes".
 */
async function runtimeApi(events: unknown[]): Promise<{ server: Server; address: string; results: Invocation[]; connections: () => number }> {
  const results: Invocation[] = [];
  let connections = 0;
  let next = 0;
  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    if (req.method === 'GET' && req.url === '/2018-06-01/runtime/invocation/next') {
      if (next >= events.length) {
        res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"errorMessage":"no more events"}');
        return;
      }
      const id = `req-${++next}`;
      const event = Buffer.from(JSON.stringify(events[next - 1]));
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Lambda-Runtime-Aws-Request-Id': id,
        'Lambda-Runtime-Deadline-Ms': String(Date.now() + 60_000),
        'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:123456789012:function:rust-scorer',
        'Lambda-Runtime-Trace-Id': 'Root=1-00000000-000000000000000000000000',
      });
      for (let i = 0; i < event.length; i += 16 * 1024) res.write(event.subarray(i, i + 16 * 1024));
      res.end();
      return;
    }
    if (req.method === 'POST') {
      const h = req.headers['lambda-runtime-function-error-type'];
      results.push({ path: req.url ?? '', errorType: Array.isArray(h) ? h[0] : h, body: JSON.parse(body) });
      res.writeHead(202, { 'Content-Type': 'application/json' }).end('{"status":"OK"}');
      return;
    }
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 120_000; // scoring 6 MiB under qemu must not outlast an idle connection
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, results, connections: () => connections };
}

/** How to start an aarch64 binary here: directly (binfmt_misc runs it through qemu-user) or through qemu-aarch64. */
function aarch64Launcher(): string[] | string {
  if (process.arch === 'arm64') return [];
  if (/^enabled/.test(readFileSafe('/proc/sys/fs/binfmt_misc/qemu-aarch64'))) return [];
  if (spawnSync('qemu-aarch64', ['--version']).status === 0) return ['qemu-aarch64'];
  return 'neither binfmt_misc nor qemu-aarch64 can run aarch64 binaries (bash tools/scripts/setup.sh installs and registers qemu-user)';
}
function readFileSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** A valid event of exactly `size` bytes of JSON (the scorer ignores unknown top-level fields). */
function validEvent(size: number) {
  const event = { address: '0xAbCdEf0123456789abcdef0123456789ABCDEF01', stamps: [{ provider: 'Google', expires_at: '2999-01-01T00:00:00Z' }], pad: '' };
  event.pad = 'x'.repeat(size - JSON.stringify(event).length);
  return event;
}

/**
 * Runs `bootstrap` against the fake Runtime API for a valid 3 KiB event, an invalid one and a valid 6 MiB
 * one (Lambda's payload limit), all chunked; resolves with the results, exit code and connection count.
 */
async function serveThree(bootstrap: string, launcher: string[]) {
  const invalid = { address: '0xnot-an-address', stamps: [] };
  const api = await runtimeApi([validEvent(3 * 1024), invalid, validEvent(6 * 1024 * 1024)]);
  try {
    const [cmd, ...args] = [...launcher, bootstrap];
    const child = spawn(cmd, args, { env: { PATH: process.env.PATH, AWS_LAMBDA_RUNTIME_API: api.address }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`bootstrap did not exit within 60 s: ${stderr}`));
      }, 60_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    return { results: api.results, code, stderr, connections: api.connections() };
  } finally {
    api.server.close();
  }
}

function extract(zip: string, dir: string): Promise<string> {
  return readZipEntry(zip, 'bootstrap').then((bytes) => {
    const p = join(dir, 'bootstrap');
    writeFileSync(p, bytes);
    chmodSync(p, 0o755);
    return p;
  });
}

function expectThreeInvocations(r: { results: Invocation[]; code: number | null; stderr: string; connections: number }) {
  expect(
    r.results.map((x) => x.path),
    r.stderr,
  ).toEqual(['/2018-06-01/runtime/invocation/req-1/response', '/2018-06-01/runtime/invocation/req-2/error', '/2018-06-01/runtime/invocation/req-3/response']);
  for (const i of [0, 2])
    expect(r.results[i].body).toMatchObject({ address: '0xabcdef0123456789abcdef0123456789abcdef01', stamps: { Google: expect.any(Number) } });
  expect(r.results[1]).toMatchObject({ errorType: 'InvalidInput', body: { errorType: 'InvalidInput' } });
  expect(r.code).not.toBe(0); // the fourth GET got a 500: the runtime exits non-zero
  expect(r.connections, 'seven requests over one kept-alive connection').toBe(1);
}

describe('Rust Lambda zips for both architectures on this host', () => {
  it('arm64: bootstrap.zip holds an aarch64 bootstrap within AL2023 glibc that serves chunked 3 KiB and 6 MiB invocations under qemu-user', async () => {
    const out = join(tmp, 'out-arm64');
    const lines: string[] = [];
    const manifest = await build('arm64', out, 'provided.al2023', lines);
    expect(manifest).toMatchObject({ architecture: 'arm64', runtime: 'provided.al2023', kind: 'lambda-zip' });
    expect(manifest.toolchain).toMatch(/aarch64-unknown-linux-gnu/);
    expect(Number(manifest.glibcMax?.split('.')[1])).toBeLessThanOrEqual(34);
    expect(parseManifestJson(readFileSync(join(out, 'artifact.json'), 'utf8'))).toEqual(manifest);
    expect(lines.join('\n')).toMatch(/\[rust-scorer\] toolchain: /);
    const bootstrap = await extract(join(out, 'bootstrap.zip'), mkdtempSync(join(tmp, 'x-')));
    expect(readElfVersionNeeds(readFileSync(bootstrap)).machine).toBe('aarch64');
    const launcher = aarch64Launcher();
    if (typeof launcher === 'string') {
      console.warn(`SKIPPED running the arm64 bootstrap: ${launcher}`);
      return;
    }
    expectThreeInvocations(await serveThree(bootstrap, launcher));
  }, 900_000); // a cold LTO cross build (ureq and its dependencies) plus a 6 MiB event under qemu on a shared machine

  it('x86_64 still builds, and its bootstrap serves chunked 3 KiB and 6 MiB invocations natively', async () => {
    const out = join(tmp, 'out-x86_64');
    const manifest = await build('x86_64', out);
    expect(manifest.architecture).toBe('x86_64');
    expect(manifest.toolchain).toMatch(/x86_64-unknown-linux-gnu/);
    const bootstrap = await extract(join(out, 'bootstrap.zip'), mkdtempSync(join(tmp, 'y-')));
    expect(readElfVersionNeeds(readFileSync(bootstrap)).machine).toBe('x86_64');
    expectThreeInvocations(await serveThree(bootstrap, []));
  }, 900_000);

  it('refuses a bootstrap that needs a newer glibc than the runtime ships, naming the symbol, and writes nothing', async () => {
    const out = join(tmp, 'out-al2');
    cpSync(join(tmp, 'out-arm64'), out, { recursive: true }); // an earlier build's output must not survive a refused one
    // Rust's std links __libc_start_main@GLIBC_2.34 (glibc >= 2.34); provided.al2 has glibc 2.26.
    const err = await build('arm64', out, 'provided.al2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GlibcTooNewError);
    expect((err as Error).message).toMatch(/^\[rust-scorer\] bootstrap needs GLIBC_2\.\d+ \(symbol \S+@GLIBC_2\.\d+.*\) but provided\.al2 has glibc 2\.26/);
    expect((err as Error).message.split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
  });
});
