"""One LoRA adapter equal to several applied in turn: how a PAL run's two stages ship as one file.

A LoRA run merges stage 1's adapter into the base, then stage 2 trains its own adapter over that
merged model, so the aligned model is base + s1 B1 A1 + s2 B2 A2 (s = alpha / r). Stacking the
factors is exact: [s1 B1, s2 B2] @ [A1; A2] = s1 B1 A1 + s2 B2 A2, an adapter of rank r1 + r2 with
alpha = r (scale 1). A module only some adapters touch stacks only theirs, so its rank is lower:
PEFT's rank_pattern/alpha_pattern says so (stage 1 on every linear layer at r 8 and stage 2 on
attention at r 16 ship as r 24 on attention and r 8 on the MLP, not r 24 with zeros everywhere).

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
    out = {}
    ranks = {}  # module name (its last part, as target_modules names it) -> stacked rank
    for path, parts in modules.items():
        out[path + ".lora_A.weight"] = torch.cat([parts[i][0] for i in sorted(parts)], 0)
        out[path + ".lora_B.weight"] = torch.cat([parts[i][1] for i in sorted(parts)], 1)
        rank = out[path + ".lora_A.weight"].shape[0]
        if ranks.setdefault(path.rsplit(".", 1)[-1], rank) != rank:
            raise ValueError("%s: the adapters touch some %s layers and not others" % (path, path.rsplit(".", 1)[-1]))
    return rank_config(adapters[0][0], ranks), out


def rank_config(first, ranks):
    """PEFT's config for per-module ranks with alpha = r: the commonest rank as r, the rest as patterns."""
    counts = {}
    for rank in ranks.values():
        counts[rank] = counts.get(rank, 0) + 1
    rank = max(counts, key=lambda r: (counts[r], r))
    pattern = {name: r for name, r in sorted(ranks.items()) if r != rank}
    config = dict(first, r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=sorted(ranks))
    config.pop("rank_pattern", None)
    config.pop("alpha_pattern", None)
    if pattern:
        config.update(rank_pattern=pattern, alpha_pattern=dict(pattern))
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pal_trainer.combine_adapters", description=__doc__.split("\n")[0])
    parser.add_argument("adapters", nargs="+", help="adapter folders, in the order they were trained")
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default="float16",
        help="how the file stores the factors (default float16: half the size, and the merge is done in float32)",
    )
    args = parser.parse_args(argv)
    try:
        config, weights = combine([read_adapter(folder) for folder in args.adapters])
    except (OSError, ValueError, KeyError) as exc:
        sys.exit("combine_adapters: %s" % exc)
    os.makedirs(args.out, exist_ok=True)
    dtype = DTYPES[args.dtype]
    safetensors.save_file({k: v.to(dtype).contiguous() for k, v in weights.items()}, os.path.join(args.out, ADAPTER_WEIGHTS), metadata={"format": "pt"})
    safetensors._write_json(os.path.join(args.out, ADAPTER_CONFIG), config)
    print(json.dumps({"out": args.out, "r": config["r"], "modules": len(weights) // 2, "bytes": os.path.getsize(os.path.join(args.out, ADAPTER_WEIGHTS))}))


if __name__ == "__main__":
    sys.exit(main())
