import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { readZipEntry } from '@buildonce/artifact';
import { tempDir } from './temp';

/**
 * A local Lambda endpoint for tests: moto_server implements the Lambda control plane but cannot
 * `Invoke` without Docker. This server sits in front of moto (point `AWS_ENDPOINT_URL_LAMBDA` at it):
 *
 * - `POST /2015-03-31/functions/{name}/invocations[?Qualifier=]` (Lambda API Invoke, RequestResponse)
 *   asks moto for the version's configuration (GetFunctionConfiguration with the qualifier; an alias
 *   resolves to its version), finds the deployment package by its `CodeSha256` through `packageFor`,
 *   extracts `bootstrap` from the zip and runs it as a `provided.al2023` custom runtime would: with
 *   `AWS_LAMBDA_RUNTIME_API` pointing at a per-invocation Runtime API server
 *   (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html: `GET /2018-06-01/runtime/invocation/next`,
 *   `POST …/invocation/{id}/response`, `POST …/invocation/{id}/error`, `POST …/runtime/init/error`).
 *   The answer mirrors Lambda's: 200 with the function's payload, `X-Amz-Function-Error: Unhandled`
 *   for an error response, an init error or a runtime that exits; `X-Amz-Executed-Version`.
 * - every other request is forwarded to moto unchanged.
 */
export interface LambdaInvokeServer {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** invocations served: function name, executed version, whether it reported a FunctionError */
  invocations: { functionName: string; version: string; functionError?: string }[];
  stop(): Promise<void>;
}

/** Finds the zip whose sha256 (base64, as Lambda's CodeSha256) is `codeSha256`; undefined: unknown package. */
export type PackageResolver = (codeSha256: string) => string | undefined;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function forward(
  target: URL,
  method: string,
  path: string,
  headers: IncomingMessage['headers'],
  body: Buffer,
): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const h = { ...headers, host: target.host };
    const r = httpRequest({ host: target.hostname, port: target.port, method, path, headers: h }, async (res) => {
      resolve({ status: res.statusCode ?? 502, headers: res.headers, body: await readBody(res) });
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** Extracts the `bootstrap` entry of a zip to `<dir>/bootstrap` (executable). */
async function extractBootstrap(zip: string, dir: string): Promise<string> {
  const bytes = await readZipEntry(zip, 'bootstrap');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'bootstrap');
  writeFileSync(out, bytes);
  chmodSync(out, 0o755);
  return out;
}

interface RuntimeResult {
  functionError?: string;
  payload: Buffer;
}

/**
 * Runs one invocation through a fresh Runtime API server and a fresh `bootstrap` process
 * (a cold start per invocation); the process is killed once it has answered.
 */
async function invokeOnce(bootstrap: string, event: Buffer, functionArn: string, timeoutMs: number): Promise<RuntimeResult> {
  const requestId = randomUUID();
  let child: ChildProcess | undefined;
  let served = false;
  let finish!: (r: RuntimeResult) => void;
  const done = new Promise<RuntimeResult>((r) => (finish = r));
  const api: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const url = req.url ?? '';
    if (req.method === 'GET' && url === '/2018-06-01/runtime/invocation/next') {
      if (served) return; // the next event never comes: the process is killed after its answer
      served = true;
      res.writeHead(200, {
        'content-type': 'application/json',
        'lambda-runtime-aws-request-id': requestId,
        'lambda-runtime-deadline-ms': String(Date.now() + timeoutMs),
        'lambda-runtime-invoked-function-arn': functionArn,
        'lambda-runtime-trace-id': 'Root=1-00000000-000000000000000000000000',
      });
      return void res.end(event);
    }
    res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"OK"}');
    if (req.method === 'POST' && url === `/2018-06-01/runtime/invocation/${requestId}/response`) finish({ payload: body });
    else if (req.method === 'POST' && (url === `/2018-06-01/runtime/invocation/${requestId}/error` || url === '/2018-06-01/runtime/init/error'))
      finish({ functionError: 'Unhandled', payload: body });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const port = (api.address() as AddressInfo).port;
  let stderr = '';
  try {
    child = spawn(bootstrap, [], {
      env: { PATH: process.env.PATH, AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`, AWS_LAMBDA_FUNCTION_NAME: functionArn.split(':')[6] },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code, signal) => {
      // a runtime that exits without answering: Lambda reports Runtime.ExitError
      setTimeout(
        () =>
          finish({
            functionError: 'Unhandled',
            payload: Buffer.from(
              JSON.stringify({
                errorType: 'Runtime.ExitError',
                errorMessage:
                  `RequestId: ${requestId} Error: Runtime exited with ${signal ?? `error: exit status ${code}`} ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`.trim(),
              }),
            ),
          }),
        50,
      );
    });
    const timer = setTimeout(
      () =>
        finish({
          functionError: 'Unhandled',
          payload: Buffer.from(JSON.stringify({ errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${timeoutMs / 1000} seconds` })),
        }),
      timeoutMs,
    );
    const r = await done;
    clearTimeout(timer);
    return r;
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child!.once('exit', () => r()));
      child.kill('SIGKILL');
      await exited;
    }
    await new Promise<void>((r) => {
      api.closeAllConnections();
      api.close(() => r());
    });
  }
}

/**
 * Starts the Invoke endpoint in front of moto on a free port.
 * @param o.moto moto's endpoint (`http://127.0.0.1:<port>`)
 * @param o.packageFor finds the deployment package (zip) of a CodeSha256
 * @param o.timeoutMs function timeout (default 10000)
 */
export async function startLambdaInvokeServer(o: { moto: string; packageFor: PackageResolver; timeoutMs?: number }): Promise<LambdaInvokeServer> {
  const moto = new URL(o.moto);
  const work = tempDir('lambda-invoke-');
  const extracted = new Map<string, Promise<string>>();
  const invocations: LambdaInvokeServer['invocations'] = [];
  const server = createServer(async (req, res) => {
    try {
      const body = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://local');
      const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(url.pathname);
      if (req.method !== 'POST' || !m) {
        const r = await forward(moto, req.method ?? 'GET', req.url ?? '/', req.headers, body);
        res.writeHead(r.status, r.headers).end(r.body);
        return;
      }
      const name = decodeURIComponent(m[1]!);
      const qualifier = url.searchParams.get('Qualifier');
      const cfgPath = `/2015-03-31/functions/${encodeURIComponent(name)}/configuration${qualifier ? `?Qualifier=${encodeURIComponent(qualifier)}` : ''}`;
      const cfgRes = await forward(moto, 'GET', cfgPath, { ...req.headers, 'content-length': '0' }, Buffer.alloc(0));
      if (cfgRes.status !== 200) return void res.writeHead(cfgRes.status, cfgRes.headers).end(cfgRes.body);
      const cfg = JSON.parse(cfgRes.body.toString()) as { CodeSha256: string; Version: string; FunctionArn: string; Timeout?: number };
      const zip = o.packageFor(cfg.CodeSha256);
      if (!zip) {
        res.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled', 'x-amz-executed-version': cfg.Version });
        return void res.end(JSON.stringify({ errorType: 'Runtime.InvalidEntrypoint', errorMessage: `no package with CodeSha256 ${cfg.CodeSha256}` }));
      }
      if (!extracted.has(cfg.CodeSha256))
        extracted.set(cfg.CodeSha256, extractBootstrap(zip, join(work, Buffer.from(cfg.CodeSha256, 'base64').toString('hex'))));
      const bootstrap = await extracted.get(cfg.CodeSha256)!;
      const r = await invokeOnce(bootstrap, body, cfg.FunctionArn, o.timeoutMs ?? 10_000);
      invocations.push({ functionName: name, version: cfg.Version, ...(r.functionError ? { functionError: r.functionError } : {}) });
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-amz-executed-version': cfg.Version,
        ...(r.functionError ? { 'x-amz-function-error': r.functionError } : {}),
      });
      res.end(r.payload);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: (e as Error).message }));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    invocations,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
