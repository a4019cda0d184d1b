#!/usr/bin/env bash
# Builds Stator and runs it against the built-in S7-1200 simulator (no PLC needed).
#
#   scripts/run.sh          the panel window (needs a display), `stator --demo`
#   scripts/run.sh serve    headless, `stator serve --demo`; open http://127.0.0.1:8765
#
# Extra arguments are passed on to stator (e.g. `scripts/run.sh --kiosk`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --run
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stator/target}"
(cd ui && npm run build --silent)
if [ "${1:-}" = serve ]; then
  shift
  exec cargo run -q --no-default-features -- serve --demo "$@"
fi
exec cargo run -q -- --demo "$@"
