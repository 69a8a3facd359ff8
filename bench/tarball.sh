#!/usr/bin/env bash
# express-api deployment tarball, through the real nx CLI in a temp copy of the workspace:
#   package time   nx run express-api:build --skip-nx-cache (wall, and esbuild+tar+gzip inside the executor)
#   cache hit      nx run express-api:build again (the version is known without packaging)
#   tarball size   bytes of express-api-deployment.tar.gz, unpacked bytes and files
#   boot           node main.js in an empty directory (no node_modules) -> first 200 from GET /health,
#                  ${BOOT_RUNS:-5} runs, min and median
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
runs="${BOOT_RUNS:-5}"
work="$(mktemp -d /tmp/buildonce-bench-tarball-XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

tar -C "$repo" --exclude=./node_modules --exclude=./dist --exclude=./.nx --exclude=./.buildonce --exclude='*/target' --exclude=./.git -cf - . | tar -C "$work" -xf -
ln -s "$repo/node_modules" "$work/node_modules"
cd "$work"
git init -q -b main && git add -A && git -c user.email=b@b -c user.name=bench commit -qm bench
export NX_CACHE_DIRECTORY="$work/.nx-cache"

ms() { date +%s%3N; }
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

npx nx run express-api:build --skip-nx-cache --output-style=stream >"$work/warmup.log" 2>&1 || { cat "$work/warmup.log"; exit 1; }
t0=$(ms)
npx nx run express-api:build --skip-nx-cache --output-style=stream >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
t1=$(ms)
npx nx run express-api:build --output-style=stream >"$work/hit.log" 2>&1
t2=$(ms)
inner="$(grep -o 'in [0-9]* ms' "$work/build.log" | tail -n 1 | tr -dc 0-9)"
tarball="$work/dist/apps/express-api/express-api-deployment.tar.gz"
version="$(node -p 'require(process.argv[1]).version' "$work/dist/apps/express-api/artifact.json")"
size="$(stat -c %s "$tarball")"

app="$(mktemp -d /tmp/buildonce-bench-boot-XXXXXX)"
tar -xzf "$tarball" -C "$app"
unpacked="$(du -sb "$app" | cut -f1)"
files="$(find "$app" -type f | wc -l)"

boots=()
for _ in $(seq 1 "$runs"); do
  port="$(free_port)"
  b0=$(ms)
  (cd "$app" && PORT="$port" exec node main.js >/dev/null 2>&1) &
  server_pid=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$port/health"; do
    kill -0 "$server_pid" 2>/dev/null || { echo "server exited before answering"; exit 1; }
    sleep 0.005
  done
  b1=$(ms)
  boots+=($((b1 - b0)))
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
done
rm -rf "$app"
mapfile -t sorted < <(printf '%s\n' "${boots[@]}" | sort -n)

printf 'express-api version %s\n' "$version"
printf 'package time:        %6d ms  nx run express-api:build --skip-nx-cache (wall; esbuild+tar+gzip in the executor: %s ms)\n' "$((t1 - t0))" "${inner:-?}"
printf 'cache hit:           %6d ms  nx run express-api:build (same sources)\n' "$((t2 - t1))"
printf 'tarball size:        %6d bytes (%s kB); unpacked %d bytes in %d files\n' "$size" "$((size / 1000))" "$unpacked" "$files"
printf 'boot to first 200:   %6d ms  min of %d; median %d ms (node main.js -> GET /health)\n' "${sorted[0]}" "$runs" "${sorted[$((runs / 2))]}"
