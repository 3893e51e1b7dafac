#!/usr/bin/env bash
# Installs the system packages PAL Studio needs on Debian/Ubuntu, and only those that are missing:
#   always:  python3, and python3-venv where `python3 -m venv` cannot work (Debian ships ensurepip
#            separately): scripts/setup-python.sh makes the trainer's virtual environment with it
#   --e2e:   chromium (headless browser for the real-VS-Code tests), libkrb5-dev and pkg-config
#            (code-server compiles a kerberos module at install), and python3-torch (Debian's
#            torch 1.13) with libopenblas0-pthread (without it Debian's torch falls back to the
#            reference BLAS and trains 5-14x slower): the tests keep the trainer working on torch
#            1.x (scripts/test.sh runs its suite there too), and `npm start` does not need them
# Elsewhere it says what to install and exits 0.
set -euo pipefail

e2e=0
for arg in "$@"; do
  case "$arg" in
    --e2e) e2e=1 ;;
    *) echo "setup-system: unknown option $arg (known: --e2e)" >&2; exit 2 ;;
  esac
done

packages=(python3)
# python3 -m venv needs ensurepip, which Debian ships in python3-venv. The python3 on PATH is the
# one setup-python.sh uses (a pyenv or other own build has ensurepip; then nothing is needed).
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  packages+=(python3-venv)
fi
((e2e)) && packages+=(python3-torch libopenblas0-pthread chromium libkrb5-dev pkg-config)

if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
  echo "setup-system: not a Debian/Ubuntu system, so nothing was installed. PAL Studio needs:" >&2
  echo "  - Python 3.10 or newer with venv and pip (scripts/setup-python.sh installs torch into its own environment)" >&2
  ((e2e)) && echo "  - Chromium (set PAL_CHROMIUM to its path) for the real-VS-Code tests" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup-system: all present (${packages[*]})"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "setup-system: these packages are missing and I am not root (no sudo): ${missing[*]}" >&2
    echo "  as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "setup-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Prove the result rather than trust it: Debian's torch must import, with OpenBLAS behind it.
((e2e)) || exit 0
/usr/bin/python3 - <<'PY'
import torch, sys
maps = open("/proc/self/maps").read()
blas = "openblas" if "openblas" in maps else "reference BLAS (slow)"
print(f"setup-system: /usr/bin/python3 has torch {torch.__version__} with {blas}")
sys.exit(0 if blas == "openblas" else 1)
PY
