import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { ConfigError } from '@buildonce/errors';
import { projectFromKey } from '@buildonce/store';
import { isEnvironmentName, isVersion } from '@buildonce/values';
import { CSS, JS } from './assets';
import {
  discoverLedgers,
  loadDiff,
  loadHistory,
  loadPipeline,
  loadVersion,
  messageOf,
  pipelineFingerprint,
  type DashboardSource,
  type LedgerIndex,
} from './model';
import { diffPage, errorPage, historyPage, loginPage, pipelinePage, versionPage } from './pages';
import type { EnvironmentName } from '@buildonce/values';

/** Name of the session cookie set by the login form. */
export const TOKEN_COOKIE = 'buildonce_ui';

/** True for a loopback bind address (`127.0.0.0/8`, `::1`, `localhost`). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface UiServerOptions {
  source: DashboardSource;
  /** bind address (default 127.0.0.1) */
  host?: string;
  /** TCP port (0: any free port) */
  port: number;
  /** required for a non-loopback host (BUILDONCE_UI_TOKEN): bearer or cookie after the login form */
  token?: string;
  /** how long the ledger listing behind the live fingerprint is reused, ms (default 30 000) */
  discoveryTtlMs?: number;
  log?: (line: string) => void;
}

export interface UiServer {
  /** `http://<host>:<port>/` */
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** A request that cannot be answered: status and one line. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

function cookieToken(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === TOKEN_COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

async function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new HttpError(413, 'form too large');
    chunks.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const projectOf = (key: string) => {
  try {
    return projectFromKey(decodeURIComponent(key));
  } catch {
    throw new HttpError(404, `"${key}" is not a project key`);
  }
};
const envOf = (env: string) => {
  if (!isEnvironmentName(env)) throw new HttpError(404, `"${env}" is not an environment name`);
  return env;
};
const versionOf = (v: string) => {
  if (!isVersion(v)) throw new HttpError(404, `"${v}" is not a version`);
  return v;
};

/**
 * Starts the dashboard server (node:http): server-rendered pages, the two assets, the live
 * fingerprint (`GET /api/fingerprint` → `{ "fingerprint": "…" }`) and, with a token, the login form.
 * Binds loopback by default; a non-loopback `host` requires `token`. On loopback without a token only
 * loopback `Host` headers are answered (a DNS-rebinding page cannot read the ledger). Every request is
 * answered on its own: an unexpected error becomes a 500 page and the server keeps running.
 * @throws ConfigError for a non-loopback host without a token; the listen error (EADDRINUSE) otherwise
 */
export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const host = o.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  if (!loopback && !o.token)
    throw new ConfigError(
      `--host=${host} exposes the dashboard beyond this machine: set BUILDONCE_UI_TOKEN to a secret (clients send it as a bearer token or sign in at /login), or bind 127.0.0.1`,
    );
  const src = o.source;
  const storeUrl = src.store.location.url;
  let port = o.port;
  let index: { at: number; value: Promise<LedgerIndex> } | undefined;
  let fingerprint: { at: number; value: Promise<string> } | undefined;
  const ttl = o.discoveryTtlMs ?? 30_000;
  const ledgerIndex = () => {
    if (!index || Date.now() - index.at > ttl) {
      const value = discoverLedgers(src.store);
      index = { at: Date.now(), value };
      value.catch(() => (index = undefined));
    }
    return index.value;
  };

  const authorized = (req: IncomingMessage): boolean => {
    if (!o.token) return true;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ') && sameSecret(auth.slice(7), o.token)) return true;
    const c = cookieToken(req);
    return c !== undefined && sameSecret(c, o.token);
  };
  const hostAllowed = (req: IncomingMessage): boolean => {
    if (o.token) return true; // the token is the protection beyond loopback
    const h = (req.headers.host ?? '').toLowerCase();
    const name = h.startsWith('[') ? h.slice(1, h.indexOf(']')) : h.split(':')[0]!;
    return isLoopback(name) || name === host;
  };

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}) => {
    res.writeHead(status, { ...HEADERS, 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...extra });
    res.end(body);
  };
  const page = (res: ServerResponse, body: string, started: bigint) =>
    send(res, 200, 'text/html; charset=utf-8', body, { 'server-timing': `render;dur=${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)}` });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const path = url.pathname;
    if (!hostAllowed(req)) throw new HttpError(421, `this dashboard answers only to a loopback Host, got "${req.headers.host ?? ''}"`);
    if (path === '/login' && o.token) {
      if (req.method === 'POST') {
        const form = await readForm(req);
        const next = form.get('next') ?? '/';
        const safeNext = next.startsWith('/') && !next.startsWith('//') ? next : '/';
        if (sameSecret(form.get('token') ?? '', o.token)) {
          res.writeHead(303, {
            ...HEADERS,
            location: safeNext,
            'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(o.token)}; HttpOnly; SameSite=Strict; Path=/`,
          });
          res.end();
          return;
        }
        send(res, 401, 'text/html; charset=utf-8', loginPage({ failed: true, next: safeNext }));
        return;
      }
      send(res, 200, 'text/html; charset=utf-8', loginPage({ next: url.searchParams.get('next') ?? '/' }));
      return;
    }
    if (path === '/assets/ui.css') return send(res, 200, 'text/css; charset=utf-8', CSS);
    if (path === '/assets/ui.js') return send(res, 200, 'text/javascript; charset=utf-8', JS);
    if (!authorized(req)) {
      if (path.startsWith('/api/')) throw new HttpError(401, 'send Authorization: Bearer <BUILDONCE_UI_TOKEN>');
      res.writeHead(303, { ...HEADERS, location: `/login?next=${encodeURIComponent(path + url.search)}` });
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'the dashboard is read-only: GET only');
    if (path === '/' || path === '/index.html') return page(res, pipelinePage(await loadPipeline(src), { live: true }), started);
    if (path === '/api/fingerprint') {
      if (!fingerprint || Date.now() - fingerprint.at > 1000) {
        const value = ledgerIndex().then((i) => pipelineFingerprint(src.store, i));
        fingerprint = { at: Date.now(), value };
        value.catch(() => (fingerprint = undefined));
      }
      let fp: string;
      try {
        fp = await fingerprint.value;
      } catch (e) {
        fp = `error: ${messageOf(e)}`;
      }
      return send(res, 200, 'application/json', JSON.stringify({ fingerprint: createHash('sha256').update(fp).digest('hex') }));
    }
    let m: RegExpExecArray | null;
    if ((m = /^\/history\/([^/]+)\/([^/]+)\.html$/.exec(path))) {
      return page(res, historyPage(await loadHistory(src, projectOf(m[1]!), envOf(decodeURIComponent(m[2]!))), new Date()), started);
    }
    if ((m = /^\/version\/([^/]+)\/([^/]+)\.html$/.exec(path))) {
      const project = projectOf(m[1]!);
      return page(res, versionPage(await loadVersion(src, project, versionOf(m[2]!)), storeUrl, new Date()), started);
    }
    if ((m = /^\/diff\/([^/]+)\/pick\.html$/.exec(path))) {
      projectOf(m[1]!);
      const from = versionOf(url.searchParams.get('from') ?? '');
      const to = versionOf(url.searchParams.get('to') ?? '');
      res.writeHead(303, { ...HEADERS, location: `/diff/${m[1]}/${from}-${to}.html` });
      res.end();
      return;
    }
    if ((m = /^\/diff\/([^/]+)\/([0-9]+)-([0-9]+)\.html$/.exec(path))) {
      const project = projectOf(m[1]!);
      return page(res, diffPage(await loadDiff(src, project, versionOf(m[2]!), versionOf(m[3]!)), storeUrl, new Date()), started);
    }
    throw new HttpError(404, `no page at ${path}`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500) o.log?.(`buildonce ui: ${req.method} ${req.url}: ${(e as Error)?.stack ?? String(e)}`);
      if (res.headersSent) return res.destroy();
      const root = '/';
      const message = status === 500 ? `unexpected error (a bug in buildonce): ${messageOf(e)}` : messageOf(e);
      if ((req.url ?? '').startsWith('/api/')) send(res, status, 'application/json', JSON.stringify({ error: message }));
      else send(res, status, 'text/html; charset=utf-8', errorPage({ status, message, root, storeUrl }));
    });
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : port;
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
