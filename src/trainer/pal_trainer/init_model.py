"""A new, randomly initialised model folder: the start of pre-training.

`python -m pal_trainer.init_model <config.json> <out> [--seed N]` reads a Hugging Face config.json
(any architecture model.py supports) and writes <out>/config.json and model.safetensors, which the
trainer's lm job then starts from. GPT-2's initialisation: every weight N(0, 0.02), residual
output projections scaled by 1/sqrt(2 * layers) so the residual stream's variance does not grow
with depth, biases zero, norms one. (torch's default N(0, 1) embeddings would make a tied output
layer's first logits huge, and the first steps would be spent undoing them.)
"""

import argparse
import json
import math
import sys

import torch
from torch import nn

from .model import CausalLM, ModelConfig, count_parameters

RESIDUAL_OUTPUTS = ("o_proj", "down_proj", "c_proj")


def init_weights(model, std=0.02):
    layers = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif hasattr(module, "weight") and isinstance(module.weight, torch.Tensor) and module.weight.dim() == 2:
            scale = 1 / math.sqrt(2 * layers) if name.rsplit(".", 1)[-1] in RESIDUAL_OUTPUTS else 1.0
            nn.init.normal_(module.weight, std=std * scale)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif hasattr(module, "weight") and isinstance(module.weight, torch.Tensor) and module.weight.dim() == 1:
            nn.init.ones_(module.weight)  # RMSNorm / LayerNorm
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pal_trainer.init_model", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="a Hugging Face config.json")
    parser.add_argument("out", help="the model folder to write")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as f:
            config = ModelConfig.from_hf(json.load(f))
    except (OSError, ValueError) as exc:
        print("%s: %s" % (args.config, exc), file=sys.stderr)
        return 1
    torch.manual_seed(args.seed)
    model = init_weights(CausalLM(config))
    model.save_pretrained(args.out, dtype=torch.float32)
    print(json.dumps({"event": "done", "model": args.out, "parameters": count_parameters(model)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
