#!/usr/bin/env bash
# The GPU rows of docs/performance.md (issue 20): the trainer against its peers on one CUDA GPU in
# bf16, with MFU against the datasheet's dense bf16 peak (H100 and H200 SXM: 989 TFLOP/s;
# PAL_PEAK_TFLOPS for another card). Two rows:
#   - the 135M base (SmolLM2's shape) with LoRA, stage 1 and DPO, vs transformers' Trainer and
#     TRL's DPOTrainer with PEFT;
#   - a 30M model trained in full, stage 1 and DPO, vs the plain loop and transformers/TRL
#     (the goal: 40% MFU).
# Needs a python3 with a CUDA torch (PAL_PYTHON picks one). TRL and its datasets are not in every
# image: wheels in .whl/ (bench/gpu-wheels.sh fetches them, on a machine with PyPI) are put on
# the path first. Writes the JSON of each row to $OUT (default bench/gpu-results) and prints it.
#
#   bash bench/gpu.sh            # about 4 minutes on an H100
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${PAL_PYTHON:-python3}
peak=${PAL_PEAK_TFLOPS:-989}
out=${OUT:-bench/gpu-results}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/pal-site .whl/*.whl
  export PYTHONPATH=/tmp/pal-site${PYTHONPATH:+:$PYTHONPATH}
fi
peers=plain,transformers
"$python" -c 'import trl, datasets' 2>/dev/null || {
  echo "gpu.sh: TRL or datasets is missing (bash bench/gpu-wheels.sh, then carry .whl): the plain peer only" >&2
  peers=plain
}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.csv"
common=(--device cuda --precision bf16 --stages sft,dpo --lengths 512 --batch 64 --rounds 1 --peak-tflops "$peak" --memory)
if [[ $peers == *transformers* ]]; then
  "$python" bench/trainer_bench.py "${common[@]}" --sizes 135m --lora --peers transformers --steps 12 | tee "$out/135m-lora.json"
fi
"$python" bench/trainer_bench.py "${common[@]}" --sizes 30m --peers "$peers" --steps 20 | tee "$out/30m-full.json"
