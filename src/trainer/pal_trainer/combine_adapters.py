"""One LoRA adapter equal to several applied in turn: how a PAL run's two stages ship as one file.

A LoRA run merges stage 1's adapter into the base, then stage 2 trains its own adapter over that
merged model, so the aligned model is base + s1 B1 A1 + s2 B2 A2 (s = alpha / r). Stacking the
factors is exact: [s1 B1, s2 B2] @ [A1; A2] = s1 B1 A1 + s2 B2 A2, an adapter of rank r1 + r2 with
alpha = r (scale 1). A module only one adapter touches gets zeros in the other's rows.

CLI: python -m pal_trainer.combine_adapters <adapter>... --out <folder> [--dtype float16|float32]
"""

import argparse
import json
import os
import sys

import torch

from . import safetensors
from .lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS, read_adapter

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def combine(adapters):
    """(config, weights) pairs -> one (config, weights) whose delta is their sum."""
    modules = {}  # module path -> list of (A, scaled B) per adapter
    for index, (config, weights) in enumerate(adapters):
        scale = config["lora_alpha"] / config["r"]
        for name, a in weights.items():
            if ".lora_A." not in name:
                continue
            path = name.split(".lora_A.")[0]
            b = weights[name.replace(".lora_A.", ".lora_B.")]
            modules.setdefault(path, {})[index] = (a.float(), b.float() * scale)
    rank = sum(config["r"] for config, _ in adapters)
    out = {}
    for path, parts in modules.items():
        some_a, some_b = next(iter(parts.values()))
        a_rows, b_cols = [], []
        for index, (config, _) in enumerate(adapters):
            a, b = parts.get(index, (some_a.new_zeros(config["r"], some_a.shape[1]), some_b.new_zeros(some_b.shape[0], config["r"])))
            a_rows.append(a)
            b_cols.append(b)
        out[path + ".lora_A.weight"] = torch.cat(a_rows, 0)
        out[path + ".lora_B.weight"] = torch.cat(b_cols, 1)
    first = adapters[0][0]
    targets = sorted({t for config, _ in adapters for t in config["target_modules"]})
    config = dict(first, r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=targets)
    return config, out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pal_trainer.combine_adapters", description=__doc__.split("\n")[0])
    parser.add_argument("adapters", nargs="+", help="adapter folders, in the order they were trained")
    parser.add_argument("--out", required=True)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16",
                        help="how the file stores the factors (default float16: half the size, and the merge is done in float32)")
    args = parser.parse_args(argv)
    try:
        config, weights = combine([read_adapter(folder) for folder in args.adapters])
    except (OSError, ValueError, KeyError) as exc:
        sys.exit("combine_adapters: %s" % exc)
    os.makedirs(args.out, exist_ok=True)
    dtype = DTYPES[args.dtype]
    safetensors.save_file({k: v.to(dtype).contiguous() for k, v in weights.items()}, os.path.join(args.out, ADAPTER_WEIGHTS), metadata={"format": "pt"})
    safetensors._write_json(os.path.join(args.out, ADAPTER_CONFIG), config)
    print(json.dumps({"out": args.out, "r": config["r"], "modules": len(weights) // 2,
                      "bytes": os.path.getsize(os.path.join(args.out, ADAPTER_WEIGHTS))}))


if __name__ == "__main__":
    sys.exit(main())
