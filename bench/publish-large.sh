#!/usr/bin/env bash
# Moving a large artifact (200 MiB, random bytes) to and from S3 (moto_server), ROUNDS rounds (default 3),
# medians per row:
#   publish: aws s3 cp of the file (baseline) | buildonce publishArtifact (streamed multipart, SHA256 part
#     checksums, composite verification, manifest last) | the same through a fault proxy failing 30 % of
#     requests (500, 503 SlowDown, connection resets, applied-but-response-lost);
#   fetch (a node-tarball of the same size): aws s3 cp down + sha256sum + tar -xzf (baseline) | the local
#     target's deployLocal (one streamed download-verify pass, unpack from the verified file, flip `current`)
#     given the manifest as promotion hands it over | the same preceded by promotion's verifyArtifact.
# Prints wall time and throughput (MiB/s) of each, ratios to the baselines, peak RSS of the buildonce process
# (target <= 150 MiB), and that the stored version of each faulty run verifies. BENCH_MIB changes the size.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib/common.sh
. "$repo/bench/lib/common.sh"
mib="${BENCH_MIB:-200}"
rounds="${ROUNDS:-3}"
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
mkdir -p "$work/a" "$work/t/src"
head -c "$((mib * 1024 * 1024))" /dev/urandom >"$work/a/bootstrap.zip"
# the fetch artifact: a node-tarball of the same size (random, so gzip -1 keeps it at ~mib MiB)
printf 'console.log("big")\n' >"$work/t/src/main.js"
for i in 1 2 3 4; do head -c "$((mib * 1024 * 1024 / 4))" /dev/urandom >"$work/t/src/data-$i.bin"; done
tar -C "$work/t/src" -cf - . | gzip -1 >"$work/t/app.tar.gz"
rm -rf "$work/t/src"
tgz_bytes=$(stat -c %s "$work/t/app.tar.gz")
ms() { date +%s%3N; }
# The helper runs bundled with esbuild, as the plugin's executors do (tools/executors/build.mjs): RSS and
# start-up are those of the shipped code, not of on-the-fly TypeScript transpiling. AWS SDK from node_modules.
"$repo/node_modules/.bin/esbuild" "$repo/bench/lib/publish-large.ts" --bundle --platform=node --target=node20 --log-level=warning \
  --external:'@aws-sdk/*' --outfile="$work/publish-large.js"
helper() { NODE_PATH="$repo/node_modules" NODE_NO_WARNINGS=1 node "$work/publish-large.js" "$@"; }
field() { node -p "JSON.parse(process.argv[1]).$2" "$1"; }
rss_of() { echo $(( $(tail -n 1 "$1") / 1024 )); }
median() { tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
rate() { awk -v b="$2" -v t="$1" 'BEGIN{printf "%.1f", b / 1048576 / (t / 1000)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; }
bytes=$((mib * 1024 * 1024))

# the tarball the fetch rows download, published once
tgz_out="$(helper publish "$work/t/app.tar.gz" s3://bench/fetch 2001)"
[ "$(field "$tgz_out" status)" = published ] || { echo "publishing the fetch tarball failed: $tgz_out"; exit 1; }

cli_ms="" cli_rss="" ours_ms="" ours_rss="" faulty_ms="" faulty_rss="" faulty_notes="" verified=""
down_ms="" down_rss="" fetch_ms="" fetch_rss="" promote_ms="" promote_rss="" stats_all=""
for r in $(seq 1 "$rounds"); do
  # publish baseline: the AWS CLI (multipart, 8 MiB parts, 10 threads by default); peak RSS from GNU time
  t0=$(ms)
  /usr/bin/time -f '%M' -o "$work/cli.rss" aws s3 cp --only-show-errors "$work/a/bootstrap.zip" "s3://bench/cli$r/bootstrap.zip"
  t1=$(ms)
  cli_ms+=" $((t1 - t0))"; cli_rss+=" $(rss_of "$work/cli.rss")"

  ours="$(helper publish "$work/a/bootstrap.zip" "s3://bench/team$r" "100$r")"
  ours_ms+=" $(field "$ours" ms)"; ours_rss+=" $(field "$ours" maxRssMiB)"

  # 30 % faults: the proxy runs in its own process so its buffers are not counted in the publisher's RSS
  NODE_PATH="$repo/node_modules" node "$work/publish-large.js" proxy "$AWS_ENDPOINT_URL" 0.3 >"$work/proxy.out" 2>"$work/proxy.err" & proxy_pid=$!
  for _ in $(seq 1 100); do [ -s "$work/proxy.out" ] && break; sleep 0.1; done
  proxy_url="$(head -n 1 "$work/proxy.out")"
  faulty="$(AWS_ENDPOINT_URL="$proxy_url" helper publish "$work/a/bootstrap.zip" "s3://bench/faulty$r" "110$r" || true)"
  kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=""
  faulty_ms+=" $(field "$faulty" ms)"; faulty_rss+=" $(field "$faulty" maxRssMiB)"
  faulty_notes+="$(node -p "const f=JSON.parse(process.argv[1]); f.attempts + ' attempt(s), ' + f.status + (f.errors.length ? ' (' + f.errors.join(' | ') + ')' : '')" "$faulty"); "
  stats="$(grep -m1 "^{" "$work/proxy.err" || echo "{}")"; [ "$stats" != "{}" ] || { echo "fault proxy did not report:"; cat "$work/proxy.err"; }
  stats_all+="$(node -p "const s=JSON.parse(process.argv[1]); s.injected + ' of ' + s.requests + ' requests ' + JSON.stringify(s.faults)" "$stats"); "
  verified+="$(helper verify "s3://bench/faulty$r" "110$r" 2>&1 || true) "

  # fetch baseline: the CLI downloads, sha256sum checks, tar unpacks
  rm -rf "$work/down" && mkdir -p "$work/down/x"
  t0=$(ms)
  /usr/bin/time -f '%M' -o "$work/down.rss" aws s3 cp --only-show-errors "s3://bench/fetch/artifacts/big/2001/app.tar.gz" "$work/down/app.tar.gz"
  sha256sum "$work/down/app.tar.gz" >/dev/null
  tar -C "$work/down/x" -xzf "$work/down/app.tar.gz"
  t1=$(ms)
  down_ms+=" $((t1 - t0))"; down_rss+=" $(rss_of "$work/down.rss")"
  rm -rf "$work/down"

  rm -rf "$work/deploy"
  f="$(helper fetch s3://bench/fetch 2001 "$work/deploy")"
  fetch_ms+=" $(field "$f" ms)"; fetch_rss+=" $(field "$f" maxRssMiB)"
  rm -rf "$work/deploy"
  p="$(helper fetch s3://bench/fetch 2001 "$work/deploy" --verify)"
  promote_ms+=" $(field "$p" ms)"; promote_rss+=" $(field "$p" maxRssMiB)"
  rm -rf "$work/deploy"
  # keep moto's memory flat across rounds
  for k in "cli$r" "team$r" "faulty$r"; do aws s3 rm --only-show-errors --recursive "s3://bench/$k" >/dev/null; done
done

m_cli=$(median "$cli_ms") m_ours=$(median "$ours_ms") m_faulty=$(median "$faulty_ms") m_down=$(median "$down_ms") m_fetch=$(median "$fetch_ms") m_promote=$(median "$promote_ms")
printf '%s MiB artifact to and from moto_server, median of %s rounds (wall ms per round in brackets)\n' "$mib" "$rounds"
printf '  aws s3 cp up (baseline)               %7d ms  %7s MiB/s  peak RSS %4d MiB  [%s ]\n' "$m_cli" "$(rate "$m_cli" "$bytes")" "$(median "$cli_rss")" "$cli_ms"
printf '  buildonce publish                     %7d ms  %7s MiB/s  peak RSS %4d MiB  [%s ]\n' "$m_ours" "$(rate "$m_ours" "$bytes")" "$(median "$ours_rss")" "$ours_ms"
printf '  buildonce publish, 30%% faults         %7d ms  %7s MiB/s  peak RSS %4d MiB  [%s ]\n' "$m_faulty" "$(rate "$m_faulty" "$bytes")" "$(median "$faulty_rss")" "$faulty_ms"
printf '  aws s3 cp down + sha256sum + tar -x   %7d ms  %7s MiB/s  peak RSS %4d MiB  [%s ]\n' "$m_down" "$(rate "$m_down" "$tgz_bytes")" "$(median "$down_rss")" "$down_ms"
printf '  local target fetch (deployLocal)      %7d ms  %7s MiB/s  peak RSS %4d MiB  [%s ]\n' "$m_fetch" "$(rate "$m_fetch" "$tgz_bytes")" "$(median "$fetch_rss")" "$fetch_ms"
printf '  verifyArtifact + local target fetch   %7d ms  %7s MiB/s  peak RSS %4d MiB  [%s ]\n' "$m_promote" "$(rate "$m_promote" "$tgz_bytes")" "$(median "$promote_rss")" "$promote_ms"
printf '  publish throughput ratio buildonce/CLI: %s (target >= 1.0)\n' "$(ratio "$m_cli" "$m_ours")"
printf '  30%%-fault publish / fault-free CLI: %s (target >= 0.7)\n' "$(ratio "$m_cli" "$m_faulty")"
printf '  fetch ratio local target/CLI+sha256sum+tar: %s (target >= 1.0); with verifyArtifact first: %s\n' "$(ratio "$m_down" "$m_fetch")" "$(ratio "$m_down" "$m_promote")"
printf '  faulty runs: %s\n' "$faulty_notes"
printf '  faults injected per round: %s\n' "$stats_all"
printf '  stored version after each faulty run verifies (size + sha256, nothing partial): %s\n' "$verified"
