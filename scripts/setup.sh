#!/usr/bin/env bash
# Sets up everything PAL Studio needs on this machine; safe to run again (each step skips what is
# already done). --e2e also installs what the real-VS-Code tests and the studio need (Chromium,
# code-server).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

e2e=()
for arg in "$@"; do
  case "$arg" in
    --e2e) e2e=(--e2e) ;;
    *) echo "setup: unknown option $arg (known: --e2e)" >&2; exit 2 ;;
  esac
done

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if ((node_major < 20)); then
  echo "setup: PAL Studio needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none)); see https://nodejs.org/" >&2
  exit 1
fi

bash scripts/setup-system.sh "${e2e[@]}"

# Node packages: npm ci whenever package.json or the lock file changed since the last install.
stamp=node_modules/.pal-setup-stamp
want=$(cat package.json package-lock.json | sha256sum | cut -c1-16)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: installing Node packages (npm ci)"
  # onnxruntime-node's install script downloads CUDA libraries from GitHub on Linux x64 (npm 11
  # does not run it: package.json allowScripts; npm 10 would). These machines reach no GitHub and
  # run models on the CPU, so set-up skips it; a user's own `npm install` keeps the default, and
  # ONNXRUNTIME_NODE_INSTALL_CUDA=v12 in the environment asks for CUDA here too.
  ONNXRUNTIME_NODE_INSTALL_CUDA="${ONNXRUNTIME_NODE_INSTALL_CUDA:-skip}" npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
else
  echo "setup: Node packages up to date"
fi

if ((${#e2e[@]})); then
  code_server=$(bash scripts/setup-code-server.sh)
  echo "setup: code-server at $code_server"
fi

# Bundles, so that `npm run pal -- …` and the studio work right after set-up.
node scripts/build.mjs
