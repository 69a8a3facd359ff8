#!/usr/bin/env bash
# Installs what a fresh machine lacks: Debian packages (offline Rust crates, the arm64 cross toolchain and
# qemu-user, shellcheck, docker-registry + skopeo for the image tests) when apt-get is available and we are root, registers qemu-aarch64 with binfmt_misc
# (so arm64 binaries, and the tests that spawn them, run under emulation), then the npm workspace (npm ci).
# Idempotent and quiet when everything is present.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=0; [ "$(id -u)" = 0 ] && root=1

mapfile -t pkgs < <(grep -vE '^\s*(#|$)' tools/scripts/debian-packages.txt)
missing=()
if command -v dpkg >/dev/null 2>&1; then
  for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$root" = 1 ]; then
    echo "[setup] apt-get install ${missing[*]}"
    for p in "${missing[@]}"; do
      case "$p" in
        *:*) arch="${p##*:}"
             if [ "$arch" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
               echo "[setup] dpkg --add-architecture $arch"
               dpkg --add-architecture "$arch"
             fi ;;
      esac
    done
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] missing Debian packages (${missing[*]}); install them as root (sudo bash tools/scripts/setup.sh), or build from crates.io without BUILDONCE_CARGO_OFFLINE_REGISTRY" >&2
  fi
fi

# qemu-aarch64 through binfmt_misc: what qemu-user-binfmt's systemd unit does on a booted system.
binfmt=/proc/sys/fs/binfmt_misc
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
if [ "$(uname -m)" != aarch64 ] && [ -f "$conf" ] && ! grep -qs '^enabled' "$binfmt/qemu-aarch64"; then
  if [ "$root" = 1 ]; then
    [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
    if [ -e "$binfmt/qemu-aarch64" ]; then echo 1 > "$binfmt/qemu-aarch64"
    elif [ -e "$binfmt/register" ]; then tr -d '\n' < "$conf" > "$binfmt/register" || true
    fi
    if grep -qs '^enabled' "$binfmt/qemu-aarch64"; then echo "[setup] registered qemu-aarch64 with binfmt_misc"
    else echo "[setup] could not register qemu-aarch64 with binfmt_misc: arm64 tests will be skipped" >&2
    fi
  else
    echo "[setup] qemu-aarch64 is not registered with binfmt_misc (needs root: sudo bash tools/scripts/setup.sh): arm64 tests will be skipped" >&2
  fi
fi

if [ ! -d node_modules/.bin ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# pnpm for the adoption e2e's pnpm workspace (corepack cannot fetch it offline; pnpm 11 does not run on Node 20)
if ! command -v pnpm >/dev/null 2>&1; then
  echo "[setup] npm install -g pnpm@10.34.9"
  npm install -g pnpm@10.34.9 --no-audit --no-fund --loglevel=error
fi

# yarn berry for the adoption e2e's yarn workspace (corepack cannot fetch it offline); a yarn 1 on PATH is replaced
if ! command -v yarn >/dev/null 2>&1 || [[ "$(yarn --version 2>/dev/null)" != 4.* ]]; then
  echo "[setup] npm install -g @yarnpkg/cli-dist@4.18.1"
  npm install -g @yarnpkg/cli-dist@4.18.1 --no-audit --no-fund --loglevel=error
fi
