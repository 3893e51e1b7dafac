#!/usr/bin/env bash
# Installs the system packages PAL Studio needs on Debian/Ubuntu, and only those that are missing:
#   always:  python3-torch (the trainer's PyTorch, CPU build) with libopenblas0-pthread (without it
#            Debian's torch falls back to the reference BLAS and trains 5-14x slower), and
#            python3-nltk (an independent BLEU the metrics are cross-checked against)
#   --e2e:   chromium (headless browser for the real-VS-Code tests), libkrb5-dev and pkg-config
#            (code-server compiles a kerberos module at install)
# Elsewhere it says what to install and exits 0: torch can come from pip or conda, and the engine
# finds it (see palStudio.python.path).
set -euo pipefail

e2e=0
for arg in "$@"; do
  case "$arg" in
    --e2e) e2e=1 ;;
    *) echo "setup-system: unknown option $arg (known: --e2e)" >&2; exit 2 ;;
  esac
done

packages=(python3 python3-torch libopenblas0-pthread python3-nltk)
((e2e)) && packages+=(chromium libkrb5-dev pkg-config)

if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
  echo "setup-system: not a Debian/Ubuntu system, so nothing was installed. PAL Studio needs:" >&2
  echo "  - Python 3 with PyTorch >= 1.13 (https://pytorch.org/get-started/locally/) for training" >&2
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
/usr/bin/python3 - <<'PY'
import torch, sys
maps = open("/proc/self/maps").read()
blas = "openblas" if "openblas" in maps else "reference BLAS (slow)"
print(f"setup-system: /usr/bin/python3 has torch {torch.__version__} with {blas}")
sys.exit(0 if blas == "openblas" else 1)
PY
