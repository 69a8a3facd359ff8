#!/usr/bin/env bash
# Load test of the buildonce cache server as an organisation runs it: 64 concurrent clients (loopback only)
# mixing 80 % GET / 20 % PUT of Nx-shaped gzip tars, sizes log-uniform from 10 KiB to 64 MiB (a pool of POOL
# bodies log-spaced over that range, picked uniformly), against
#   1. one replica on the directory store,
#   2. one replica on S3 (moto_server),
#   3. three replicas on the same S3 bucket, clients spread round-robin over them.
# During each run one BIG_MIB (default 1 GiB) entry is PUT and then GET through the first replica. Each run is
# bounded: REQUESTS requests or SECONDS seconds, whichever comes first. Prints, per configuration, requests/s,
# MiB/s of body bytes, p50/p99 latency per operation and size class, errors (must be 0; a GET whose body length is
# wrong counts), the big entry's timings and every replica's peak RSS (VmHWM) during the run.
#
# usage: bench/cache-load.sh   (env: CLIENTS=64 REQUESTS=600 SECONDS_MAX=180 POOL=16 BIG_MIB=1024 RSS_BOUND_MIB=400)
# Needs: node, the workspace's node_modules (esbuild, tar, @aws-sdk/client-s3), moto_server. Loopback only.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOAD="$repo/apps/cache-server/bench/mixed-load.mjs"
MAKE_BODY="$repo/apps/cache-server/bench/make-body.mjs"
CLIENTS="${CLIENTS:-64}"
REQUESTS="${REQUESTS:-600}"
SECONDS_MAX="${SECONDS_MAX:-180}"
POOL="${POOL:-16}"
BIG_MIB="${BIG_MIB:-1024}"
# peak RSS each replica must stay under, whatever the entry sizes (the server streams: memory is per request, not per byte)
RSS_BOUND_MIB="${RSS_BOUND_MIB:-400}"
TOKEN="load-$(node -e 'process.stdout.write(require("crypto").randomBytes(12).toString("hex"))')"

# shellcheck source=bench/lib/common.sh
. "$repo/bench/lib/common.sh"
bench_tmpdir cache-load

echo "== preparing (work dir $work)"
bundle_cache_server "$work/cache-server.js"
mkdir -p "$work/pool"
for i in $(seq 0 $((POOL - 1))); do
  size=$(node -e 'const [i,n]=process.argv.slice(1).map(Number);process.stdout.write(String(Math.round(12800*Math.pow(67108864/12800,i/(n-1)))))' "$i" "$POOL")
  node "$MAKE_BODY" "$size" "$work/pool/body-$i.tgz" >/dev/null
done
echo "   pool: $POOL bodies, $(du -sm "$work/pool" | cut -f1) MiB, $(stat -c %s "$work/pool/body-0.tgz")..$(stat -c %s "$work/pool/body-$((POOL - 1)).tgz") bytes"
# the big entry, streamed to disk (never in memory): one tar member of random bytes, gzip level 1
BIG="$work/big.tgz"
node -e '
const { createWriteStream } = require("fs"); const { createGzip } = require("zlib"); const { randomFillSync } = require("crypto");
const { Header } = require("tar"); const size = Number(process.argv[1]) * 1048576;
const gz = createGzip({ level: 1 }); gz.pipe(createWriteStream(process.argv[2]));
const h = Buffer.alloc(512); new Header({ path: "dist/big.bin", type: "File", size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }).encode(h, 0);
gz.write(h); let left = size; const chunk = Buffer.alloc(1048576);
(function more() { while (left > 0) { randomFillSync(chunk); const n = Math.min(left, chunk.length); left -= n; if (!gz.write(Buffer.from(chunk.subarray(0, n)))) return gz.once("drain", more); }
  gz.write(Buffer.alloc((512 - (size % 512)) % 512)); gz.end(Buffer.alloc(1024)); })();
' "$BIG_MIB" "$BIG"
echo "   big entry: $(stat -c %s "$BIG") bytes"

start_replica() { # port store extra-env... -> pid
  local port="$1" store="$2"
  shift 2
  # the bundle loads the AWS SDK through libs/store's lazy require: resolve it from the workspace
  env "$@" NODE_PATH="$repo/node_modules" PORT="$port" HOST=127.0.0.1 BUILDONCE_CACHE_TOKENS="$TOKEN:read-write" BUILDONCE_CACHE_STORE="$store" \
    BUILDONCE_CACHE_MAX_BYTES=$((2 * 1024 * 1024 * 1024)) BUILDONCE_CACHE_SPOOL_DIR="$work/spool" \
    node "$work/cache-server.js" >>"$work/server.log" 2>&1 &
  echo $!
}

RESULTS="$work/results.jsonl"
run_config() { # label replicas store-kind
  local label="$1" n="$2" kind="$3" urls="" pids="" motopid="" store envs=()
  if [ "$kind" = s3 ]; then
    local mport
    mport="$(free_port)"
    moto_server -H 127.0.0.1 -p "$mport" >>"$work/moto.log" 2>&1 &
    motopid=$!
    bench_pids+=("$motopid")
    wait_http "http://127.0.0.1:$mport/"
    envs=(AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL="http://127.0.0.1:$mport")
    env "${envs[@]}" node -e '
const { S3Client, CreateBucketCommand } = require(process.argv[1]);
new S3Client({ forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: "load" })).catch((e) => { console.error(e); process.exit(1); });
' "$repo/node_modules/@aws-sdk/client-s3"
    store="s3://load/cache"
  else
    store="$work/dir-store"
    envs=(BUILDONCE_BENCH=1)
  fi
  for _ in $(seq 1 "$n"); do
    local port pid
    port="$(free_port)"
    pid="$(start_replica "$port" "$store" "${envs[@]}")"
    bench_pids+=("$pid")
    wait_http "http://127.0.0.1:$port/health"
    urls="${urls:+$urls,}http://127.0.0.1:$port"
    pids="${pids:+$pids,}$pid"
  done
  echo "== $label ($n replica(s), pids $pids; load average $(cut -d' ' -f1-3 /proc/loadavg))"
  node "$LOAD" --urls "$urls" --token "$TOKEN" --pids "$pids" --pool "$work/pool" --clients "$CLIENTS" \
    --requests "$REQUESTS" --seconds "$SECONDS_MAX" --big "$BIG" --label "$label" | tee -a "$RESULTS"
  for pid in ${pids//,/ } $motopid; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work/dir-store" "$work/spool"
}

START=$(date +%s)
run_config "directory, 1 replica" 1 dir
run_config "S3 (moto), 1 replica" 1 s3
run_config "S3 (moto), 3 replicas" 3 s3

echo
echo "== results ($CLIENTS clients, 80 % GET / 20 % PUT, bodies 10 KiB-64 MiB log-uniform, + one ${BIG_MIB} MiB PUT+GET)"
# shellcheck disable=SC2016 # a JavaScript program: its ${…} are JavaScript template literals
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const pad = (s, n) => String(s).padEnd(n);
console.log(pad("configuration", 24) + pad("reqs", 6) + pad("errors", 8) + pad("req/s", 8) + pad("MiB/s", 8) + pad("big PUT/GET ms", 18) + "peak RSS MiB per replica");
for (const r of rows) console.log(pad(r.label, 24) + pad(r.requests, 6) + pad(r.errors, 8) + pad(r.reqPerSec, 8) + pad(r.mibPerSec, 8) + pad(r.big ? `${r.big.put.ms}/${r.big.get.ms}` + (r.big.put.status !== 200 || r.big.get.status !== 200 ? ` (${r.big.put.status}/${r.big.get.status})` : "") : "-", 18) + r.peakRssMiB.join(" / "));
const bound = Number(process.argv[2]);
const over = rows.flatMap((r) => r.peakRssMiB.filter((m) => m > bound).map((m) => `${r.label}: ${m} MiB`));
const errs = rows.reduce((a, r) => a + r.errors, 0);
console.log(`errors: ${errs}${errs ? " (FAILED: must be 0)" : ""}; RSS bound ${bound} MiB per replica: ${over.length ? "EXCEEDED (" + over.join(", ") + ")" : "held"}`);
console.log();
console.log(pad("p50 / p99 ms", 20) + rows.map((r) => pad(r.label, 26)).join(""));
const classes = ["GET", "PUT"].flatMap((op) => ["10-100KiB", "0.1-1MiB", "1-10MiB", "10-64MiB"].map((c) => `${op} ${c}`));
for (const c of classes) console.log(pad(c, 20) + rows.map((r) => pad(r.classes[c] ? `${r.classes[c].p50} / ${r.classes[c].p99} (n=${r.classes[c].n})` : "-", 26)).join(""));
' "$RESULTS" "$RSS_BOUND_MIB"
echo "(total $(( $(date +%s) - START )) s; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
