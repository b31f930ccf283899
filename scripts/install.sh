#!/usr/bin/env bash
# Installs everything jarvis and its tests need: Node 24 if the system's is older,
# npm dependencies, the build, and the gpu-server's Python venv (pocketsphinx engine).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$root"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
if [ ! -x gpu-server/.venv/bin/python ]; then
  python3 -m venv gpu-server/.venv
fi
if ! gpu-server/.venv/bin/python -c 'import jarvis_gpu_server, pocketsphinx, pytest' 2>/dev/null; then
  gpu-server/.venv/bin/pip install -q -e 'gpu-server[pocketsphinx,test]'
fi
