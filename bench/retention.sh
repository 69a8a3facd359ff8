#!/usr/bin/env bash
# Seeds 5,000 versions across 20 projects in a temp file store (backdated over 120 days, each project
# with a prod ledger), then times `buildonce retention --dry-run` and the real run (defaults: older than
# 30 days, keep 10 newest per project). Prints seed time, both run times, versions deleted, bytes freed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
store="$(mktemp -d /tmp/buildonce-bench-retention-XXXXXX)"
trap 'rm -rf "$store"' EXIT
export SWC_NODE_PROJECT="$repo/tools/executors/tsconfig.cli.json"
ms() { date +%s%3N; }
node tools/executors/build.mjs > /dev/null   # the buildonce bin runs the bundle (dist/cli.js)

t0=$(ms)
node -r @swc-node/register bench/lib/seed-retention.ts "$store" 20 250 120
t1=$(ms)
objects=$(find "$store/artifacts" -type f | wc -l)
echo "seeded 5000 versions ($objects objects) across 20 projects in $((t1 - t0)) ms"

node_modules/.bin/buildonce retention --store="file://$store" --dry-run > "$store.dry.log"
t2=$(ms)
node_modules/.bin/buildonce retention --store="file://$store" > "$store.real.log"
t3=$(ms)
echo "dry run:  $((t2 - t1)) ms  -> $(tail -1 "$store.dry.log")"
echo "real run: $((t3 - t2)) ms  -> $(tail -1 "$store.real.log")"
left=$(find "$store/artifacts" -name manifest.json | wc -l)
echo "versions left: $left"
rm -f "$store.dry.log" "$store.real.log"
