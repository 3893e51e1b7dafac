"""A tiny random llama (GQA, tied embeddings) for the engine's inference tests, saved and exported
for transformers.js, with PyTorch's greedy continuation of given prompts to compare against.

    python make_tiny_export.py <vocab_size> <eos_id> <out_folder> '<json list of prompt id lists>' <new_tokens>

Writes <out>/hf (save_pretrained), <out>/onnx (the export; tokenizer files found in <out>/hf are
copied) and prints {"greedy": [[ids], ...]} (stopping at eos, which is not included).
"""

import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pal_trainer.generation import generate
from pal_trainer.model import CausalLM, ModelConfig


def main():
    vocab, eos, out, prompts, new_tokens = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
    torch.manual_seed(7)
    config = ModelConfig.from_hf(
        {
            "model_type": "llama",
            "vocab_size": vocab,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": True,
            "bos_token_id": eos,
            "eos_token_id": eos,
            "pad_token_id": 0,
            "initializer_range": 0.3,
        }
    )
    hf = os.path.join(out, "hf")
    os.makedirs(hf, exist_ok=True)
    CausalLM(config).save_pretrained(hf)
    model = CausalLM.from_pretrained(hf)
    greedy = [generate(model, [p], new_tokens, temperature=0.0, eos_token_id=eos)[0] for p in prompts]
    subprocess.run(
        [sys.executable, "-m", "pal_trainer.export_onnx", hf, os.path.join(out, "onnx")],
        check=True,
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))},
    )
    print(json.dumps({"greedy": greedy}))


if __name__ == "__main__":
    main()
