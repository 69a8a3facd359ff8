#!/usr/bin/env node
// Load generator for bench/cache-server.sh: N concurrent keep-alive clients (loopback only) run a bounded
// number of PUTs then GETs of one body against one cache server, and report throughput (MiB/s of body bytes),
// latency p50/p99 (ms, request start → last response byte) and the server's peak RSS during each phase
// (/proc/<pid>/status VmHWM, reset before each phase through /proc/<pid>/clear_refs).
//
// usage: node load.mjs --api nx|turbo --url http://127.0.0.1:PORT --token T --pid PID --body FILE
//                      --requests N [--concurrency 32] [--label name] [--prefix hashprefix]
// Prints one JSON line per phase: {label, op, requests, ok, bytes, seconds, mibPerSec, p50, p99, peakRssMiB, cpuMsPerMiB, statuses}
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

function args() {
  const out = { concurrency: 32, api: 'nx', label: '', prefix: `b${Date.now().toString(36)}` };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) out[a[i].replace(/^--/, '')] = a[i + 1];
  for (const k of ['url', 'token', 'pid', 'body', 'requests']) if (!out[k]) throw new Error(`missing --${k}`);
  const u = new URL(out.url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) throw new Error(`loopback only, got ${u.hostname}`);
  return { ...out, concurrency: Number(out.concurrency), requests: Number(out.requests), pid: Number(out.pid) };
}

const opts = args();
const body = readFileSync(opts.body);
const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
const base = new URL(opts.url);

function pathFor(i) {
  const hash = `${opts.prefix}${String(i).padStart(6, '0')}`;
  return opts.api === 'turbo' ? `/v8/artifacts/${hash}?slug=bench` : `/v1/cache/${hash}`;
}

function once(method, i) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const headers = { authorization: `Bearer ${opts.token}` };
    if (method === 'PUT') Object.assign(headers, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    const req = request({ host: base.hostname, port: base.port, path: pathFor(i), method, headers, agent }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        resolve({ status: res.statusCode, ms, bytes: method === 'PUT' ? body.length : bytes });
      });
      res.on('error', () => resolve({ status: 0, ms: 0, bytes: 0 }));
    });
    req.on('error', () => resolve({ status: 0, ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: 0 }));
    if (method === 'PUT') req.end(body);
    else req.end();
  });
}

function resetPeak() {
  try {
    writeFileSync(`/proc/${opts.pid}/clear_refs`, '5');
  } catch {
    /* not permitted: VmHWM is then the peak since the server started */
  }
}

function peakRssMiB() {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${opts.pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
}

/** CPU time (user + system, ms) the server process has used so far (/proc/<pid>/stat, 100 ticks per second). */
function cpuMs() {
  const f = readFileSync(`/proc/${opts.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, i)] * 10) / 10;
}

async function phase(method) {
  resetPeak();
  const cpu0 = cpuMs();
  let next = 0;
  const results = [];
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(opts.concurrency, opts.requests) }, async () => {
      while (next < opts.requests) {
        const i = next++;
        results.push(await once(method, i));
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuMs() - cpu0;
  const ok = results.filter((r) => r.status === 200);
  const bytes = ok.reduce((s, r) => s + r.bytes, 0);
  const lat = ok.map((r) => r.ms).sort((x, y) => x - y);
  const statuses = {};
  for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const line = {
    label: opts.label,
    op: method,
    bodyMiB: Math.round((body.length / 1048576) * 100) / 100,
    requests: results.length,
    ok: ok.length,
    bytes,
    seconds: Math.round(seconds * 100) / 100,
    mibPerSec: Math.round((bytes / 1048576 / seconds) * 10) / 10,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    peakRssMiB: peakRssMiB(),
    /** server CPU time (user + system) per MiB of body: the cost model, independent of other load on the machine */
    cpuMsPerMiB: bytes ? Math.round((cpu / (bytes / 1048576)) * 100) / 100 : null,
    statuses,
  };
  console.log(JSON.stringify(line));
}

await phase('PUT');
await phase('GET');
agent.destroy();
