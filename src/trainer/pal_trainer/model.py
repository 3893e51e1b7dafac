"""Decoder-only transformers (Llama, Mistral, Qwen2, GPT-2) whose state dicts use Hugging Face's names.

Module names mirror the Hugging Face classes, so `state_dict()` already has the names of a
downloaded checkpoint and `from_pretrained` loads one unchanged. The code sticks to torch 1.13's
API and stays traceable for ONNX export: masks come from `arange` comparisons on tensor shapes.
"""

import json
import math
import os
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from . import safetensors

LLAMA_LIKE = ("llama", "mistral", "qwen2")
MODEL_TYPES = LLAMA_LIKE + ("gpt2",)
ARCHITECTURES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM", "gpt2": "GPT2LMHeadModel"}
ACTIVATIONS = {
    "silu": F.silu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
}
ROPE_TYPES = ("default", "linear", "llama3")


@dataclass
class ModelConfig:
    """What the model needs to know; `from_hf`/`to_hf` translate Hugging Face's config.json."""

    model_type: str = "llama"
    vocab_size: int = 32000
    hidden_size: int = 512
    intermediate_size: int = 1376
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    num_key_value_heads: int | None = None  # None: as many as attention heads
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    max_position_embeddings: int = 2048
    norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    hidden_act: str = "silu"
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    embd_pdrop: float = 0.0
    attn_pdrop: float = 0.0
    resid_pdrop: float = 0.0
    initializer_range: float = 0.02
    bos_token_id: object | None = None
    eos_token_id: object | None = None  # an id or a list of ids, as in config.json
    pad_token_id: int | None = None

    def __post_init__(self):
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError("hidden_size %d is not a multiple of num_attention_heads %d" % (self.hidden_size, self.num_attention_heads))
            self.head_dim = self.hidden_size // self.num_attention_heads
        self.validate()

    def validate(self):
        if self.model_type not in MODEL_TYPES:
            raise ValueError("model_type %r is not supported (supported: %s)" % (self.model_type, ", ".join(MODEL_TYPES)))
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError("hidden_act %r is not supported (supported: %s)" % (self.hidden_act, ", ".join(ACTIVATIONS)))
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads %d is not a multiple of num_key_value_heads %d" % (self.num_attention_heads, self.num_key_value_heads))
        if self.model_type == "gpt2":
            if self.num_key_value_heads != self.num_attention_heads or not self.tie_word_embeddings:
                raise ValueError("gpt2 has one key/value head per attention head and tied embeddings")
            if self.head_dim * self.num_attention_heads != self.hidden_size:
                raise ValueError("gpt2 needs head_dim * num_attention_heads == hidden_size")
        else:
            if self.head_dim % 2:
                raise ValueError("head_dim %d must be even for rotary embeddings" % self.head_dim)
            # Only the bias layouts Hugging Face's classes can load, so to_hf never writes a lie.
            allowed = {"llama": [(False, False), (True, True)], "mistral": [(False, False)], "qwen2": [(True, False)]}
            if (self.qkv_bias, self.o_bias) not in allowed[self.model_type]:
                raise ValueError("%s cannot have qkv_bias=%s with o_bias=%s" % (self.model_type, self.qkv_bias, self.o_bias))
            if self.mlp_bias and self.model_type != "llama":
                raise ValueError("only llama supports mlp_bias")
            rope_type = _rope_type(self.rope_scaling)
            if rope_type not in ROPE_TYPES:
                raise ValueError("rope_scaling type %r is not supported (supported: %s)" % (rope_type, ", ".join(ROPE_TYPES)))

    @classmethod
    def from_hf(cls, hf):
        """Builds a config from the dict of a Hugging Face config.json."""
        model_type = hf.get("model_type")
        if model_type not in MODEL_TYPES:
            raise ValueError("config.json model_type %r is not supported (supported: %s)" % (model_type, ", ".join(MODEL_TYPES)))

        def need(key):
            if hf.get(key) is None:
                raise ValueError("config.json for %s lacks %r" % (model_type, key))
            return hf[key]

        ids = dict(
            bos_token_id=hf.get("bos_token_id"),
            eos_token_id=hf.get("eos_token_id"),
            pad_token_id=hf.get("pad_token_id"),
            initializer_range=hf.get("initializer_range", 0.02),
        )
        if model_type == "gpt2":
            for key in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
                if hf.get(key):
                    raise ValueError("gpt2 option %s is not supported" % key)
            if hf.get("scale_attn_weights", True) is False:
                raise ValueError("gpt2 with scale_attn_weights false is not supported")
            hidden = need("n_embd")
            return cls(
                model_type="gpt2",
                vocab_size=need("vocab_size"),
                hidden_size=hidden,
                intermediate_size=hf.get("n_inner") or 4 * hidden,
                num_hidden_layers=need("n_layer"),
                num_attention_heads=need("n_head"),
                max_position_embeddings=hf.get("n_positions", 1024),
                norm_eps=hf.get("layer_norm_epsilon", 1e-5),
                hidden_act=hf.get("activation_function", "gelu_new"),
                tie_word_embeddings=True,
                qkv_bias=True,
                o_bias=True,
                mlp_bias=True,
                embd_pdrop=hf.get("embd_pdrop", 0.1),
                attn_pdrop=hf.get("attn_pdrop", 0.1),
                resid_pdrop=hf.get("resid_pdrop", 0.1),
                **ids,
            )
        if model_type == "qwen2":
            qkv_bias, o_bias = True, False  # Qwen2 hard-codes these; its config has no attention_bias
        elif model_type == "llama":
            qkv_bias = o_bias = bool(hf.get("attention_bias", False))
        else:
            qkv_bias = o_bias = False
        # transformers 5 writes rope_parameters {"rope_type", "rope_theta", ...} instead of the two keys.
        rope = hf.get("rope_parameters") or {}
        rope_theta = hf.get("rope_theta", rope.get("rope_theta", 10000.0))
        rope_scaling = hf.get("rope_scaling")
        if rope_scaling is None and _rope_type(rope) != "default":
            rope_scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
        # Mistral's sliding_window is ignored: it only matters past 4096 tokens.
        return cls(
            model_type=model_type,
            vocab_size=need("vocab_size"),
            hidden_size=need("hidden_size"),
            intermediate_size=need("intermediate_size"),
            num_hidden_layers=need("num_hidden_layers"),
            num_attention_heads=need("num_attention_heads"),
            num_key_value_heads=hf.get("num_key_value_heads"),
            head_dim=hf.get("head_dim"),
            max_position_embeddings=hf.get("max_position_embeddings", 2048),
            norm_eps=hf.get("rms_norm_eps", 1e-6),
            rope_theta=float(rope_theta),
            rope_scaling=rope_scaling,
            hidden_act=hf.get("hidden_act", "silu"),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            qkv_bias=qkv_bias,
            o_bias=o_bias,
            mlp_bias=bool(hf.get("mlp_bias", False)),
            attn_pdrop=float(hf.get("attention_dropout", 0.0)),
            **ids,
        )

    def to_hf(self, torch_dtype=None):
        """The config.json dict Hugging Face's tools read for this model."""
        common = {
            "architectures": [ARCHITECTURES[self.model_type]],
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "initializer_range": self.initializer_range,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "tie_word_embeddings": self.tie_word_embeddings,
            "use_cache": True,
        }
        if self.pad_token_id is not None:
            common["pad_token_id"] = self.pad_token_id
        if torch_dtype is not None:
            common["torch_dtype"] = str(torch_dtype).replace("torch.", "")
        if self.model_type == "gpt2":
            return dict(
                common,
                n_embd=self.hidden_size,
                n_layer=self.num_hidden_layers,
                n_head=self.num_attention_heads,
                n_positions=self.max_position_embeddings,
                n_ctx=self.max_position_embeddings,
                n_inner=None if self.intermediate_size == 4 * self.hidden_size else self.intermediate_size,
                layer_norm_epsilon=self.norm_eps,
                activation_function=self.hidden_act,
                embd_pdrop=self.embd_pdrop,
                attn_pdrop=self.attn_pdrop,
                resid_pdrop=self.resid_pdrop,
                scale_attn_weights=True,
            )
        hf = dict(
            common,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            head_dim=self.head_dim,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.norm_eps,
            rope_theta=self.rope_theta,
            rope_scaling=self.rope_scaling,
            hidden_act=self.hidden_act,
            attention_dropout=self.attn_pdrop,
        )
        if self.model_type == "llama":
            hf.update(attention_bias=self.qkv_bias, mlp_bias=self.mlp_bias)
        elif self.model_type == "mistral":
            hf.update(sliding_window=None)
        else:
            hf.update(use_sliding_window=False)
        return hf

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _rope_type(rope_scaling):
    if not rope_scaling:
        return "default"
    return rope_scaling.get("rope_type", rope_scaling.get("type", "default"))


def rope_inv_freq(config, device=None):
    """Rotary inverse frequencies in float32, with Llama 3 or linear scaling as Hugging Face computes them.

    Recomputed on each forward rather than kept as a buffer, so casting the model to bfloat16
    cannot round them.
    """
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64, device=device).float() / dim))
    scaling = config.rope_scaling or {}
    rope_type = _rope_type(config.rope_scaling)
    if rope_type == "linear":
        inv_freq = inv_freq / scaling["factor"]
    elif rope_type == "llama3":
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old_len / high) * ~(wavelen > old_len / low)
        inv_freq = torch.where(medium, smoothed, scaled)
    return inv_freq


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def causal_mask(query_len, key_len, attention_mask=None, device=None):
    """Bool mask (batch or 1, 1, query_len, key_len): True where a query may attend to a key.

    Queries are the last query_len of key_len positions. Built by comparing positions rather
    than with tril(diagonal=past), which a trace for ONNX would freeze at one past length.
    """
    key_pos = torch.arange(key_len, device=device)
    query_pos = torch.arange(key_len - query_len, key_len, device=device)
    allowed = (key_pos[None, :] <= query_pos[:, None])[None, None]
    if attention_mask is not None:
        allowed = allowed & attention_mask[:, None, None, :].bool()
    return allowed


def repeat_kv(x, n_rep):
    """(batch, kv_heads, len, dim) -> (batch, kv_heads * n_rep, len, dim), each head repeated in place.

    expand + reshape rather than repeat_interleave, whose ONNX export failed at run time.
    """
    if n_rep == 1:
        return x
    batch, kv_heads, length, dim = x.shape
    return x[:, :, None].expand(batch, kv_heads, n_rep, length, dim).reshape(batch, kv_heads * n_rep, length, dim)


# torch >= 2.0: fused attention kernels (flash attention on the CPU too). torch 1.13 lacks it.
_SDPA = getattr(F, "scaled_dot_product_attention", None)


FUSED_CAUSAL = "causal"


def fused_attention_mask(mask, causal_only=False):
    """The mask for `attend`'s fused kernel, or None to use the plain ops: always while tracing
    for ONNX (the exported graph keeps the plain ops, which every runtime has).

    A left-padding query may attend to no key at all, and the kernel would make its row NaN; such
    a row is let attend to its own position instead. Its output is never used (no real query
    attends to a padding key), so the real rows are unchanged, and nothing is NaN.
    """
    if _SDPA is None or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return None
    if causal_only:  # no padding and no cache: the kernel's own causal masking, no mask tensor at all
        return FUSED_CAUSAL
    empty = ~mask.any(-1, keepdim=True)
    if not bool(empty.any()):
        return mask
    query_len, key_len = mask.shape[-2:]
    own = torch.arange(key_len, device=mask.device)[None, :] == torch.arange(key_len - query_len, key_len, device=mask.device)[:, None]
    return mask | (empty & own)


def attend(q, k, v, mask, dropout_p=0.0, training=False, fused=None):
    """Softmax attention; q (B, H, T, D), k/v (B, KV, S, D), mask (B, 1, T, S), True = may attend.

    fused: a mask from fused_attention_mask, to use torch's scaled_dot_product_attention (a LoRA
    training step of the 135M model on the CPU: 4.4 s -> 3.3 s, attention alone ~3x). Otherwise the softmax runs in at least float32 so
    half-precision models do not overflow, and masked scores get the most negative finite float
    instead of -inf: a padding query sees no key at all, and -inf would make its row NaN, which
    then leaks into real tokens through 0 * NaN.
    """
    n_rep = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    if fused is not None:
        causal = isinstance(fused, str)
        return _SDPA(q, k, v, attn_mask=None if causal else fused, dropout_p=dropout_p if training else 0.0, is_causal=causal)
    # Scaling q (T x D) rather than the scores (T x S) touches fewer elements when S > D.
    scores = torch.matmul(q * (1.0 / math.sqrt(q.shape[-1])), k.transpose(-2, -1))
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = F.dropout(F.softmax(scores, dim=-1).to(v.dtype), dropout_p, training)
    return torch.matmul(probs, v)


class RMSNorm(nn.Module):
    def __init__(self, size, eps, device=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size, device=device))

    def forward(self, x):
        # Normalised in float32, then scaled in the input dtype, exactly as Hugging Face's Llama.
        h = x.to(torch.promote_types(x.dtype, torch.float32))
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class Conv1D(nn.Module):
    """GPT-2's linear layer: the weight is stored (in_features, out_features), transposed vs nn.Linear."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(out_features, device=device, dtype=dtype)) if bias else None
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        return F.linear(x, self.weight.t(), self.bias)

    def extra_repr(self):
        return "in_features=%d, out_features=%d" % (self.in_features, self.out_features)


class LlamaAttention(nn.Module):
    def __init__(self, config, device=None):
        super().__init__()
        self.config = config
        hidden, heads, kv_heads, dim = (config.hidden_size, config.num_attention_heads, config.num_key_value_heads, config.head_dim)
        self.q_proj = nn.Linear(hidden, heads * dim, bias=config.qkv_bias, device=device)
        self.k_proj = nn.Linear(hidden, kv_heads * dim, bias=config.qkv_bias, device=device)
        self.v_proj = nn.Linear(hidden, kv_heads * dim, bias=config.qkv_bias, device=device)
        self.o_proj = nn.Linear(heads * dim, hidden, bias=config.o_bias, device=device)

    def forward(self, x, mask, past, rope, fused=None):
        c = self.config
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, c.num_attention_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        cos, sin = rope
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if past is not None:
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        y = attend(q, k, v, mask, c.attn_pdrop, self.training, fused)
        return self.o_proj(y.transpose(1, 2).reshape(batch, length, -1)), (k, v)


class LlamaMLP(nn.Module):
    def __init__(self, config, device=None):
        super().__init__()
        hidden, inner, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = nn.Linear(hidden, inner, bias=bias, device=device)
        self.up_proj = nn.Linear(hidden, inner, bias=bias, device=device)
        self.down_proj = nn.Linear(inner, hidden, bias=bias, device=device)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config, device=None):
        super().__init__()
        self.self_attn = LlamaAttention(config, device)
        self.mlp = LlamaMLP(config, device)
        self.input_layernorm = RMSNorm(config.hidden_size, config.norm_eps, device)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.norm_eps, device)

    def forward(self, x, mask, past=None, rope=None, fused=None):
        h, present = self.self_attn(self.input_layernorm(x), mask, past, rope, fused)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), present


class LlamaModel(nn.Module):
    """The body of Llama, Mistral and Qwen2: `model.*` in their checkpoints."""

    def __init__(self, config, device=None):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, device=device)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config, device) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.norm_eps, device)

    def embed(self, input_ids, position_ids):
        x = self.embed_tokens(input_ids)
        freqs = position_ids.float()[..., None] * rope_inv_freq(self.config, x.device)
        angles = torch.cat((freqs, freqs), dim=-1)[:, None]  # (batch, 1, length, head_dim)
        return x, (angles.cos().to(x.dtype), angles.sin().to(x.dtype))


class GPT2Attention(nn.Module):
    def __init__(self, config, device=None):
        super().__init__()
        self.config = config
        self.c_attn = Conv1D(config.hidden_size, 3 * config.hidden_size, device=device)
        self.c_proj = Conv1D(config.hidden_size, config.hidden_size, device=device)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x, mask, past, rope=None, fused=None):
        c = self.config
        batch, length, hidden = x.shape
        q, k, v = (t.view(batch, length, c.num_attention_heads, c.head_dim).transpose(1, 2) for t in self.c_attn(x).split(hidden, dim=2))
        if past is not None:
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        y = attend(q, k, v, mask, c.attn_pdrop, self.training, fused)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(batch, length, hidden))), (k, v)


class GPT2MLP(nn.Module):
    def __init__(self, config, device=None):
        super().__init__()
        self.c_fc = Conv1D(config.hidden_size, config.intermediate_size, device=device)
        self.c_proj = Conv1D(config.intermediate_size, config.hidden_size, device=device)
        self.act = ACTIVATIONS[config.hidden_act]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    def __init__(self, config, device=None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, device=device)
        self.attn = GPT2Attention(config, device)
        self.ln_2 = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, device=device)
        self.mlp = GPT2MLP(config, device)

    def forward(self, x, mask, past=None, rope=None, fused=None):
        h, present = self.attn(self.ln_1(x), mask, past, fused=fused)
        x = x + h
        return x + self.mlp(self.ln_2(x)), present


class GPT2Model(nn.Module):
    """GPT-2's body: `transformer.*` in its checkpoints."""

    def __init__(self, config, device=None):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size, device=device)
        self.wpe = nn.Embedding(config.max_position_embeddings, config.hidden_size, device=device)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(GPT2Block(config, device) for _ in range(config.num_hidden_layers))
        self.ln_f = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, device=device)

    def embed(self, input_ids, position_ids):
        return self.drop(self.wte(input_ids) + self.wpe(position_ids)), None


class CausalLM(nn.Module):
    """A decoder-only language model: Llama/Mistral/Qwen2 (`model.*`, `lm_head`) or GPT-2 (`transformer.*`)."""

    def __init__(self, config, device=None):
        super().__init__()
        self.config = config
        if config.model_type == "gpt2":
            self.transformer = GPT2Model(config, device)
        else:
            self.model = LlamaModel(config, device)
        # Tied models have no lm_head module: the logits use the embedding matrix, and the state
        # dict then has no lm_head.weight, as Hugging Face saves it.
        if not config.tie_word_embeddings:
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False, device=device)
        # Recompute each layer in the backward pass instead of keeping its activations (training only).
        self.gradient_checkpointing = False
        # On the meta device (from_pretrained, weights about to be replaced) there is nothing to
        # initialise; its normal_ calls still cost 1.4 s for a 135M model.
        if device is None or torch.device(device).type != "meta":
            self.reset_parameters()

    @property
    def body(self):
        return self.transformer if self.config.model_type == "gpt2" else self.model

    @property
    def blocks(self):
        return self.transformer.h if self.config.model_type == "gpt2" else self.model.layers

    def input_embeddings(self):
        return self.transformer.wte if self.config.model_type == "gpt2" else self.model.embed_tokens

    def reset_parameters(self):
        """Hugging Face's initialisation: normal(0, initializer_range), GPT-2's c_proj scaled by depth."""
        std = self.config.initializer_range
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif p.dim() == 1:
                    p.fill_(1.0)
                elif self.config.model_type == "gpt2" and name.endswith("c_proj.weight"):
                    p.normal_(0.0, std / math.sqrt(2 * self.config.num_hidden_layers))
                else:
                    p.normal_(0.0, std)

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False, logits_to_keep=0):
        """Returns (logits, present_key_values or None).

        attention_mask: (batch, past_len + seq_len), 1 for real tokens, 0 for padding (left
        padding works). past_key_values: per layer (key, value), each (batch, kv_heads, past_len,
        head_dim). logits_to_keep > 0 computes logits for the last positions only (generation).
        """
        batch, length = input_ids.shape
        past_len = past_key_values[0][0].shape[2] if past_key_values is not None else 0
        total = past_len + length
        if attention_mask is not None and attention_mask.shape[-1] != total:
            raise ValueError("attention_mask has %d positions, expected past %d + input %d" % (attention_mask.shape[-1], past_len, length))
        if position_ids is None:
            if attention_mask is not None:
                # Counting real tokens gives left-padded rows the same positions as unpadded ones.
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past_len:]
            else:
                position_ids = torch.arange(past_len, total, device=input_ids.device)[None].expand(batch, length)
        mask = causal_mask(length, total, attention_mask, input_ids.device)
        fused = fused_attention_mask(mask, causal_only=attention_mask is None and past_len == 0)
        x, rope = self.body.embed(input_ids, position_ids)
        presents = []
        for i, block in enumerate(self.blocks):
            past = past_key_values[i] if past_key_values is not None else None
            if self.gradient_checkpointing and self.training and not use_cache:
                x = torch.utils.checkpoint.checkpoint(lambda h, block=block: block(h, mask, None, rope, fused)[0], x, use_reentrant=False)
            else:
                x, present = block(x, mask, past, rope, fused)
                presents.append(present)
        x = (self.transformer.ln_f if self.config.model_type == "gpt2" else self.model.norm)(x)
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        if self.config.tie_word_embeddings:
            logits = F.linear(x, self.input_embeddings().weight)
        else:
            logits = self.lm_head(x)
        return logits, (presents if use_cache else None)

    def save_pretrained(self, folder, dtype=None, max_shard_bytes=safetensors.DEFAULT_MAX_SHARD_BYTES):
        """Writes config.json and model.safetensors (or shards) with Hugging Face's names."""
        state = self.state_dict()
        lora_names = [name for name in state if ".lora_A." in name or ".lora_B." in name]
        if lora_names:
            raise ValueError("the model has LoRA adapters (%s, ...): merge_lora() them first, or save them with lora.save_adapter()" % lora_names[0])
        dtype = _as_dtype(dtype) or next(p.dtype for p in self.parameters() if p.is_floating_point())
        tensors = {name: (t.detach().to(dtype) if t.is_floating_point() else t.detach()) for name, t in state.items()}
        os.makedirs(folder, exist_ok=True)
        safetensors._write_json(os.path.join(folder, "config.json"), self.config.to_hf(torch_dtype=dtype))
        # Hugging Face's loader rejects safetensors files without format metadata.
        return safetensors.save_sharded(tensors, folder, max_shard_bytes, metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, folder, device="cpu", dtype=None):
        """Loads a Hugging Face checkpoint folder (config.json + safetensors, single or sharded).

        dtype None keeps the checkpoint's floating dtype. The model is returned in eval mode.
        """
        config_path = os.path.join(folder, "config.json")
        try:
            with open(config_path, encoding="utf-8") as f:
                config = ModelConfig.from_hf(json.load(f))
        except (OSError, ValueError) as exc:
            raise ValueError("%s: %s" % (config_path, exc)) from None
        state = _normalize_checkpoint_names(safetensors.load_sharded(folder, device), config)
        # Built on the meta device: no memory and no random init for weights about to be replaced.
        model = cls(config, device="meta")
        _check_state_dict(folder, model.state_dict(), state)
        dtype = _as_dtype(dtype) or next((t.dtype for t in state.values() if t.is_floating_point()), torch.float32)
        for name in list(state):
            tensor = state.pop(name)
            module_name, _, leaf = name.rpartition(".")
            module = model.get_submodule(module_name)
            setattr(module, leaf, nn.Parameter(tensor.to(dtype) if tensor.is_floating_point() else tensor))
        return model.eval()


def _as_dtype(dtype):
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).replace("torch.", ""), None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError("unknown dtype %r" % (dtype,))
    return resolved


def _normalize_checkpoint_names(state, config):
    """Maps the name variants of published checkpoints onto this model's names.

    Drops buffers older files carry (GPT-2's attn.bias/masked_bias, Llama's rotary inv_freq),
    a tied lm_head (Hugging Face overwrites it with the embeddings too), and adds the
    `transformer.`/`model.` prefix that files saved from the bare body lack (openai-community/gpt2).
    """
    prefix = "transformer." if config.model_type == "gpt2" else "model."
    kept = {}
    for name, tensor in state.items():
        parts = name.split(".")
        if parts[-1] == "inv_freq" or (len(parts) > 1 and parts[-2] == "attn" and parts[-1] in ("bias", "masked_bias")):
            continue
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        kept[name] = tensor
    if kept and not any(name.startswith(prefix) for name in kept):
        kept = {(name if name == "lm_head.weight" else prefix + name): t for name, t in kept.items()}
    return kept


def _check_state_dict(folder, expected, found):
    def listing(names):
        names = sorted(names)
        return ", ".join(names[:12]) + (" ... (%d in all)" % len(names) if len(names) > 12 else "")

    problems = []
    missing, unexpected = set(expected) - set(found), set(found) - set(expected)
    if missing:
        problems.append("missing: " + listing(missing))
    if unexpected:
        problems.append("unexpected: " + listing(unexpected))
    wrong = [
        "%s is %s, expected %s" % (name, tuple(found[name].shape), tuple(expected[name].shape))
        for name in sorted(set(expected) & set(found))
        if found[name].shape != expected[name].shape
    ]
    if wrong:
        problems.append("wrong shape: " + "; ".join(wrong[:12]))
    if problems:
        raise ValueError("%s: the checkpoint does not match its config.json: %s" % (folder, " | ".join(problems)))


def count_parameters(model, trainable_only=False):
    """Number of parameters (tied ones once); trainable_only counts those that require grad."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
