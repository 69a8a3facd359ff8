import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '@buildonce/store';

/**
 * Stops a server process the tests started: SIGTERM, SIGKILL after `graceMs` (ms) if it has not exited;
 * resolves once it has exited (at once when it already had). Used by every server helper here.
 * @param exited resolves on the child's `exit` event (created right after spawn, so an early exit is not missed)
 */
export async function stopChild(child: ChildProcess, exited: Promise<void>, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** A running moto_server (real AWS API on loopback) started by a test. */
export interface MotoServer {
  /** `http://127.0.0.1:<port>`, use as `AWS_ENDPOINT_URL`. */
  endpoint: string;
  port: number;
  /** Environment for child processes / SDK clients: endpoint, dummy credentials, region. */
  env: Record<string, string>;
  /**
   * Creates an S3 bucket (S3 API CreateBucket, a plain `PUT /<bucket>`; moto does not check signatures), in
   * `region` (default us-east-1) through `CreateBucketConfiguration.LocationConstraint`, as GetBucketLocation reports it.
   */
  createBucket(name: string, region?: string): Promise<void>;
  /** Stops the server by PID and waits for exit. */
  stop(): Promise<void>;
}

/**
 * Asks the kernel for a free TCP port on 127.0.0.1.
 * @returns port number (1–65535)
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr && typeof addr === 'object') {
        const { port } = addr;
        srv.close(() => resolve(port));
      } else {
        srv.close(() => reject(new Error('could not allocate a port')));
      }
    });
  });
}

/**
 * Starts `moto_server -H 127.0.0.1 -p <free port>` and waits (up to `timeoutMs`, default 30000 ms)
 * until it answers HTTP. Throws if the binary is missing or the server does not come up.
 */
export async function startMoto(timeoutMs = 30_000): Promise<MotoServer> {
  const port = await freePort();
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited early: ${stderr.trim()}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      await res.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`moto_server did not start on port ${port} within ${timeoutMs} ms: ${stderr.trim()}`);
      }
      await sleep(150);
    }
  }
  const env = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  return {
    endpoint,
    port,
    env,
    async createBucket(name: string, region?: string) {
      const body =
        region && region !== 'us-east-1'
          ? `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${region}</LocationConstraint></CreateBucketConfiguration>`
          : undefined;
      const res = await fetch(`${endpoint}/${name}`, { method: 'PUT', body });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`CreateBucket ${name} failed: HTTP ${res.status}`);
    },
    stop: () => stopChild(child, exited),
  };
}

/**
 * Puts `env` into `process.env` (code under test builds its own AWS SDK clients, whose credential chain
 * reads process.env).
 * @returns a function that restores the values it replaced (deleting the ones that were unset)
 */
export function setProcessEnv(env: Record<string, string>): () => void {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** moto_server whose credentials and endpoint are in `process.env`, with one empty S3 bucket. */
export interface MotoBucket {
  moto: MotoServer;
  /** an S3 client on moto (the store's client factory) */
  s3: S3Client;
  bucket: string;
  /** destroys the client, stops moto and restores the `process.env` values it replaced */
  stop(): Promise<void>;
}

/**
 * Starts moto_server, puts its environment into `process.env` (code under test builds its own AWS SDK
 * clients, whose credential chain reads process.env) and creates `bucket` (S3 CreateBucket).
 * @throws when moto does not start or the bucket cannot be created (moto is stopped again)
 */
export async function startMotoBucket(bucket: string): Promise<MotoBucket> {
  const moto = await startMoto();
  const restoreEnv = setProcessEnv(moto.env);
  const s3 = createS3Client({ env: moto.env });
  const stop = async () => {
    s3.destroy();
    await moto.stop();
    restoreEnv();
  };
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (e) {
    await stop();
    throw e;
  }
  return { moto, s3, bucket, stop };
}
