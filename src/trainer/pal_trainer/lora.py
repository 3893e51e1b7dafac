"""LoRA adapters for the model's linear layers, with PEFT's tensor names so PEFT can load what we save.

A wrapped layer keeps the base `weight`/`bias` under their own names, so the model's state dict
keeps the Hugging Face names and only gains `<path>.lora_A.weight` / `<path>.lora_B.weight`.
"""

import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import safetensors
from .model import Conv1D

PEFT_PREFIX = "base_model.model."
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


class LoRALinear(nn.Module):
    """base(x) + B(A(dropout(x))) * alpha / r around an nn.Linear or a GPT-2 Conv1D.

    The adapter matrices are kept in at least float32 even when the base is half precision:
    their updates are small and would round away in bfloat16.
    """

    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__()
        if isinstance(base, nn.Linear):
            in_features, out_features, self.fan_in_fan_out = base.in_features, base.out_features, False
        elif isinstance(base, Conv1D):
            (in_features, out_features), self.fan_in_fan_out = base.weight.shape, True
        else:
            raise TypeError("LoRA wraps nn.Linear or Conv1D, not %s" % type(base).__name__)
        if r <= 0:
            raise ValueError("LoRA rank r must be positive, got %r" % (r,))
        self.in_features, self.out_features = in_features, out_features
        self.weight = base.weight
        self.bias = base.bias
        factory = dict(device=base.weight.device, dtype=torch.promote_types(base.weight.dtype, torch.float32))
        self.lora_A = nn.Linear(in_features, r, bias=False, **factory)
        self.lora_B = nn.Linear(r, out_features, bias=False, **factory)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.r, self.alpha, self.dropout, self.scaling = r, alpha, dropout, alpha / r
        self.enabled = True
        self.reset_lora_parameters()

    def reset_lora_parameters(self):
        # PEFT's default: B = 0, so a fresh adapter leaves the model unchanged.
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x):
        out = F.linear(x, self.weight.t() if self.fan_in_fan_out else self.weight, self.bias)
        if not self.enabled:
            return out
        # Under autocast the adapter's matmuls run in the autocast dtype whatever x is: casting x
        # up to the adapter's float32 first would only be undone (a copy of x per layer, per pass).
        autocast = torch.is_autocast_cpu_enabled() if x.device.type == "cpu" else torch.is_autocast_enabled()
        delta = self.lora_B(self.lora_A(self.lora_dropout(x if autocast else x.to(self.lora_A.weight.dtype)))) * self.scaling
        return out + delta.to(out.dtype)

    def delta_weight(self):
        """B @ A * scale, laid out like the base weight."""
        delta = (self.lora_B.weight @ self.lora_A.weight) * self.scaling
        return delta.t() if self.fan_in_fan_out else delta

    def to_plain(self, merge=True):
        """The base module again (an nn.Linear or Conv1D sharing these parameters), the adapter folded in if merge."""
        if merge:
            with torch.no_grad():
                self.weight += self.delta_weight().to(self.weight.dtype)
        has_bias = self.bias is not None
        if self.fan_in_fan_out:
            plain = Conv1D(self.in_features, self.out_features, bias=has_bias, device="meta")
        else:
            plain = nn.Linear(self.in_features, self.out_features, bias=has_bias, device="meta")
        plain.weight = self.weight
        if has_bias:
            plain.bias = self.bias
        return plain

    def extra_repr(self):
        return "in_features=%d, out_features=%d, r=%d, alpha=%g, enabled=%s" % (self.in_features, self.out_features, self.r, self.alpha, self.enabled)


def _matches(name, targets):
    return any(name == t or name.endswith("." + t) for t in targets)


def _replace(model, name, module):
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def lora_modules(model):
    """(name, LoRALinear) for every adapted layer, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]


def apply_lora(model, r=8, alpha=16.0, dropout=0.0, targets=("q_proj", "v_proj")):
    """Wraps each layer whose name ends with one of `targets`; freezes everything but the adapters.

    Returns the names of the wrapped layers.
    """
    if isinstance(targets, str):
        targets = [targets]
    names = [name for name, _ in model.named_modules() if name and _matches(name, targets)]
    if not names:
        linear = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, (nn.Linear, Conv1D))})
        raise ValueError("no module matches LoRA targets %s; linear layers here: %s" % (list(targets), ", ".join(linear)))
    for name in names:
        module = model.get_submodule(name)
        if isinstance(module, LoRALinear):
            raise ValueError("%s already has a LoRA adapter" % name)
        if not isinstance(module, (nn.Linear, Conv1D)):
            raise TypeError("LoRA target %s is a %s, not a linear layer" % (name, type(module).__name__))
    model.requires_grad_(False)
    for name in names:
        _replace(model, name, LoRALinear(model.get_submodule(name), r, alpha, dropout))
    return names


def lora_parameters(model):
    """The adapters' parameters, for the optimizer."""
    return [p for _, m in lora_modules(model) for p in (m.lora_A.weight, m.lora_B.weight)]


def lora_state_dict(model):
    """The adapters' tensors under PEFT's names: base_model.model.<path>.lora_A.weight / lora_B.weight."""
    state = {}
    for name, m in lora_modules(model):
        state[PEFT_PREFIX + name + ".lora_A.weight"] = m.lora_A.weight.detach()
        state[PEFT_PREFIX + name + ".lora_B.weight"] = m.lora_B.weight.detach()
    return state


def load_lora_state_dict(model, state):
    """Copies adapter tensors into the model's LoRA layers; every adapter must be given, and nothing else.

    Accepts names with or without the `base_model.model.` prefix and PEFT's in-memory
    `.lora_A.default.weight` form.
    """
    expected = lora_state_dict(model)
    given = {}
    for name, tensor in state.items():
        name = name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")
        given[name if name.startswith(PEFT_PREFIX) else PEFT_PREFIX + name] = tensor
    missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    wrong = [
        "%s is %s, expected %s" % (n, tuple(given[n].shape), tuple(expected[n].shape))
        for n in sorted(set(expected) & set(given))
        if given[n].shape != expected[n].shape
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            "LoRA state dict does not match the model's adapters: missing %s; unexpected %s; %s"
            % (missing[:8] or "none", unexpected[:8] or "none", "; ".join(wrong[:8]) or "shapes ok")
        )
    with torch.no_grad():
        for name, tensor in given.items():
            expected[name].copy_(tensor)


def set_lora_enabled(model, enabled):
    """Turns every adapter on or off; off is exactly the base model (the DPO reference, say)."""
    for _, m in lora_modules(model):
        m.enabled = bool(enabled)


def merge_lora(model):
    """Folds each adapter into its base weight and restores plain layers, so the state dict has only HF names.

    Parameters keep their requires_grad (frozen after apply_lora). Returns the merged names.
    """
    names = []
    for name, m in lora_modules(model):
        _replace(model, name, m.to_plain())
        names.append(name)
    return names


def peft_config(model, base_model_name_or_path=None):
    """The adapter_config.json dict PEFT needs to load this model's adapters."""
    modules = lora_modules(model)
    if not modules:
        raise ValueError("the model has no LoRA adapters")
    first = modules[0][1]
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name_or_path,
        "r": first.r,
        "lora_alpha": first.alpha,
        "lora_dropout": first.dropout,
        "target_modules": sorted({name.rsplit(".", 1)[-1] for name, _ in modules}),
        "fan_in_fan_out": first.fan_in_fan_out,
        "bias": "none",
        "inference_mode": True,
        "init_lora_weights": True,
        "modules_to_save": None,
    }


def save_adapter(model, folder, base_model_name_or_path=None):
    """Writes adapter_model.safetensors + adapter_config.json, the files PEFT loads."""
    os.makedirs(folder, exist_ok=True)
    safetensors.save_file({k: v.contiguous() for k, v in lora_state_dict(model).items()}, os.path.join(folder, ADAPTER_WEIGHTS), metadata={"format": "pt"})
    safetensors._write_json(os.path.join(folder, ADAPTER_CONFIG), peft_config(model, base_model_name_or_path))


def read_adapter(folder):
    """(adapter_config.json as a dict, its tensors) of an adapter folder, ours or PEFT's plain LoRA.

    Per-module ranks (PEFT's rank_pattern/alpha_pattern) are read when keyed by a target module's
    name ("gate_proj"), as combine_adapters writes them; other keys are refused, not guessed.
    """
    with open(os.path.join(folder, ADAPTER_CONFIG), encoding="utf-8") as f:
        config = json.load(f)
    if config.get("use_rslora") or config.get("use_dora"):
        raise ValueError("%s: rsLoRA and DoRA adapters are not supported" % folder)
    targets = config.get("target_modules") or []
    for key in ("rank_pattern", "alpha_pattern"):
        odd = sorted(set(config.get(key) or {}) - set(targets))
        if odd:
            raise ValueError("%s: %s keys %s are not target module names; only per-module-name ranks are supported" % (folder, key, odd))
    return config, safetensors.load_file(os.path.join(folder, ADAPTER_WEIGHTS))


def load_adapter(model, folder):
    """Applies and loads the adapter a folder holds (ours or PEFT's) onto a model without LoRA; returns the names."""
    config, weights = read_adapter(folder)
    groups = {}  # (r, alpha) -> target names
    for target in config["target_modules"]:
        r = (config.get("rank_pattern") or {}).get(target, config["r"])
        alpha = (config.get("alpha_pattern") or {}).get(target, config["lora_alpha"])
        groups.setdefault((r, alpha), []).append(target)
    names = []
    for (r, alpha), targets in groups.items():
        names += apply_lora(model, r, alpha, config.get("lora_dropout", 0.0), targets)
    load_lora_state_dict(model, weights)
    return names
