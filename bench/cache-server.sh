#!/usr/bin/env bash
# Benchmarks the buildonce cache server against two baselines measured in the same run, on the same machine and
# the same request bodies: the FLOOR (apps/cache-server/bench/floor-server.mjs: bare node:http, streams PUTs to a
# temp file + link, streams GETs back, validates nothing) and turborepo-remote-cache (npm, local storage).
# 32 concurrent keep-alive clients on loopback, PUT then GET of 1 MiB and 64 MiB gzip-tar entries (Nx-shaped:
# random output file + terminalOutput + code). Prints throughput (MiB/s of body bytes), latency p50/p99 (ms),
# each server's peak RSS per phase, then every shape as a ratio: buildonce/floor, buildonce/turborepo
# (throughput), and buildonce/turborepo peak RSS. Goals: GET >= 0.95x the floor (1 and 64 MiB); PUT >= 0.9x
# turborepo at 1 MiB and >= 1.0x at 64 MiB.
#
# usage: bench/cache-server.sh        (env: SMALL_REQUESTS=512 LARGE_REQUESTS=64 CONCURRENCY=32 ROUNDS=3)
# Every number printed is the median over ROUNDS rounds (each round runs the three servers in turn); the per-round
# rows are printed first.
# Servers run one at a time (never concurrently) so they do not compete for the 2 cores.
# Needs: node, the workspace's node_modules (esbuild, tar, turborepo-remote-cache). No network besides loopback.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$repo/node_modules/.bin"
LOAD="$repo/apps/cache-server/bench/load.mjs"
MAKE_BODY="$repo/apps/cache-server/bench/make-body.mjs"
SMALL_REQUESTS="${SMALL_REQUESTS:-512}"
LARGE_REQUESTS="${LARGE_REQUESTS:-64}"
CONCURRENCY="${CONCURRENCY:-32}"
ROUNDS="${ROUNDS:-3}"
TOKEN="bench-$(node -e 'process.stdout.write(require("crypto").randomBytes(12).toString("hex"))')"

# shellcheck source=bench/lib/common.sh
. "$repo/bench/lib/common.sh"
bench_tmpdir cache-bench

echo "== preparing (work dir $work)"
bundle_cache_server "$work/cache-server.js"
node "$MAKE_BODY" 1048576 "$work/body-1MiB.tgz" >/dev/null
node "$MAKE_BODY" 67108864 "$work/body-64MiB.tgz" >/dev/null
for body in "$work"/body-*.tgz; do echo "   body $body $(stat -c %s "$body") bytes"; done

start_ours() { # port -> pid
  mkdir -p "$work/ours-store"
  PORT="$1" HOST=127.0.0.1 BUILDONCE_CACHE_TOKENS="$TOKEN:read-write" BUILDONCE_CACHE_STORE="$work/ours-store" \
    BUILDONCE_CACHE_MAX_BYTES=$((128 * 1024 * 1024)) node "$work/cache-server.js" >>"$work/ours.log" 2>&1 &
  echo $!
}

start_floor() { # port -> pid
  mkdir -p "$work/floor-store"
  PORT="$1" STORE="$work/floor-store" TOKEN="$TOKEN" node "$repo/apps/cache-server/bench/floor-server.mjs" >>"$work/floor.log" 2>&1 &
  echo $!
}

start_turbo() { # port -> pid
  mkdir -p "$work/turbo-store"
  NODE_ENV=production PORT="$1" HOST=127.0.0.1 STORAGE_PROVIDER=local STORAGE_PATH="$work/turbo-store" \
    STORAGE_PATH_USE_TMP_FOLDER=false TURBO_TOKEN="$TOKEN" "$BIN/turborepo-remote-cache" >>"$work/turbo.log" 2>&1 &
  echo $!
}

RESULTS="$work/results.jsonl"
run_server() { # name api
  local name="$1" api="$2" port pid url probe
  port="$(free_port)"
  case "$name" in
    buildonce) pid="$(start_ours "$port")"; probe="/health" ;;
    floor) pid="$(start_floor "$port")"; probe="/health" ;;
    *) pid="$(start_turbo "$port")"; probe="/v8/artifacts/status" ;;
  esac
  bench_pids+=("$pid")
  url="http://127.0.0.1:$port"
  wait_http "$url$probe" "$TOKEN"
  echo "== $name (pid $pid, $url)"
  for size in 1MiB 64MiB; do
    local n="$SMALL_REQUESTS"
    [ "$size" = 64MiB ] && n="$LARGE_REQUESTS"
    node "$LOAD" --api "$api" --url "$url" --token "$TOKEN" --pid "$pid" --body "$work/body-$size.tgz" \
      --requests "$n" --concurrency "$CONCURRENCY" --label "$name" --prefix "${size}x" | tee -a "$RESULTS"
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$work/ours-store" "$work/turbo-store" "$work/floor-store"
}

START=$(date +%s)
# ROUNDS rounds of the three servers in turn (a burst of other work lands on one server of one round): the
# summary takes each shape's median over the rounds
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  run_server floor nx
  run_server buildonce nx
  run_server turborepo-remote-cache turbo
done

echo
echo "== results ($CONCURRENCY concurrent clients; throughput = body MiB/s; latency = request start to last byte; peak RSS per phase)"
# shellcheck disable=SC2016 # a JavaScript program: its ${…} are JavaScript template literals
node -e '
const all = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const pad = (s, n) => String(s).padEnd(n);
const median = (xs) => { const v = [...xs].sort((a, b) => a - b); const m = v.length >> 1; return Math.round((v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2) * 10) / 10; };
const key = (r) => `${r.label}|${r.op}|${r.bodyMiB >= 32}`;
const groups = new Map();
for (const r of all) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
console.log("per round (MiB/s): " + [...groups].map(([k, rs]) => `${k.replace(/\|true$/, " 64MiB").replace(/\|false$/, " 1MiB").replace(/\|/g, " ")} ${rs.map((r) => r.mibPerSec).join("/")}`).join("; "));
const rows = [...groups.values()].map((rs) => ({ ...rs[0], mibPerSec: median(rs.map((r) => r.mibPerSec)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), peakRssMiB: median(rs.map((r) => r.peakRssMiB)), cpuMsPerMiB: median(rs.map((r) => r.cpuMsPerMiB ?? NaN)), requests: rs.reduce((a, r) => a + r.requests, 0), ok: rs.reduce((a, r) => a + r.ok, 0), statuses: rs.reduce((a, r) => { for (const [s, n] of Object.entries(r.statuses)) a[s] = (a[s] ?? 0) + n; return a; }, {}) }));
console.log();
console.log(pad("server", 24) + pad("op", 5) + pad("entry", 8) + pad("reqs", 6) + pad("ok", 6) + pad("MiB/s", 9) + pad("p50 ms", 10) + pad("p99 ms", 10) + pad("peak RSS MiB", 14) + "CPU ms/MiB   (medians over the rounds; reqs/ok summed)");
for (const r of rows) {
  const entry = r.bodyMiB >= 32 ? "64 MiB" : "1 MiB";
  console.log(pad(r.label, 24) + pad(r.op, 5) + pad(entry, 8) + pad(r.requests, 6) + pad(r.ok, 6) + pad(r.mibPerSec, 9) + pad(r.p50, 10) + pad(r.p99, 10) + pad(r.peakRssMiB, 14) + r.cpuMsPerMiB);
  const bad = Object.entries(r.statuses).filter(([s]) => s !== "200");
  if (bad.length) console.log("   non-200 responses: " + JSON.stringify(Object.fromEntries(bad)));
}
const at = (label, op, big) => rows.find((r) => r.label === label && r.op === op && (r.bodyMiB >= 32) === big);
const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) + "x" : "n/a");
console.log();
console.log("== ratios of the medians (buildonce / baseline; goals: GET >= 0.95x floor; PUT >= 0.90x turborepo at 1 MiB, >= 1.00x at 64 MiB)");
console.log(pad("op", 5) + pad("entry", 8) + pad("vs floor", 11) + pad("vs turborepo", 14) + "RSS vs turborepo");
for (const op of ["PUT", "GET"]) for (const big of [false, true]) {
  const o = at("buildonce", op, big), f = at("floor", op, big), t = at("turborepo-remote-cache", op, big);
  if (!o) continue;
  console.log(pad(op, 5) + pad(big ? "64 MiB" : "1 MiB", 8) + pad(fmt(o.mibPerSec / f?.mibPerSec), 11) + pad(fmt(o.mibPerSec / t?.mibPerSec), 14) + fmt(o.peakRssMiB / t?.peakRssMiB));
}
' "$RESULTS"
echo "(total $(( $(date +%s) - START )) s)"
