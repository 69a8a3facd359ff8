import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { lstatSync, mkdirSync, readlinkSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, posix } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs, type TarEntrySpec, tarGz, tempDir } from '@buildonce/testing';
import { BodyGuard } from './body-guard';

/**
 * Random link graphs (cycles, forward references, `.` and `..` links, links through links) judged by the
 * cache server's archive check and extracted for real by GNU tar and by the Nx client's own extraction
 * (nx's native HttpRemoteCache.retrieve, the code `nx` runs on a remote-cache hit). Whatever the check
 * accepts must extract to a tree in which no link resolves outside the extraction directory.
 */
afterAll(removeTempDirs);

/** mulberry32: seeded, so a failing archive can be replayed */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['a', 'b'];
const TARGET_PARTS = ['.', '..', '..', 'a', 'a', 'b', 'etc'];

function randomArchive(rnd: () => number): TarEntrySpec[] {
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  // mostly top-level names, so links meet each other's targets often
  const path = () => Array.from({ length: rnd() < 0.6 ? 1 : 2 + Math.floor(rnd() * 2) }, () => pick(NAMES)).join('/');
  // short targets (`.`, `..`, a name: the links that change what others reach), balanced climbs
  // (k names then k or k+1 `..`: inside as text, outside once a name is a link to `.`), random mixes
  const target = () => {
    const r = rnd();
    if (r < 0.35) return pick(['.', '..', 'a', 'b', '.', 'a/b']);
    const parts: string[] = [];
    if (r < 0.7) {
      const k = 1 + Math.floor(rnd() * 5);
      for (let i = 0; i < k; i++) parts.push(pick(NAMES));
      for (let i = 0; i < k + Math.floor(rnd() * 2); i++) parts.push('..');
      if (rnd() < 0.5) parts.push('etc');
      return parts.join('/');
    }
    return Array.from({ length: 1 + Math.floor(rnd() * 7) }, () => pick(TARGET_PARTS)).join('/');
  };
  const entries: TarEntrySpec[] = [];
  const n = 2 + Math.floor(rnd() * 5);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.2) entries.push({ path: `${path()}/`, type: 'Directory' });
    else if (r < 0.3) entries.push({ path: path(), data: 'x' });
    else entries.push({ path: path(), type: 'SymbolicLink', linkpath: target() });
  }
  // forward references: a later link turns a name that earlier targets walk through into `.` or `..`
  if (rnd() < 0.5) {
    // the family the audit found: balanced climbs written first (inside as text), collapsing links last
    entries.length = 0;
    for (let i = 1 + Math.floor(rnd() * 2); i > 0; i--) {
      const k = 1 + Math.floor(rnd() * 4);
      const names = Array.from({ length: k }, () => pick(NAMES));
      const ups = Array.from({ length: k - (rnd() < 0.3 ? 1 : 0) }, () => '..');
      entries.push({
        path: rnd() < 0.8 ? pick(['p', 'q']) : `${pick(NAMES)}/p`,
        type: 'SymbolicLink',
        linkpath: [...names, ...ups, ...(rnd() < 0.5 ? ['etc'] : [])].join('/'),
      });
      if (rnd() < 0.3) entries.push({ path: `${pick(NAMES)}/`, type: 'Directory' });
    }
  }
  for (let i = rnd() < 0.6 ? 1 + Math.floor(rnd() * 2) : 0; i > 0; i--) {
    entries.push(
      rnd() < 0.7
        ? { path: pick(NAMES), type: 'SymbolicLink', linkpath: '.' }
        : { path: `${pick(NAMES)}/${pick(NAMES)}`, type: 'SymbolicLink', linkpath: '..' },
    );
  }
  return entries;
}

/** What Nx puts next to the outputs (4-byte big-endian exit code). */
const NX_FILES: TarEntrySpec[] = [
  { path: 'terminalOutput', data: 'ok\n' },
  { path: 'code', data: Buffer.alloc(4) },
];

async function guardAccepts(body: Buffer): Promise<boolean> {
  const guard = new BodyGuard({ maxBytes: 1 << 20, expectedBytes: body.length });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  return pipeline(Readable.from([body]), guard, sink).then(
    () => true,
    () => false,
  );
}

/**
 * Resolves a symlink in an extracted tree the way the kernel would read through it (component by component,
 * following links found on disk, at most 40 expansions), treating missing components as plain names.
 * @returns the absolute resolved path, or undefined for a loop
 */
function resolveOnDisk(linkPath: string): string | undefined {
  const cur = posix.dirname(linkPath).split('/').filter(Boolean);
  const queue = readlinkSync(linkPath).split('/');
  if (queue[0] === '') cur.length = 0;
  let expansions = 0;
  while (queue.length) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      cur.pop();
      continue;
    }
    const p = '/' + [...cur, c].join('/');
    let st;
    try {
      st = lstatSync(p);
    } catch {
      cur.push(c);
      continue;
    }
    if (!st.isSymbolicLink()) {
      cur.push(c);
      continue;
    }
    if (++expansions > 40) return undefined;
    const t = readlinkSync(p);
    if (t.startsWith('/')) cur.length = 0;
    queue.unshift(...t.split('/'));
  }
  return '/' + cur.join('/');
}

/** Every symlink under `root` (not followed) whose resolution leaves `root`, as `path -> target`. */
function escapingLinks(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) {
        const r = resolveOnDisk(p);
        if (r !== undefined && r !== root && !r.startsWith(root + '/')) out.push(`${p.slice(root.length + 1)} -> ${readlinkSync(p)} (${r})`);
      } else if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

let server: Server;
const bodies = new Map<string, Buffer>();
let nxCache: { retrieve(hash: string, dir: string): Promise<unknown> };

beforeAll(async () => {
  server = createServer((req, res) => {
    const body = bodies.get(req.url!.split('/').pop()!);
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  process.env.NX_SELF_HOSTED_REMOTE_CACHE_SERVER = `http://127.0.0.1:${port}`;
  process.env.NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN = 'read';
  // the native binding nx's task runner uses for NX_SELF_HOSTED_REMOTE_CACHE_SERVER (tasks-runner/cache.js)
  const { HttpRemoteCache } = createRequire(__filename)('nx/src/native') as { HttpRemoteCache: new () => typeof nxCache };
  nxCache = new HttpRemoteCache();
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
});

/** Extracts with GNU tar (default options, as a user or a deploy step would) into a fresh dir; its escaping links. */
function gnuTarEscapes(body: Buffer, base: string): string[] {
  const dir = join(base, 'gnu');
  mkdirSync(dir);
  writeFileSync(join(base, 'body.tgz'), body);
  try {
    execFileSync('tar', ['-xzf', join(base, 'body.tgz'), '-C', dir], { stdio: 'ignore' });
  } catch {
    // GNU tar goes on after per-entry errors (exit 2): what it did extract is judged
  }
  return escapingLinks(dir);
}

/** Extracts with Nx's own remote-cache client into a fresh cache dir; its escaping links ([] when Nx refused the archive). */
async function nxEscapes(hash: string, body: Buffer, base: string): Promise<string[]> {
  bodies.set(hash, body);
  const dir = join(base, 'nx');
  mkdirSync(dir);
  const ok = await nxCache.retrieve(hash, dir).then(
    () => true,
    () => false,
  );
  const out = join(dir, hash);
  return ok || readdirSync(dir).includes(hash) ? escapingLinks(out) : [];
}

describe('archive check vs real extraction (GNU tar, the Nx client) on generated link graphs', () => {
  it('the audit case: b/, p -> a/…/b/../…/etc/passwd, then a -> . is refused (GNU tar makes p read /etc/passwd)', async () => {
    const entries: TarEntrySpec[] = [
      { path: 'b/', type: 'Directory' },
      { path: 'p', type: 'SymbolicLink', linkpath: `${'a/'.repeat(8)}b/${'../'.repeat(9)}etc/passwd` },
      { path: 'a', type: 'SymbolicLink', linkpath: '.' },
      ...NX_FILES,
    ];
    const body = tarGz(entries);
    expect(gnuTarEscapes(body, tempDir('lg-audit-'))).toEqual([expect.stringMatching(/^p -> .* \(\/etc\/passwd\)$/)]);
    expect(await guardAccepts(body)).toBe(false);
  });

  it('100 random link graphs: every accepted archive extracts without an escaping link, with both extractors', async () => {
    let accepted = 0;
    let escapingGnu = 0;
    let escapingNx = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const entries = [...randomArchive(prng(seed)), ...NX_FILES];
      const body = tarGz(entries);
      const base = tempDir('lg-');
      const gnu = gnuTarEscapes(body, base);
      const nx = await nxEscapes(String(1000 + seed), body, base);
      if (gnu.length) escapingGnu++;
      if (nx.length) escapingNx++;
      const ok = await guardAccepts(body);
      if (!ok) continue;
      accepted++;
      const show = entries.map((e) => (e.type === 'SymbolicLink' ? `${e.path} -> ${e.linkpath}` : e.path)).join(', ');
      expect(gnu, `seed ${seed}: [${show}] accepted, GNU tar extracts escaping links`).toEqual([]);
      expect(nx, `seed ${seed}: [${show}] accepted, the Nx client extracts escaping links`).toEqual([]);
    }
    console.log(`link graphs: accepted ${accepted}, escaping with GNU tar ${escapingGnu}, with the Nx client ${escapingNx}`);
    // the generator is not vacuous: it makes escaping archives for both extractors, and harmless ones the check keeps accepting
    expect(escapingGnu).toBeGreaterThan(10);
    expect(escapingNx).toBeGreaterThan(2);
    expect(accepted).toBeGreaterThan(15);
  }, 300_000);
});
