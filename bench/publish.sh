#!/usr/bin/env bash
# Cold vs warm publish of rust-scorer through the real nx CLI, in a temp copy of the workspace.
#   cold: empty store, empty Nx cache, no cargo target dir -> cargo build + zip + upload
#   warm: same sources again -> Nx cache hit for build, version already published, nothing uploaded
# Prints both wall times (ms) and warm/cold ratio (target: < 10%) for arm64 (rust-scorer's architecture,
# cross-built) beside x86_64 (the host's), on the embedded file store, and arm64 on S3 (moto_server) when
# moto_server is installed.
# Signing: the warm build published into a fresh store unsigned (baseline) and signed with a local
# P-256 key (BUILDONCE_SIGNING_KEY=file:…), and with a KMS key on moto; prints both wall times and, from
# the publish log, the signing time (statement + DSSE signature; goal: < 50 ms per version with a local
# key) and the build-facts time (one git process, lock file digests; no git process in CI).
# Warm path: the median of ROUNDS (default 5) no-op `nx run <p>:publish` (everything published) beside the
# median of as many cached `nx run <p>:build` of the same project, alternating, and their ratio (goal: <= 1.2x),
# for express-api (package-tarball), a service of a fresh workspace that installed the packed plugin (what users
# run) and rust-scorer (cargo-lambda-zip). WARM_ONLY=1 runs only the two Node services'.
# Runs node_modules/.bin/nx directly: `npx nx` adds
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

sign_pair() { # $1 label, $2 signing key spec, $3 note; the build is a cache hit of the last run_pair
  local label=$1 key=$2 note=${3:-} t0 t1 t2
  rm -rf "$work/sign-store-a" "$work/sign-store-b"
  t0=$(ms); BUILDONCE_STORE="file://$work/sign-store-a" BUILDONCE_SIGNING_KEY='' node_modules/.bin/nx run rust-scorer:publish --output-style=stream >"$work/$label-unsigned.log" 2>&1 || { tail -20 "$work/$label-unsigned.log"; exit 1; }; t1=$(ms)
  BUILDONCE_STORE="file://$work/sign-store-b" BUILDONCE_SIGNING_KEY="$key" node_modules/.bin/nx run rust-scorer:publish --output-style=stream >"$work/$label-signed.log" 2>&1 || { tail -20 "$work/$label-signed.log"; exit 1; }; t2=$(ms)
  grep -q "unsigned: BUILDONCE_SIGNING_KEY is not set" "$work/$label-unsigned.log" || { echo "baseline run did not publish unsigned"; exit 1; }
  local sign facts
  sign=$(sed -n 's/.*signed provenance with .*: signing \([0-9.]*\) ms, build facts.*/\1/p' "$work/$label-signed.log")
  facts=$(sed -n 's/.*build facts (git, lock files) \([0-9.]*\) ms.*/\1/p' "$work/$label-signed.log")
  [ -n "$sign" ] || { echo "signed run did not sign"; cat "$work/$label-signed.log"; exit 1; }
  ls "$work"/sign-store-b/artifacts/rust-scorer/*/provenance.intoto.json >/dev/null
  printf '%-13s unsigned publish: %6d ms   signed publish: %6d ms   in publish: signing %6s ms%s + build facts %6s ms\n' "$label" "$((t1 - t0))" "$((t2 - t1))" "$sign" "$note" "$facts"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
warm_ratio() { # $1 project: cached build vs no-op publish, medians of ROUNDS alternating runs
  local p=$1 rounds=${ROUNDS:-5} builds=() publishes=() t0 t1 t2 b pub f
  f=${p//[@\/]/_} # a log file name for scoped project names
  export NX_CACHE_DIRECTORY="$work/.nx-cache-warm"
  node_modules/.bin/nx run "$p:publish" --output-style=stream >"$work/warm-$f-first.log" 2>&1 || { tail -20 "$work/warm-$f-first.log"; exit 1; }
  for _ in $(seq 1 "$rounds"); do
    t0=$(ms); node_modules/.bin/nx run "$p:build" --output-style=stream >"$work/warm-$f-build.log" 2>&1; t1=$(ms)
    node_modules/.bin/nx run "$p:publish" --output-style=stream >"$work/warm-$f-publish.log" 2>&1; t2=$(ms)
    grep -q "already published" "$work/warm-$f-publish.log" || { echo "$p: publish was not a no-op"; cat "$work/warm-$f-publish.log"; exit 1; }
    grep -Eq "$p:build +\[(local cache|existing outputs)" "$work/warm-$f-build.log" || { echo "$p: build was not a cache hit"; cat "$work/warm-$f-build.log"; exit 1; }
    builds+=($((t1 - t0))); publishes+=($((t2 - t1)))
  done
  b=$(printf '%s\n' "${builds[@]}" | median); pub=$(printf '%s\n' "${publishes[@]}" | median)
  printf 'warm %-12s cached build: %6d ms   no-op publish: %6d ms   publish/build: %4.2fx (goal <= 1.2x; medians of %d)\n' "$p" "$b" "$pub" "$(awk -v a="$pub" -v b="$b" 'BEGIN{printf "%.2f", a/b}')" "$rounds"
}
warm_ratio express-api

# The same ratio where users have it: a fresh create-nx-workspace that `nx add`s the packed plugin (installed
# in node_modules, not a local plugin: Nx resolves a local plugin's executor schemas through TypeScript
# source resolution, ~0.35 s per task process this repository pays and users do not) and a generated service.
adopted_warm_ratio() {
  local tgz
  (cd "$repo" && node_modules/.bin/nx run executors:pack --output-style=stream >"$work/pack.log" 2>&1) || { tail -20 "$work/pack.log"; exit 1; }
  tgz=$(ls "$repo"/dist/packages/buildonce-nx/buildonce-nx-*.tgz)
  (
    export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
    cd "$work" && npx -y create-nx-workspace@23.2.1 acme --preset=ts --nxCloud=skip --packageManager=npm --interactive=false
    cd "$work/acme" && npx nx add "@buildonce/nx@file:$tgz"
    npx nx g @buildonce/nx:node-service api --skipInstall --no-interactive
    npm install --no-audit --no-fund --loglevel=error
    git add -A && git commit -qm 'adopt buildonce'
  ) >"$work/adopt.log" 2>&1 || { tail -30 "$work/adopt.log"; exit 1; }
  (cd "$work/acme" && warm_ratio @acme/api)
}
adopted_warm_ratio
[ "${WARM_ONLY:-}" = 1 ] && exit 0

set_arch arm64
run_pair file-arm64 BUILDONCE_STORE="file://$work/.buildonce/store"
set_arch x86_64
run_pair file-x86_64 BUILDONCE_STORE="file://$work/.buildonce/store"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/signing.pem" 2>/dev/null
sign_pair sign-file "file:$work/signing.pem" " (goal < 50 ms)"
set_arch arm64
warm_ratio rust-scorer

if command -v moto_server >/dev/null 2>&1; then
  start_moto
  aws s3api create-bucket --bucket bench >/dev/null
  run_pair s3-arm64 BUILDONCE_STORE="s3://bench/team"
  kms_key=$(aws kms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY --query KeyMetadata.Arn --output text)
  sign_pair sign-kms "kms:$kms_key" " (KMS Sign on moto, incl. SDK load)"
fi
