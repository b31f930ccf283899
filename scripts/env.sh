# Sourced by the other scripts: puts Node >= 22 on PATH. The system node may be older
# (Debian's is 20, end of life); the npm registry's `node@24` package carries a Node 24
# binary, installed once into .tools/.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ -x "$root/.tools/node_modules/node/bin/node" ]; then
  export PATH="$root/.tools/node_modules/node/bin:$PATH"
elif [ "$(node_major)" -lt 22 ]; then
  echo "jarvis: system node is $(node --version 2>/dev/null || echo missing); installing Node 24 from the npm registry into .tools/" >&2
  npm install --prefix "$root/.tools" --no-save --no-package-lock --loglevel=error node@24 >/dev/null
  export PATH="$root/.tools/node_modules/node/bin:$PATH"
fi
# Python packages come from the machine's index; don't wait minutes on an unreachable one.
export PIP_RETRIES="${PIP_RETRIES:-0}" PIP_TIMEOUT="${PIP_TIMEOUT:-2}" PIP_DISABLE_PIP_VERSION_CHECK=1
