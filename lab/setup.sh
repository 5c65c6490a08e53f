#!/usr/bin/env bash
# Installs what the lab and the tests need, only what is missing: Debian packages, uv,
# the Python environment and the Go-built servers (cached under ~/.cache/switchboard,
# keyed by version). Idempotent; fast when warm.
set -euo pipefail
cd "$(dirname "$0")/.."

LIVEKIT_SERVER_VERSION=v1.13.5
# v1.11.x is what we want, but the Go module proxy serves livekit/sip only up to v1.8.0.
LIVEKIT_SIP_VERSION=v1.8.0
CACHE=${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}
BIN=$CACHE/bin
APT_PACKAGES=(redis-server sip-tester espeak-ng iproute2 libportaudio2 pkg-config gcc
              libopus-dev libopusfile-dev libsoxr-dev postgresql sox prometheus
              chromium)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    log "missing Debian packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v uv >/dev/null; then
  log "installing uv"
  python3 -m pip install --quiet uv
fi

command -v go >/dev/null || { log "Go is needed to build the lab servers: install Go 1.26+"; exit 1; }
mkdir -p "$BIN"
if [[ ! -x $BIN/livekit-server-$LIVEKIT_SERVER_VERSION ]]; then
  log "building livekit-server $LIVEKIT_SERVER_VERSION (a few minutes, once)"
  tmp=$(mktemp -d)
  CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN=$tmp \
    go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_SERVER_VERSION"
  mv "$tmp/server" "$BIN/livekit-server-$LIVEKIT_SERVER_VERSION"
  rmdir "$tmp"
fi
if [[ ! -x $BIN/livekit-sip-$LIVEKIT_SIP_VERSION ]]; then
  log "building livekit-sip $LIVEKIT_SIP_VERSION (a few minutes, once)"
  (cd lab/go && CGO_ENABLED=1 GOTOOLCHAIN=local \
     go build -o "$BIN/livekit-sip-$LIVEKIT_SIP_VERSION.tmp" github.com/livekit/sip/cmd/livekit-sip)
  mv "$BIN/livekit-sip-$LIVEKIT_SIP_VERSION.tmp" "$BIN/livekit-sip-$LIVEKIT_SIP_VERSION"
fi
ln -sf "livekit-server-$LIVEKIT_SERVER_VERSION" "$BIN/livekit-server"
ln -sf "livekit-sip-$LIVEKIT_SIP_VERSION" "$BIN/livekit-sip"

# Byte-compiled once here: where PYTHONDONTWRITEBYTECODE is set (as in many CI images),
# every worker and job start would otherwise compile the framework again, which on a busy
# 2-core machine took longer than the lab's wait for a worker to register.
uv sync --frozen --quiet --compile-bytecode
log "ready: $(basename "$(readlink "$BIN/livekit-server")"), $(basename "$(readlink "$BIN/livekit-sip")")"
