#!/usr/bin/env bash
# Ruff over the Python code (ruff.toml): lint, then the formatting check. --fix fixes what it can
# and formats. Ruff comes with the tests' requirements (src/trainer/requirements-test.txt) into
# set-up's virtual environment; PAL_PYTHON (or the venv set-up made) names the interpreter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cache=${PAL_STUDIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pal-studio}
python=${PAL_PYTHON:-}
if [[ -z $python ]]; then
  if [[ -x $cache/python/bin/python ]]; then python=$cache/python/bin/python; else python=$cache/python/Scripts/python.exe; fi
fi
if ! "$python" -m ruff --version >/dev/null 2>&1; then
  echo "lint-python: $python has no ruff; run: bash scripts/setup.sh --e2e (it installs the tests' requirements)" >&2
  exit 1
fi
if [[ ${1:-} == --fix ]]; then
  "$python" -m ruff check --fix .
  "$python" -m ruff format .
else
  "$python" -m ruff check .
  "$python" -m ruff format --check .
fi
