import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, stopChild } from './moto';

/** Token auth settings for the registry (distribution `auth.token`): JWTs signed by the test's key. */
export interface RegistryTokenAuth {
  realm: string;
  service: string;
  issuer: string;
  /** PEM file with the certificate(s) whose keys sign the tokens */
  rootCertBundle: string;
}

/** A running CNCF distribution registry (Debian `docker-registry`) on loopback, started by a test. */
export interface RegistryServer {
  /** `127.0.0.1:<port>` (use as the registry host; plain HTTP) */
  host: string;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** storage root (temp dir, removed by stop) */
  root: string;
  stop(): Promise<void>;
}

/**
 * Starts `docker-registry serve <config>` with a config written here: filesystem storage in a temp
 * dir, deletes enabled, listening on a free loopback port, optional token auth. Waits (up to
 * `timeoutMs`, default 20000 ms) until `GET /v2/` answers. Stop it with `stop()` (by PID; removes the temp dir).
 * @throws Error when the binary is missing (install with tools/scripts/setup.sh) or the server does not come up
 */
export async function startRegistry(o: { tokenAuth?: RegistryTokenAuth; timeoutMs?: number } = {}): Promise<RegistryServer> {
  const port = await freePort();
  const root = await mkdtemp(join(tmpdir(), 'buildonce-registry-'));
  const auth = o.tokenAuth
    ? `auth:\n  token:\n    realm: ${o.tokenAuth.realm}\n    service: ${o.tokenAuth.service}\n    issuer: ${o.tokenAuth.issuer}\n    rootcertbundle: ${o.tokenAuth.rootCertBundle}\n`
    : '';
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(root, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: buildonce-test',
    auth,
  ].join('\n');
  await writeFile(join(root, 'config.yml'), config);
  const child: ChildProcess = spawn('docker-registry', ['serve', join(root, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  for (;;) {
    if (spawnError) {
      await rm(root, { recursive: true, force: true });
      throw new Error(`docker-registry could not start (${spawnError.message}): install it with tools/scripts/setup.sh (Debian package docker-registry)`);
    }
    if (child.exitCode !== null) {
      await rm(root, { recursive: true, force: true });
      throw new Error(`docker-registry exited early: ${stderr.trim()}`);
    }
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await rm(root, { recursive: true, force: true });
      throw new Error(`docker-registry did not start on port ${port}: ${stderr.trim()}`);
    }
    await sleep(100);
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    url,
    root,
    async stop() {
      await stopChild(child, exited);
      await rm(root, { recursive: true, force: true });
    },
  };
}
