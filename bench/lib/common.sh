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
