#!/usr/bin/env bash
# Runs every check and test of Stator, exactly as CI does (`.ci/run` calls this script).
# Installs its own prerequisites first (scripts/setup.sh). Exit code 0 only when all pass.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

scripts/setup.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stator/target}"
export CARGO_TERM_COLOR=never
export PATH="$HOME/.cargo/bin:$PATH"
LOG_DIR="$ROOT/tests/artifacts"
mkdir -p "$LOG_DIR"
CARGO_LOG="$LOG_DIR/cargo-test.log"

step() { echo; echo "=== $* ($(date +%H:%M:%S)) ==="; }

step "format"
cargo fmt --all --check

step "module graph (lower modules never import higher ones)"
scripts/check-modules.sh

step "UI build and unit tests (Vitest)"
(cd ui && npm run build && npm test)

step "clippy (headless)"
cargo clippy --no-default-features --all-targets -- -D warnings

step "Rust tests (headless build, real OPC UA over TCP, real SQLite, real sockets)"
cargo test --no-default-features 2>&1 | tee "$CARGO_LOG"
export STATOR_BIN="$CARGO_TARGET_DIR/debug/stator"

step "simulator interop with a second OPC UA implementation (Python asyncua)"
"${STATOR_CACHE:-$HOME/.cache/stator}/venv/bin/python" -m pytest -q tests/interop

step "browser end to end (Playwright + Debian chromium, against stator serve --demo)"
(cd tests/browser && node --test --test-reporter=spec)

step "desktop build (feature desktop: Tauri + WebKitGTK) and clippy"
cargo clippy --all-targets -- -D warnings
cargo build
export STATOR_BIN="$CARGO_TARGET_DIR/debug/stator"

step "desktop window end to end (tauri-driver + WebKitWebDriver under Xvfb)"
xvfb-run -a node --test --test-concurrency=1 --test-reporter=spec tests/desktop/

passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$CARGO_LOG" | awk '{s+=$4} END {print s+0}')
echo
echo "rust: $passed passed, 0 failed"
