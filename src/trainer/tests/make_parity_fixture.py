"""Builds the fixture of test/unit/onnx-export.test.ts: tiny random models exported for transformers.js,
with PyTorch's greedy tokens and logits to compare against.

    python make_parity_fixture.py <out_folder>

For each of llama (4 heads, 2 key/value heads, tied embeddings) and gpt2 it writes
<out>/<type>/hf (save_pretrained), <out>/<type>/onnx (the export CLI's output) and, in
<out>/fixture.json, per type: the prompts, PyTorch's greedy continuation of each and the full
logits of one forward pass over each prompt, plus the export's time and size.
"""

import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pal_trainer import export_onnx
from pal_trainer.model import CausalLM, ModelConfig

VOCAB = 97
NEW_TOKENS = 12
PROMPTS = [[5, 17, 42, 8, 61], [3, 90, 27, 27, 11, 64, 70, 1, 38]]
# The smallest top-1 minus top-2 logit gap allowed on the greedy path: below it, float32
# rounding differences between PyTorch and onnxruntime could flip an argmax.
MIN_MARGIN = 1e-3


def tiny_config(model_type):
    # A large initializer_range spreads the logits, so greedy choices are far from ties.
    common = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        initializer_range=0.3,
        norm_eps=1e-5,
    )
    if model_type == "llama":
        return ModelConfig(model_type="llama", num_key_value_heads=2, tie_word_embeddings=True, **common)
    return ModelConfig(model_type="gpt2", hidden_act="gelu_new", tie_word_embeddings=True, qkv_bias=True, o_bias=True, mlp_bias=True, **common)


@torch.no_grad()
def greedy(model, prompt):
    """Greedy continuation, each step a full forward without the KV cache: independent of the cache path."""
    ids, margin = list(prompt), float("inf")
    for _ in range(NEW_TOKENS):
        logits = model(torch.tensor([ids]))[0][0, -1]
        top = torch.topk(logits, 2).values
        margin = min(margin, float(top[0] - top[1]))
        ids.append(int(logits.argmax()))
    return ids[len(prompt) :], margin


def build(model_type, out):
    torch.manual_seed(1234)
    hf, onnx = os.path.join(out, model_type, "hf"), os.path.join(out, model_type, "onnx")
    CausalLM(tiny_config(model_type)).save_pretrained(hf)
    model = CausalLM.from_pretrained(hf)  # the reference is the model as reloaded from disk

    t0 = time.time()
    export_onnx.main([hf, onnx])
    seconds = time.time() - t0

    result = {
        "folder": onnx,
        "vocab_size": VOCAB,
        "export_seconds": round(seconds, 3),
        "onnx_bytes": os.path.getsize(os.path.join(onnx, export_onnx.ONNX_FILE)),
        "prompts": PROMPTS,
        "greedy": [],
        "logits": [],
    }
    margins = []
    for prompt in PROMPTS:
        tokens, margin = greedy(model, prompt)
        result["greedy"].append(tokens)
        margins.append(margin)
        with torch.no_grad():
            result["logits"].append(model(torch.tensor([prompt]))[0][0].tolist())
    result["min_greedy_margin"] = min(margins)
    if result["min_greedy_margin"] < MIN_MARGIN:
        raise SystemExit("%s: greedy margin %.2g is too small for an exact comparison; change the seed" % (model_type, result["min_greedy_margin"]))
    return result


def main():
    out = os.path.abspath(sys.argv[1])
    torch.set_num_threads(1)
    fixture = {t: build(t, out) for t in ("llama", "gpt2")}
    with open(os.path.join(out, "fixture.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f)


if __name__ == "__main__":
    main()
