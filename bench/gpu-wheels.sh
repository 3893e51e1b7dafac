#!/usr/bin/env bash
# Fetches, into .whl/, the wheels bench/gpu.sh needs that a GPU machine's image may lack (TRL,
# datasets and what they need beyond transformers, accelerate, PEFT, pandas and pyarrow), for the
# CPython 3.12 of the lent machines (/work/.library/device/KINDS.md). Versions as the test lock's
# (src/trainer/requirements-test.txt). Run on a machine with PyPI; carry .whl to the GPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
lock=src/trainer/requirements-test.txt
pin() { grep -E "^$1==" "$lock" | cut -d' ' -f1; }
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
for name in trl datasets dill multiprocess; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$(pin "$name")"
done
ls -l .whl
