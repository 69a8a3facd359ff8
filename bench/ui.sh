#!/usr/bin/env bash
# Dashboard cost: a file store with PROJECTS x 5 environments x ENTRIES history entries each (default
# 100 x 5 x 200 = 100 000 entries, generated through the real ledger API, appendEntry), served by
# `buildonce ui`; ROUNDS (default 5) requests of each page, medians of the wall time seen by curl over
# loopback and of the server's own render time (Server-Timing), and the bytes; next to the same store's
# `buildonce releases --json` for all projects (the CLI's own cost, process start-up included) as the
# baseline measured in the same run. Goal: the pipeline page <= 1.0x the CLI's time, <= 300 ms here.
# Pages: pipeline (/), one environment's history (svc-000/prod, ENTRIES entries), the diff of two real
# published versions of svc-000.
# BENCH_UI_DIR=<dir> keeps the seeded workspace there and reuses it on the next run (seeding 100 000 entries
# through the ledger API takes minutes; the measured rounds do not).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
PROJECTS="${PROJECTS:-100}" ENTRIES="${ENTRIES:-200}" ROUNDS="${ROUNDS:-5}"
ENVS=dev,qa,staging,perf,prod
for tool in curl node; do command -v "$tool" >/dev/null || { echo "bench/ui.sh needs $tool"; exit 1; }; done
keep="${BENCH_UI_DIR:-}"
if [ -n "$keep" ]; then mkdir -p "$keep"; work="$(cd "$keep" && pwd)"; else work="$(mktemp -d /tmp/buildonce-bench-ui-XXXXXX)"; fi
ui_pid=""
cleanup() { [ -n "$ui_pid" ] && kill "$ui_pid" 2>/dev/null; [ -n "$keep" ] || rm -rf "$work"; }
trap cleanup EXIT
cd "$repo"
node tools/executors/build.mjs >/dev/null   # the buildonce bin runs the bundle (dist/cli.js)
store="$work/.buildonce/store"
ms() { date +%s%3N; }
seeded=0; [ -f "$work/.seeded-$PROJECTS-$ENTRIES" ] && seeded=1
if [ "$seeded" = 0 ]; then
rm -rf "$store" "$work/.git"
printf '{}\n' >"$work/nx.json"
printf '{"environments":[{"name":"dev"},{"name":"qa","requires":["dev"]},{"name":"staging","requires":["qa"]},{"name":"perf","requires":["staging"]},{"name":"prod","requires":["perf"]}]}\n' >"$work/buildonce.json"
git -C "$work" init -q -b main && git -C "$work" add -A && git -C "$work" -c user.email=b@b -c user.name=bench commit -qm bench
t0=$(ms)
node -r @swc-node/register bench/lib/seed-ui.ts "$store" "$PROJECTS" "$ENVS" "$ENTRIES"
t1=$(ms)
objects=$(find "$store/releases" -type f | wc -l)
echo "seeded $PROJECTS projects x 5 environments x $ENTRIES entries ($objects ledger objects) in $((t1 - t0)) ms"
touch "$work/.seeded-$PROJECTS-$ENTRIES"
else
echo "reusing the store seeded in $work ($(find "$store/releases" -type f | wc -l) ledger objects)"
fi

cd "$work"
bin="$repo/tools/executors/bin/buildonce.js"
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# baseline: the CLI over the same store
cli_times=()
for _ in $(seq 1 "$ROUNDS"); do
  s=$(ms); node "$bin" releases --json >"$work/releases.json"; e=$(ms)
  cli_times+=($((e - s)))
done
cli_bytes=$(wc -c <"$work/releases.json")
cli_ms=$(printf '%s\n' "${cli_times[@]}" | median)

node "$bin" ui --port=0 2>"$work/ui.log" & ui_pid=$!
url=""
for _ in $(seq 1 300); do url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$work/ui.log" | head -1 || true); [ -n "$url" ] && break; sleep 0.1; done
[ -n "$url" ] || { cat "$work/ui.log"; exit 1; }

# page NAME PATH: ROUNDS GETs; prints "name wall_median_ms render_median_ms bytes"
page() {
  local walls=() renders=() bytes=0 out
  for _ in $(seq 1 "$ROUNDS"); do
    out=$(curl -s -D "$work/h" -o "$work/body" -w '%{time_total} %{size_download} %{http_code}' "$url$2")
    [ "${out##* }" = 200 ] || { echo "$2 answered ${out##* }"; head -c 400 "$work/body"; exit 1; }
    walls+=("$(awk '{printf "%.1f", $1 * 1000}' <<<"$out")")
    bytes=$(awk '{print $2}' <<<"$out")
    renders+=("$(grep -io 'render;dur=[0-9.]*' "$work/h" | cut -d= -f2)")
  done
  printf '%-22s %10s %10s %10s\n' "$1" "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${renders[@]}" | median)" "$bytes"
}

echo
echo "medians of $ROUNDS rounds (ms); file store; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-22s %10s %10s %10s\n' what wall render bytes
printf '%-22s %10s %10s %10s\n' "releases --json (CLI)" "$cli_ms" - "$cli_bytes"
pipeline=$(page "pipeline page" "")
echo "$pipeline"
page "history page" "history/svc-000/prod.html"
page "diff page" "diff/svc-000/9000001-9000002.html"
pipe_ms=$(awk '{print $3}' <<<"$pipeline")
awk -v p="$pipe_ms" -v c="$cli_ms" 'BEGIN {printf "pipeline page / CLI = %.2fx (goal <= 1.0x, <= 300 ms)\n", p / c}'
