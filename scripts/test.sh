#!/usr/bin/env bash
# Runs every test: vitest (CLI) and pytest (gpu-server). Installs what is missing first.
set -euo pipefail
trap 'echo "$(basename "$0"): failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
source "$(dirname "$0")/env.sh"
cd "$root"
bash scripts/install.sh
status=0
npx vitest run || status=$?
gpu-server/.venv/bin/python -m pytest gpu-server/tests -q -p no:cacheprovider || status=$?
exit $status
