#!/usr/bin/env bash
# Installs what building and testing Stator needs on a fresh Debian machine. Idempotent: skips
# what is already there. Needs root (or sudo) for apt-get. `--run` installs only what running
# needs (no test tools).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(build-essential pkg-config libwebkit2gtk-4.1-dev webkit2gtk-driver xvfb xauth chromium mosquitto)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Rust toolchain components used by the checks.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

# Front-end dependencies (lock files are committed; npm ci is reproducible).
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules ]; then
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ "${1:-}" = --run ]; then exit 0; fi
if [ -f tests/browser/package.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts)
fi

# A second, independent OPC UA client (Python asyncua) for the simulator interop test.
VENV="${STATOR_CACHE:-$HOME/.cache/stator}/venv"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/interop/requirements.txt

# WebDriver bridge for the desktop window test.
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  cargo install tauri-driver --locked --version ^2 -q
fi
