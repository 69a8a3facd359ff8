#!/usr/bin/env bash
# A local OCI registry for the README's image walkthrough: Debian's docker-registry (CNCF distribution)
# on 127.0.0.1:${REGISTRY_PORT:-5000}, storage and config under .buildonce/registry (gitignored), deletes
# enabled; `start` also pushes the stand-in Lambda base image (tools/scripts/image-base.ts).
# usage: tools/scripts/local-registry.sh start|stop
set -euo pipefail
cd "$(dirname "$0")/../.."
port="${REGISTRY_PORT:-5000}"
dir=.buildonce/registry
case "${1:-}" in
  start)
    command -v docker-registry >/dev/null || { echo "docker-registry is missing: run tools/scripts/setup.sh" >&2; exit 1; }
    mkdir -p "$dir/data"
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n  secret: local-only\n' "$PWD/$dir/data" "$port" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null || { cat "$dir/registry.log" >&2; exit 1; }
    node -r @swc-node/register tools/scripts/image-base.ts "127.0.0.1:$port"
    ;;
  stop)
    if [ -f "$dir/pid" ]; then kill "$(cat "$dir/pid")" 2>/dev/null || true; fi
    rm -f "$dir/pid"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
