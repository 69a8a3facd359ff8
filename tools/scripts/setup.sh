#!/usr/bin/env bash
# Installs what a fresh machine lacks: Debian packages (offline Rust crates, shellcheck) when
# apt-get is available and we are root (incl. docker-registry + skopeo for the image tests), then the npm workspace (npm ci). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."

mapfile -t pkgs < <(grep -vE '^\s*(#|$)' tools/scripts/debian-packages.txt)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[setup] apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[setup] missing Debian packages (${missing[*]}); install them or build from crates.io without BUILDONCE_CARGO_OFFLINE_REGISTRY" >&2
  fi
fi

if [ ! -d node_modules/.bin ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
