# shellcheck shell=bash disable=SC2154,SC2034
# Shared by the bench scripts (source it; needs $repo set to the repository root).

# bench_workspace NAME: copies the repository's sources (no node_modules, dist, .nx, .buildonce, cargo
# target, .git) into a fresh temp dir, symlinks node_modules, commits it as a git repo, cds into it and
# sets $work. The caller removes $work in its EXIT trap.
bench_workspace() {
  work="$(mktemp -d "/tmp/buildonce-bench-$1-XXXXXX")"
  tar -C "$repo" --exclude=./node_modules --exclude=./dist --exclude=./.nx --exclude=./.buildonce --exclude='*/target' --exclude=./.git -cf - . | tar -C "$work" -xf -
  ln -s "$repo/node_modules" "$work/node_modules"
  cd "$work" || return 1
  git init -q -b main && git add -A && git -c user.email=b@b -c user.name=bench commit -qm bench
}

# start_moto: starts moto_server on a free loopback port, waits until it answers, exports dummy AWS
# credentials and AWS_ENDPOINT_URL, and sets $moto_pid (kill it in the EXIT trap).
start_moto() {
  local port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  moto_server -H 127.0.0.1 -p "$port" >"${work:-/tmp}/moto.log" 2>&1 & moto_pid=$!
  for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$port/moto-api/" >/dev/null && break; sleep 0.1; done
  export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_EC2_METADATA_DISABLED=true
}

# bench_tmpdir NAME: sets $work to a fresh directory ${TMPDIR:-/tmp}/buildonce-NAME.XXXXXX and $bench_pids to
# an empty array (append the pid of every background process to it); on EXIT those processes are ended
# and reaped and $work is removed. For benches that run against the repository itself.
bench_tmpdir() {
  work="$(mktemp -d "${TMPDIR:-/tmp}/buildonce-$1.XXXXXX")"
  bench_pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local pid
  for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${bench_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}

# free_port: prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close()})'; }

# wait_http URL [TOKEN]: polls URL (sending `Authorization: Bearer TOKEN` when given) every 0.2 s until it
# answers with a status below 500; after 300 tries (about a minute) says so on stderr and returns 1.
wait_http() {
  for _ in $(seq 1 300); do
    if node -e 'fetch(process.argv[1],{headers:process.argv[2]?{authorization:"Bearer "+process.argv[2]}:{}}).then(r=>process.exit(r.status<500?0:1),()=>process.exit(1))' "$1" "${2:-}"; then return 0; fi
    sleep 0.2
  done
  echo "server at $1 did not come up" >&2
  return 1
}

# bundle_cache_server OUT: apps/cache-server/src/main.ts bundled by the workspace's esbuild into the one
# CommonJS file OUT (node 20), as the cache-server benches run it.
bundle_cache_server() {
  "$repo/node_modules/.bin/esbuild" "$repo/apps/cache-server/src/main.ts" --bundle --platform=node --target=node20 --format=cjs \
    --legal-comments=none --log-level=warning --outfile="$1"
}
