#!/usr/bin/env bash
# Publishing a large artifact (200 MiB, random bytes) to S3 (moto_server), in one run:
#   aws s3 cp of the file (baseline) | buildonce publishArtifact (multipart, SHA256 checksums, HeadObject
#   verification, manifest last) | the same through a fault proxy failing 30 % of requests (500, 503
#   SlowDown, connection resets, applied-but-response-lost).
# Prints wall time and throughput (MiB/s) of each, buildonce/CLI throughput ratio (target >= 1.0), peak RSS
# of the publishing process (target <= 150 MiB), and after the faulty run that the stored version verifies.
# BENCH_MIB changes the size (default 200).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib/common.sh
. "$repo/bench/lib/common.sh"
mib="${BENCH_MIB:-200}"
work="$(mktemp -d /tmp/buildonce-bench-publish-large-XXXXXX)"
moto_pid="" proxy_pid=""
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
command -v moto_server >/dev/null 2>&1 || { echo "moto_server is required"; exit 1; }
start_moto
aws s3api create-bucket --bucket bench >/dev/null
mkdir -p "$work/a" "$work/b"
head -c "$((mib * 1024 * 1024))" /dev/urandom >"$work/a/bootstrap.zip"
cp "$work/a/bootstrap.zip" "$work/b/bootstrap.zip"
ms() { date +%s%3N; }
# The helper runs bundled with esbuild, as the plugin's executors do (tools/executors/build.mjs): RSS and
# start-up are those of the shipped code, not of on-the-fly TypeScript transpiling. AWS SDK from node_modules.
"$repo/node_modules/.bin/esbuild" "$repo/bench/lib/publish-large.ts" --bundle --platform=node --target=node20 --log-level=warning \
  --external:'@aws-sdk/*' --outfile="$work/publish-large.js"
helper() { NODE_PATH="$repo/node_modules" NODE_NO_WARNINGS=1 node "$work/publish-large.js" "$@"; }
rate() { awk -v b="$((mib * 1024 * 1024))" -v t="$1" 'BEGIN{printf "%.1f", b / 1048576 / (t / 1000)}'; }

# baseline: the AWS CLI (multipart, 8 MiB parts, 10 threads by default); peak RSS from GNU time
t0=$(ms)
/usr/bin/time -f '%M' -o "$work/cli.rss" aws s3 cp --only-show-errors "$work/a/bootstrap.zip" s3://bench/cli/bootstrap.zip
t1=$(ms)
cli_ms=$((t1 - t0))
cli_rss=$(( $(tail -n 1 "$work/cli.rss") / 1024 ))

ours="$(helper publish "$work/a/bootstrap.zip" s3://bench/team 1001)"
ours_ms="$(node -p "JSON.parse(process.argv[1]).ms" "$ours")"
ours_rss="$(node -p "JSON.parse(process.argv[1]).maxRssMiB" "$ours")"

# 30 % faults: the proxy runs in its own process so its buffers are not counted in the publisher's RSS
NODE_PATH="$repo/node_modules" node "$work/publish-large.js" proxy "$AWS_ENDPOINT_URL" 0.3 >"$work/proxy.out" 2>"$work/proxy.err" & proxy_pid=$!
for _ in $(seq 1 100); do [ -s "$work/proxy.out" ] && break; sleep 0.1; done
proxy_url="$(head -n 1 "$work/proxy.out")"
faulty="$(AWS_ENDPOINT_URL="$proxy_url" helper publish "$work/b/bootstrap.zip" s3://bench/faulty 1002 || true)"
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=""
faulty_ms="$(node -p "JSON.parse(process.argv[1]).ms" "$faulty")"
faulty_rss="$(node -p "JSON.parse(process.argv[1]).maxRssMiB" "$faulty")"
faulty_attempts="$(node -p "JSON.parse(process.argv[1]).attempts + ' attempt(s), ' + JSON.parse(process.argv[1]).status" "$faulty")"
stats="$(grep -m1 "^{" "$work/proxy.err" || echo "{}")"; [ "$stats" != "{}" ] || { echo "fault proxy did not report:"; cat "$work/proxy.err"; }
verified="$(helper verify s3://bench/faulty 1002 2>&1 || true)"

printf '%s MiB artifact to moto_server\n' "$mib"
printf '  aws s3 cp (baseline)          %7d ms  %7s MiB/s  peak RSS %4d MiB\n' "$cli_ms" "$(rate "$cli_ms")" "$cli_rss"
printf '  buildonce publish             %7d ms  %7s MiB/s  peak RSS %4d MiB  (target <= 150)\n' "$ours_ms" "$(rate "$ours_ms")" "$ours_rss"
printf '  buildonce publish, 30%% faults %7d ms  %7s MiB/s  peak RSS %4d MiB  (%s)\n' "$faulty_ms" "$(rate "$faulty_ms")" "$faulty_rss" "$faulty_attempts"
printf '  throughput ratio buildonce/CLI: %s (target >= 1.0)\n' "$(awk -v a="$cli_ms" -v b="$ours_ms" 'BEGIN{printf "%.2f", a / b}')"
printf '  faults injected: %s\n' "$(node -p "const s=JSON.parse(process.argv[1]); s.injected + ' of ' + s.requests + ' requests ' + JSON.stringify(s.faults)" "$stats")"
printf '  stored version after the faulty run verifies (size + sha256, nothing partial): %s\n' "$verified"
