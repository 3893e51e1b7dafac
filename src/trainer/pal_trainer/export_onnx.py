"""Exports a CausalLM as the folder transformers.js (@huggingface/transformers v3) loads for text generation.

Layout, as in the onnx-community/Xenova repositories:
    config.json             Hugging Face config + "transformers.js_config"
    generation_config.json  bos/eos/pad ids and generation defaults
    onnx/model.onnx         one decoder graph with past key values (fp32 inputs and outputs)

`--weights fp16|int8` stores the weight matrices in half precision, or as int8 with one float scale
per row (symmetric, per output channel), each followed in the graph by Cast (and Mul): the file is
2x or ~4x smaller while the graph's interface stays fp32, so transformers.js loads it as the plain
fp32 model.onnx. onnxruntime folds those constant subgraphs back into fp32 weights when it loads the
session, so inference runs at fp32 speed.

The graph's inputs are input_ids, attention_mask, position_ids and past_key_values.{i}.key/.value;
its outputs logits and present.{i}.key/.value. transformers.js feeds position_ids to any decoder
whose graph declares them (decoderForward in its src/models.js), computed from the attention mask,
so left-padded batches get the same positions as PyTorch; it does so for gpt2 as for llama.
Its first step passes empty past tensors (batch, kv_heads, 0, head_dim).

CLI: python -m pal_trainer.export_onnx <model_folder> <out_folder> [--weights fp32|fp16|int8] [--adapter DIR]

`--adapter` merges a LoRA adapter (PEFT's files, as a LoRA run's <stage>/final/adapter) into the
model first: how a shipped adapter over a pretrained base becomes a model for inference.
"""

import argparse
import copy
import inspect
import json
import os
import shutil
import sys
import time
import warnings

import torch
import torch.nn as nn

from .lora import load_adapter, merge_lora
from .model import CausalLM

ONNX_FILE = os.path.join("onnx", "model.onnx")
# torch >= 2.9 exports with dynamo by default, which needs onnxscript and rewrites the graph; the
# TorchScript exporter (torch 1.13 onwards) writes the plain graph that transformers.js runs.
_TORCHSCRIPT_EXPORTER = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# protobuf cannot hold a file over 2 GiB; torch would then spill every tensor into its own file,
# a layout transformers.js does not load (it wants one model.onnx_data).
MAX_WEIGHT_BYTES = 2 * 1024**3 - 64 * 1024**2


class _DecoderWithPast(nn.Module):
    """Flat tensors in and out, because torch.onnx names graph inputs/outputs positionally."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, present = self.model(input_ids, attention_mask=attention_mask, position_ids=position_ids, past_key_values=past, use_cache=True)
        return (logits,) + tuple(t for kv in present for t in kv)


def _stored_weight_class(cls):
    """A subclass of a module class whose `weight` is computed from stored (compressed) buffers."""

    def weight(self):
        w = self.weight_stored.to(torch.float32)
        return w * self.weight_scale if hasattr(self, "weight_scale") else w

    return type("Stored" + cls.__name__, (cls,), {"weight": property(weight)})


def compress_weights(model, kind):
    """Replaces every 2-D weight (linear layers, embeddings) by a fp16 or int8 (+ row scale) buffer."""
    if kind == "fp32":
        return model
    if kind not in ("fp16", "int8"):
        raise ValueError("weights must be fp32, fp16 or int8, not %r" % (kind,))
    for module in list(model.modules()):
        w = module._parameters.get("weight") if hasattr(module, "_parameters") else None
        if w is None or w.dim() != 2:
            continue
        w = w.detach()
        del module._parameters["weight"]
        if kind == "fp16":
            module.register_buffer("weight_stored", w.to(torch.float16))
        else:
            scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
            module.register_buffer("weight_stored", torch.round(w / scale).clamp(-127, 127).to(torch.int8))
            module.register_buffer("weight_scale", scale.to(torch.float32))
        module.__class__ = _stored_weight_class(module.__class__)
    return model


def io_names(num_layers):
    """(input names, output names, dynamic axes) of the exported graph."""
    past = ["past_key_values.%d.%s" % (i, kv) for i in range(num_layers) for kv in ("key", "value")]
    present = ["present.%d.%s" % (i, kv) for i in range(num_layers) for kv in ("key", "value")]
    axes = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size", 1: "sequence_length"},
    }
    axes.update({name: {0: "batch_size", 2: "past_sequence_length"} for name in past})
    axes.update({name: {0: "batch_size", 2: "total_sequence_length"} for name in present})
    return ["input_ids", "attention_mask", "position_ids"] + past, ["logits"] + present, axes


def transformers_js_config(model, torch_dtype=None):
    """config.json for transformers.js: Hugging Face's fields plus the file it should pick."""
    config = model.config.to_hf(torch_dtype=torch_dtype)
    # Without a dtype transformers.js warns, and in browsers (wasm) looks for model_quantized.onnx.
    config["transformers.js_config"] = {"dtype": "fp32", "kv_cache_dtype": "float32"}
    return config


def generation_config_for(model, generation_config=None):
    c = model.config
    out = {
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_id,
        # transformers.js pads batched generation with pad_token_id; eos is the usual stand-in.
        "pad_token_id": c.pad_token_id if c.pad_token_id is not None else _first(c.eos_token_id),
    }
    out.update(generation_config or {})
    return {k: v for k, v in out.items() if v is not None}


def _first(ids):
    return ids[0] if isinstance(ids, (list, tuple)) and ids else ids


def export_onnx(model, folder, *, opset=14, generation_config=None, weights="fp32"):
    """Writes config.json, generation_config.json and onnx/model.onnx into folder; returns the .onnx path."""
    weight_bytes = sum(p.numel() for p in model.parameters()) * 4
    if weight_bytes > MAX_WEIGHT_BYTES:
        raise ValueError("the model has %.2f GB of float32 weights; a single-file ONNX export holds at most 2 GB" % (weight_bytes / 1e9))
    # Exported in float32 (what transformers.js' "fp32" means), on a copy if the caller's is not.
    first = next(model.parameters())
    if first.dtype != torch.float32 or first.device.type != "cpu":
        model = copy.deepcopy(model).to("cpu", torch.float32)
    if weights != "fp32":
        model = compress_weights(copy.deepcopy(model), weights)
    c = model.config
    wrapper = _DecoderWithPast(model).eval()

    # Traced with batch 2, 3 new tokens after 5 past ones, the first row left-padded: every size
    # differs from the others, so a size the tracer wrongly baked in shows up as a wrong shape
    # at another length (the Node parity test runs other lengths, past length 0 included).
    batch, seq, past_len = 2, 3, 5
    input_ids = torch.randint(0, c.vocab_size, (batch, seq))
    attention_mask = torch.ones(batch, past_len + seq, dtype=torch.int64)
    attention_mask[0, :2] = 0
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, past_len:]
    past = [torch.randn(batch, c.num_key_value_heads, past_len, c.head_dim) for _ in range(2 * c.num_hidden_layers)]
    inputs, outputs, axes = io_names(c.num_hidden_layers)

    path = os.path.join(folder, ONNX_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about every Python-level shape check in forward(); they only raise errors.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper,
            (input_ids, attention_mask, position_ids, *past),
            path,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            # Folding would store a transposed copy of the tied embedding matrix
            # (the lm_head MatMul's operand): the file would carry it twice.
            # onnxruntime folds such constants itself when it loads the graph.
            opset_version=opset,
            do_constant_folding=False,
            **_TORCHSCRIPT_EXPORTER,
        )

    _write_json(os.path.join(folder, "config.json"), transformers_js_config(model))
    _write_json(os.path.join(folder, "generation_config.json"), generation_config_for(model, generation_config))
    return path


def _write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pal_trainer.export_onnx", description="Export a Hugging Face-format model folder for transformers.js.")
    parser.add_argument("model_folder")
    parser.add_argument("out_folder")
    parser.add_argument("--opset", type=int, default=14)
    parser.add_argument(
        "--weights", choices=("fp32", "fp16", "int8"), default="fp32", help="how the file stores weight matrices (the graph computes in fp32 either way)"
    )
    parser.add_argument(
        "--safetensors",
        choices=("fp32", "fp16", "bf16"),
        default=None,
        help="also write model.safetensors in this dtype: the folder is then a base model the trainer starts from too",
    )
    parser.add_argument("--adapter", default=None, help="a LoRA adapter folder to merge into the model first")
    args = parser.parse_args(argv)

    t0 = time.time()
    try:
        model = CausalLM.from_pretrained(args.model_folder, dtype=torch.float32)
        if args.adapter:
            load_adapter(model, args.adapter)
            merge_lora(model)
        gen_path = os.path.join(args.model_folder, "generation_config.json")
        gen = None
        if os.path.exists(gen_path):
            with open(gen_path, encoding="utf-8") as f:
                gen = json.load(f)
        path = export_onnx(model, args.out_folder, opset=args.opset, generation_config=gen, weights=args.weights)
    except (OSError, ValueError) as exc:
        sys.exit("export_onnx: %s" % exc)
    if args.safetensors:
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.safetensors]
        model.save_pretrained(args.out_folder, dtype=dtype)
        # save_pretrained wrote Hugging Face's config.json; transformers.js needs its own fields too.
        _write_json(os.path.join(args.out_folder, "config.json"), transformers_js_config(model, dtype))
    for name in TOKENIZER_FILES:
        src = os.path.join(args.model_folder, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(args.out_folder, name))
    print(json.dumps({"onnx": path, "bytes": os.path.getsize(path), "weights": args.weights, "seconds": round(time.time() - t0, 2)}))


if __name__ == "__main__":
    sys.exit(main())
