#!/usr/bin/env node
// Mixed load for bench/cache-load.sh: C concurrent keep-alive clients (loopback only) spread round-robin over the
// replica URLs run a bounded number of requests, 80 % GET / 20 % PUT, of Nx-shaped gzip tars whose sizes are drawn
// log-uniformly from 10 KiB to 64 MiB (a pool of pre-made body files, each PUT under a fresh hash). Before the
// run every pool body is stored once (GETs then pick any stored hash). With --big FILE, one PUT then one GET of that
// entry (1 GiB) run during the load. The run stops after --requests requests or --seconds, whichever is first.
// RSS: /proc/<pid>/status VmHWM of every --pids process, reset at the start (clear_refs 5).
//
// usage: node mixed-load.mjs --urls http://127.0.0.1:P1,... --token T --pids 1,2 --pool DIR
//          [--clients 64] [--requests 600] [--seconds 180] [--big FILE] [--label name]
// Prints one JSON line: {label, replicas, requests, errors, seconds, reqPerSec, mibPerSec, classes: {...}, big, peakRssMiB: [...]}
import { createReadStream, readdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';

function args() {
  const out = { clients: '64', requests: '600', seconds: '180', label: '' };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) out[a[i].replace(/^--/, '')] = a[i + 1];
  for (const k of ['urls', 'token', 'pids', 'pool']) if (!out[k]) throw new Error(`missing --${k}`);
  const urls = out.urls.split(',').map((u) => new URL(u));
  for (const u of urls) if (!['127.0.0.1', 'localhost'].includes(u.hostname)) throw new Error(`loopback only, got ${u.hostname}`);
  return { ...out, urls, pids: out.pids.split(',').map(Number), clients: Number(out.clients), requests: Number(out.requests), seconds: Number(out.seconds) };
}

const opts = args();
const agents = opts.urls.map(() => new Agent({ keepAlive: true, maxSockets: Math.ceil(opts.clients / opts.urls.length) + 2 }));
const pool = readdirSync(opts.pool)
  .filter((f) => f.endsWith('.tgz'))
  .map((f) => ({ path: join(opts.pool, f), size: statSync(join(opts.pool, f)).size }));
const classOf = (bytes) => (bytes <= 100 * 1024 ? '10-100KiB' : bytes <= 1024 * 1024 ? '0.1-1MiB' : bytes <= 10 * 1024 * 1024 ? '1-10MiB' : '10-64MiB');
const prefix = `m${Date.now().toString(36)}`;
let seq = 0;
const stored = []; // {hash, size}
let rr = 0;

function send(method, hash, file, size) {
  const i = rr++ % opts.urls.length;
  const u = opts.urls[i];
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const headers = { authorization: `Bearer ${opts.token}` };
    if (method === 'PUT') Object.assign(headers, { 'content-type': 'application/octet-stream', 'content-length': size });
    const req = request({ host: u.hostname, port: u.port, path: `/v1/cache/${hash}`, method, headers, agent: agents[i] }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: method === 'PUT' ? size : bytes }));
      res.on('error', () => resolve({ status: 0, ms: 0, bytes: 0 }));
    });
    req.on('error', (e) => resolve({ status: 0, ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: 0, error: e.message }));
    if (method === 'PUT') createReadStream(file, { highWaterMark: 256 * 1024 }).pipe(req);
    else req.end();
  });
}

function resetPeaks() {
  for (const pid of opts.pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      /* not permitted: VmHWM is then the peak since start */
    }
  }
}
const peakMiB = (pid) => Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);

// seed: every pool body stored once, so GETs have something to hit from the first request
for (const b of pool) {
  const hash = `${prefix}${String(seq++).padStart(6, '0')}`;
  const r = await send('PUT', hash, b.path, b.size);
  if (r.status !== 200) throw new Error(`seeding ${hash} (${b.size} bytes) answered ${r.status}`);
  stored.push({ hash, size: b.size });
}

resetPeaks();
const results = [];
const deadline = Date.now() + opts.seconds * 1000;
let issued = 0;
const t0 = process.hrtime.bigint();
async function client() {
  while (issued < opts.requests && Date.now() < deadline) {
    issued++;
    if (Math.random() < 0.2) {
      const b = pool[Math.floor(Math.random() * pool.length)];
      const hash = `${prefix}${String(seq++).padStart(6, '0')}`;
      const r = await send('PUT', hash, b.path, b.size);
      results.push({ op: 'PUT', size: b.size, ...r });
      if (r.status === 200) stored.push({ hash, size: b.size });
    } else {
      const e = stored[Math.floor(Math.random() * stored.length)];
      const r = await send('GET', e.hash);
      results.push({ op: 'GET', size: e.size, ...r, status: r.status === 200 && r.bytes !== e.size ? -1 : r.status });
    }
  }
}
let big;
const bigRun = opts.big
  ? (async () => {
      const size = statSync(opts.big).size;
      const hash = `${prefix}big`;
      const p = await send('PUT', hash, opts.big, size);
      const g = await send('GET', hash);
      big = {
        bytes: size,
        put: { status: p.status, ms: Math.round(p.ms) },
        get: { status: g.status === 200 && g.bytes !== size ? -1 : g.status, ms: Math.round(g.ms) },
      };
    })()
  : Promise.resolve();
await Promise.all([...Array.from({ length: opts.clients }, client), bigRun]);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

const pct = (xs, p) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? Math.round(v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))]) : 0;
};
const classes = {};
for (const op of ['GET', 'PUT']) {
  for (const c of ['10-100KiB', '0.1-1MiB', '1-10MiB', '10-64MiB']) {
    const rs = results.filter((r) => r.op === op && classOf(r.size) === c);
    if (rs.length)
      classes[`${op} ${c}`] = {
        n: rs.length,
        p50: pct(
          rs.map((r) => r.ms),
          50,
        ),
        p99: pct(
          rs.map((r) => r.ms),
          99,
        ),
      };
  }
}
const errors = results.filter((r) => r.status !== 200).length + (big && (big.put.status !== 200 || big.get.status !== 200) ? 1 : 0);
const bytes = results.reduce((a, r) => a + (r.status === 200 ? r.bytes : 0), 0);
console.log(
  JSON.stringify({
    label: opts.label,
    replicas: opts.urls.length,
    requests: results.length,
    errors,
    statuses: results.reduce((a, r) => ((a[r.status] = (a[r.status] ?? 0) + 1), a), {}),
    seconds: Math.round(seconds * 10) / 10,
    reqPerSec: Math.round((results.length / seconds) * 10) / 10,
    mibPerSec: Math.round((bytes / 1048576 / seconds) * 10) / 10,
    classes,
    big,
    peakRssMiB: opts.pids.map(peakMiB),
  }),
);
for (const a of agents) a.destroy();
