#!/usr/bin/env bash
# Cold vs warm publish of rust-scorer through the real nx CLI, in a temp copy of the workspace.
#   cold: empty store, empty Nx cache, no cargo target dir -> cargo build + zip + upload
#   warm: same sources again -> Nx cache hit for build, version already published, nothing uploaded
# Prints both wall times (ms) and warm/cold ratio (target: < 10%) for arm64 (rust-scorer's architecture,
# cross-built) beside x86_64 (the host's), on the embedded file store, and arm64 on S3 (moto_server) when
# moto_server is installed. Runs node_modules/.bin/nx directly: `npx nx` adds
# npm's own start-up (~0.25 s) to both runs.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
export BUILDONCE_CARGO_OFFLINE_REGISTRY="${BUILDONCE_CARGO_OFFLINE_REGISTRY-/usr/share/cargo/registry}"
# shellcheck source=bench/lib/common.sh
. "$repo/bench/lib/common.sh"
work="" moto_pid=""
cleanup() { [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; [ -n "$work" ] && rm -rf "$work"; }
trap cleanup EXIT
bench_workspace publish

ms() { date +%s%3N; }
# set_arch ARCH: rust-scorer's build architecture (and its hashed toolchain identity) in the temp workspace
set_arch() {
  node -e '
    const fs = require("fs"), p = "apps/rust-scorer/project.json", j = JSON.parse(fs.readFileSync(p, "utf8")), a = process.argv[1];
    const b = j.targets.build;
    b.options.architecture = a;
    b.inputs = b.inputs.map((i) => (i.runtime ? { runtime: i.runtime.replace(/--architecture \S+/, "--architecture " + a) } : i));
    fs.writeFileSync(p, JSON.stringify(j, null, 2) + "\n");' "$1"
}
run_pair() { # $1 label, rest env assignments
  local label=$1; shift
  rm -rf dist .buildonce .nx apps/rust-scorer/target
  export NX_CACHE_DIRECTORY="$work/.nx-cache-$label"
  local t0 t1 t2
  t0=$(ms); env "$@" node_modules/.bin/nx run rust-scorer:publish --output-style=stream >"$work/$label-cold.log" 2>&1 || { tail -20 "$work/$label-cold.log"; exit 1; }; t1=$(ms)
  env "$@" node_modules/.bin/nx run rust-scorer:publish --output-style=stream >"$work/$label-warm.log" 2>&1 || { tail -20 "$work/$label-warm.log"; exit 1; }; t2=$(ms)
  grep -q "already published" "$work/$label-warm.log" || { echo "warm run did not report already-published"; cat "$work/$label-warm.log"; exit 1; }
  grep -Eq "rust-scorer:build +\[(local cache|existing outputs)" "$work/$label-warm.log" || { echo "warm run was not a build cache hit"; exit 1; }
  local cold=$((t1 - t0)) warm=$((t2 - t1))
  printf '%-13s cold publish: %6d ms   warm (no-op) publish: %5d ms   warm/cold: %5.1f%%\n' "$label" "$cold" "$warm" "$(awk -v w="$warm" -v c="$cold" 'BEGIN{printf "%.1f", 100*w/c}')"
}

set_arch arm64
run_pair file-arm64 BUILDONCE_STORE="file://$work/.buildonce/store"
set_arch x86_64
run_pair file-x86_64 BUILDONCE_STORE="file://$work/.buildonce/store"
set_arch arm64

if command -v moto_server >/dev/null 2>&1; then
  start_moto
  aws s3api create-bucket --bucket bench >/dev/null
  run_pair s3-arm64 BUILDONCE_STORE="s3://bench/team"
fi
