"""The transformer: Hugging Face names, save/load, KV cache, padding and the causal mask."""

import json
import os
import tempfile
import unittest
from unittest import mock

import torch
from pal_trainer import model as model_module
from pal_trainer import safetensors
from pal_trainer.model import CausalLM, ModelConfig, count_parameters, rope_inv_freq, rotate_half

VOCAB = 61


def tiny_config(model_type, **overrides):
    """A model of a few thousand parameters; initializer_range is large so logits differ visibly."""
    values = dict(
        model_type=model_type,
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        initializer_range=0.3,
        norm_eps=1e-5,
    )
    if model_type in ("llama", "mistral"):
        values.update(num_key_value_heads=2)
    elif model_type == "qwen2":
        values.update(num_key_value_heads=2, qkv_bias=True, tie_word_embeddings=True, rope_theta=1e6)
    elif model_type == "gpt2":
        values.update(hidden_act="gelu_new", tie_word_embeddings=True, qkv_bias=True, o_bias=True, mlp_bias=True)
    values.update(overrides)
    return ModelConfig(**values)


def tiny_model(model_type, seed=0, **overrides):
    torch.manual_seed(seed)
    return CausalLM(tiny_config(model_type, **overrides)).eval()


ALL_TYPES = ("llama", "qwen2", "gpt2")

LLAMA_LAYER = [
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
]
QWEN2_LAYER = [
    "self_attn.q_proj.weight",
    "self_attn.q_proj.bias",
    "self_attn.k_proj.weight",
    "self_attn.k_proj.bias",
    "self_attn.v_proj.weight",
    "self_attn.v_proj.bias",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
]
GPT2_LAYER = [
    "ln_1.weight",
    "ln_1.bias",
    "attn.c_attn.weight",
    "attn.c_attn.bias",
    "attn.c_proj.weight",
    "attn.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
]
EXPECTED_NAMES = {
    "llama": ["model.embed_tokens.weight"] + ["model.layers.%d.%s" % (i, n) for i in range(2) for n in LLAMA_LAYER] + ["model.norm.weight", "lm_head.weight"],
    "qwen2": ["model.embed_tokens.weight"] + ["model.layers.%d.%s" % (i, n) for i in range(2) for n in QWEN2_LAYER] + ["model.norm.weight"],
    "gpt2": ["transformer.wte.weight", "transformer.wpe.weight"]
    + ["transformer.h.%d.%s" % (i, n) for i in range(2) for n in GPT2_LAYER]
    + ["transformer.ln_f.weight", "transformer.ln_f.bias"],
}


def random_ids(batch, length, seed=1):
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


class NamesAndShapesTest(unittest.TestCase):
    def test_state_dict_has_exactly_the_hugging_face_names(self):
        for model_type in ALL_TYPES:
            with self.subTest(model_type):
                self.assertEqual(list(tiny_model(model_type).state_dict()), EXPECTED_NAMES[model_type])

    def test_shapes_follow_hugging_face(self):
        llama = tiny_model("llama").state_dict()
        self.assertEqual(tuple(llama["model.layers.0.self_attn.k_proj.weight"].shape), (16, 32))  # 2 kv heads of 8
        self.assertEqual(tuple(llama["model.layers.0.mlp.gate_proj.weight"].shape), (40, 32))
        gpt2 = tiny_model("gpt2").state_dict()
        self.assertEqual(tuple(gpt2["transformer.h.0.attn.c_attn.weight"].shape), (32, 96))  # Conv1D: (in, out)
        self.assertEqual(tuple(gpt2["transformer.h.0.mlp.c_fc.weight"].shape), (32, 40))

    def test_tied_models_use_the_embedding_for_logits(self):
        for model_type in ("qwen2", "gpt2"):
            model = tiny_model(model_type)
            self.assertFalse(hasattr(model, "lm_head"))
            embeddings = model.input_embeddings().weight
            with torch.no_grad():
                embeddings[5].zero_()
            logits, _ = model(random_ids(1, 4))
            self.assertTrue(torch.all(logits[..., 5] == 0))

    def test_count_parameters(self):
        model = tiny_model("gpt2")
        self.assertEqual(count_parameters(model), sum(t.numel() for t in model.state_dict().values()))
        model.transformer.wpe.weight.requires_grad_(False)
        self.assertEqual(count_parameters(model, trainable_only=True), count_parameters(model) - 64 * 32)


class ConfigTest(unittest.TestCase):
    SMOLLM2 = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000,
        "rope_scaling": None,
        "tie_word_embeddings": True,
        "vocab_size": 49152,
        "hidden_act": "silu",
        "attention_bias": False,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }
    QWEN25 = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "vocab_size": 151936,
        "hidden_act": "silu",
        "sliding_window": 32768,
        "use_sliding_window": False,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
    }
    GPT2 = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "n_ctx": 1024,
        "n_positions": 1024,
        "vocab_size": 50257,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": 0.1,
        "embd_pdrop": 0.1,
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "eos_token_id": 50256,
    }

    def test_reads_published_configs(self):
        smol = ModelConfig.from_hf(self.SMOLLM2)
        self.assertEqual((smol.num_key_value_heads, smol.head_dim, smol.tie_word_embeddings), (3, 64, True))
        self.assertEqual((smol.qkv_bias, smol.o_bias, smol.rope_theta, smol.norm_eps), (False, False, 1e5, 1e-5))
        qwen = ModelConfig.from_hf(self.QWEN25)
        self.assertEqual((qwen.qkv_bias, qwen.o_bias, qwen.head_dim), (True, False, 64))
        gpt2 = ModelConfig.from_hf(self.GPT2)
        self.assertEqual((gpt2.hidden_size, gpt2.intermediate_size, gpt2.num_hidden_layers), (768, 3072, 12))
        self.assertEqual((gpt2.hidden_act, gpt2.resid_pdrop, gpt2.tie_word_embeddings), ("gelu_new", 0.1, True))
        mistral = ModelConfig.from_hf(dict(self.SMOLLM2, model_type="mistral", sliding_window=4096))
        self.assertEqual(mistral.model_type, "mistral")

    def test_reads_transformers_5_rope_parameters(self):
        v5 = {k: v for k, v in self.SMOLLM2.items() if k not in ("rope_theta", "rope_scaling")}
        scaling = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
        config = ModelConfig.from_hf(dict(v5, rope_parameters=dict(scaling, rope_theta=500000.0)))
        self.assertEqual((config.rope_theta, config.rope_scaling), (500000.0, scaling))
        config = ModelConfig.from_hf(dict(v5, rope_parameters={"rope_type": "default", "rope_theta": 100000.0}))
        self.assertEqual((config.rope_theta, config.rope_scaling), (100000.0, None))

    def test_to_hf_round_trips_and_names_the_architecture(self):
        for hf in (self.SMOLLM2, self.QWEN25, self.GPT2, dict(self.SMOLLM2, model_type="mistral")):
            config = ModelConfig.from_hf(hf)
            written = config.to_hf(torch_dtype=torch.bfloat16)
            self.assertEqual(written["architectures"], hf["architectures"] if hf["model_type"] != "mistral" else ["MistralForCausalLM"])
            self.assertEqual(written["torch_dtype"], "bfloat16")
            self.assertEqual(ModelConfig.from_hf(json.loads(json.dumps(written))), config)
        self.assertEqual(ModelConfig.from_hf(self.SMOLLM2).to_hf()["num_key_value_heads"], 3)
        self.assertEqual(ModelConfig.from_hf(self.GPT2).to_hf()["n_embd"], 768)

    def test_rejects_what_it_cannot_run(self):
        with self.assertRaisesRegex(ValueError, "falcon"):
            ModelConfig.from_hf({"model_type": "falcon"})
        with self.assertRaisesRegex(ValueError, "hidden_size"):
            ModelConfig.from_hf({"model_type": "llama", "vocab_size": 10})
        with self.assertRaisesRegex(ValueError, "rope_scaling"):
            ModelConfig.from_hf(dict(self.SMOLLM2, rope_scaling={"rope_type": "yarn", "factor": 4.0}))
        with self.assertRaisesRegex(ValueError, "multiple"):
            tiny_config("llama", num_key_value_heads=3)
        with self.assertRaisesRegex(ValueError, "qwen2"):
            tiny_config("qwen2", qkv_bias=False)

    def test_llama3_rope_scaling_changes_only_low_frequencies(self):
        scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
        plain = rope_inv_freq(tiny_config("llama", rope_theta=500000.0, hidden_size=256, num_attention_heads=2))
        scaled = rope_inv_freq(tiny_config("llama", rope_theta=500000.0, hidden_size=256, num_attention_heads=2, rope_scaling=scaling))
        self.assertTrue(torch.equal(scaled[:8], plain[:8]))  # high frequencies untouched
        self.assertTrue(torch.allclose(scaled[-1], plain[-1] / 8))  # lowest divided by the factor


class SaveLoadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_save_then_load_gives_identical_logits(self):
        ids = random_ids(2, 9)
        for model_type in ALL_TYPES:
            with self.subTest(model_type):
                model = tiny_model(model_type)
                folder = os.path.join(self.dir, model_type)
                self.assertEqual(model.save_pretrained(folder), ["model.safetensors"])
                with open(os.path.join(folder, "config.json")) as f:
                    self.assertEqual(json.load(f)["model_type"], model_type)
                loaded = CausalLM.from_pretrained(folder)
                self.assertFalse(loaded.training)
                self.assertEqual(sorted(safetensors.load_file(os.path.join(folder, "model.safetensors"))), sorted(EXPECTED_NAMES[model_type]))
                self.assertTrue(torch.equal(model(ids)[0], loaded(ids)[0]))

    def test_sharded_checkpoint_and_dtype_choice(self):
        model = tiny_model("llama")
        files = model.save_pretrained(self.dir, max_shard_bytes=8000)
        self.assertIn("model.safetensors.index.json", files)
        self.assertGreater(len(files), 2)
        ids = random_ids(1, 5)
        self.assertTrue(torch.equal(model(ids)[0], CausalLM.from_pretrained(self.dir)(ids)[0]))
        half = CausalLM.from_pretrained(self.dir, dtype="bfloat16")
        self.assertEqual({p.dtype for p in half.parameters()}, {torch.bfloat16})

    def test_saving_in_bfloat16_writes_bfloat16(self):
        tiny_model("qwen2").save_pretrained(self.dir, dtype=torch.bfloat16)
        with open(os.path.join(self.dir, "config.json")) as f:
            self.assertEqual(json.load(f)["torch_dtype"], "bfloat16")
        header, metadata, _ = safetensors.read_header(os.path.join(self.dir, "model.safetensors"))
        self.assertEqual({info["dtype"] for info in header.values()}, {"BF16"})
        self.assertEqual(metadata, {"format": "pt"})
        loaded = CausalLM.from_pretrained(self.dir)
        self.assertEqual(next(loaded.parameters()).dtype, torch.bfloat16)

    def write_checkpoint(self, model, tensors):
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(model.config.to_hf(), f)
        safetensors.save_file(tensors, os.path.join(self.dir, "model.safetensors"))

    def test_transposed_or_misnamed_checkpoint_raises_a_clear_error(self):
        model = tiny_model("llama")
        tensors = dict(model.state_dict())
        tensors["model.layers.0.mlp.gate_proj.weight"] = tensors["model.layers.0.mlp.gate_proj.weight"].t()
        tensors["model.layers.1.mlp.up.weight"] = tensors.pop("model.layers.1.mlp.up_proj.weight")
        self.write_checkpoint(model, tensors)
        with self.assertRaises(ValueError) as caught:
            CausalLM.from_pretrained(self.dir)
        message = str(caught.exception)
        for part in (
            self.dir,
            "missing: model.layers.1.mlp.up_proj.weight",
            "unexpected: model.layers.1.mlp.up.weight",
            "model.layers.0.mlp.gate_proj.weight is (32, 40), expected (40, 32)",
        ):
            self.assertIn(part, message)

    def test_accepts_old_gpt2_files_without_prefix_and_with_attention_buffers(self):
        model = tiny_model("gpt2")
        tensors = {name[len("transformer.") :]: t for name, t in model.state_dict().items()}
        for i in range(2):
            tensors["h.%d.attn.bias" % i] = torch.ones(1, 1, 64, 64).tril()
            tensors["h.%d.attn.masked_bias" % i] = torch.tensor(-1e4)
        self.write_checkpoint(model, tensors)
        ids = random_ids(2, 6)
        self.assertTrue(torch.equal(model(ids)[0], CausalLM.from_pretrained(self.dir)(ids)[0]))

    def test_tied_checkpoint_that_still_carries_lm_head_loads(self):
        model = tiny_model("qwen2")
        tensors = dict(model.state_dict())
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
        tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(4)
        self.write_checkpoint(model, tensors)
        ids = random_ids(1, 6)
        self.assertTrue(torch.equal(model(ids)[0], CausalLM.from_pretrained(self.dir)(ids)[0]))


class ForwardTest(unittest.TestCase):
    def test_kv_cache_matches_a_full_forward(self):
        ids = random_ids(2, 10)
        for model_type in ALL_TYPES:
            with self.subTest(model_type):
                model = tiny_model(model_type)
                full, _ = model(ids)
                logits, past = model(ids[:, :4], use_cache=True)
                steps = [logits]
                for t in range(4, 10):
                    logits, past = model(ids[:, t : t + 1], past_key_values=past, use_cache=True)
                    steps.append(logits)
                self.assertEqual(tuple(past[0][0].shape), (2, 2 if model_type != "gpt2" else 4, 10, 8))
                torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)

    def test_left_padded_batch_matches_the_unpadded_sequences(self):
        long_ids, short_ids = random_ids(1, 9, seed=2), random_ids(1, 5, seed=3)
        pad = torch.zeros(1, 4, dtype=torch.long)
        batch = torch.cat((long_ids, torch.cat((pad, short_ids), dim=1)))
        mask = torch.ones(2, 9, dtype=torch.long)
        mask[1, :4] = 0
        for model_type in ALL_TYPES:
            with self.subTest(model_type):
                model = tiny_model(model_type)
                logits, past = model(batch, attention_mask=mask, use_cache=True)
                torch.testing.assert_close(logits[1:, 4:], model(short_ids)[0], atol=1e-5, rtol=0)
                torch.testing.assert_close(logits[:1], model(long_ids)[0], atol=1e-5, rtol=0)
                # One more cached step keeps matching, the mask growing by one column.
                next_ids = torch.tensor([[7], [11]])
                step, _ = model(next_ids, attention_mask=torch.cat((mask, torch.ones(2, 1, dtype=torch.long)), 1), past_key_values=past, use_cache=True)
                alone, _ = model(torch.cat((short_ids, next_ids[1:]), dim=1))
                torch.testing.assert_close(step[1, -1], alone[0, -1], atol=1e-5, rtol=0)

    def test_half_precision_left_padding_stays_finite(self):
        model = tiny_model("llama").to(torch.bfloat16)
        mask = torch.tensor([[0, 0, 0, 1, 1], [1, 1, 1, 1, 1]])
        logits, _ = model(random_ids(2, 5), attention_mask=mask)
        self.assertEqual(logits.dtype, torch.bfloat16)
        self.assertTrue(torch.isfinite(logits).all())

    def test_causal_mask_hides_later_tokens(self):
        ids = random_ids(1, 8)
        changed = ids.clone()
        changed[0, 5] = (changed[0, 5] + 1) % VOCAB
        for model_type in ALL_TYPES:
            with self.subTest(model_type):
                model = tiny_model(model_type)
                before, after = model(ids)[0], model(changed)[0]
                self.assertTrue(torch.equal(before[:, :5], after[:, :5]))
                self.assertFalse(torch.allclose(before[:, 5:], after[:, 5:]))

    def test_padding_tokens_do_not_leak_into_real_ones(self):
        model = tiny_model("qwen2")
        mask = torch.tensor([[0, 0, 1, 1, 1]])
        a, b = random_ids(1, 5, seed=4), random_ids(1, 5, seed=4)
        b[0, :2] = torch.tensor([3, 9])
        torch.testing.assert_close(model(a, attention_mask=mask)[0][:, 2:], model(b, attention_mask=mask)[0][:, 2:], atol=1e-6, rtol=0)

    def test_fused_attention_equals_the_plain_ops(self):
        # The fused kernel (torch >= 2) against the plain ops, which ONNX export keeps: no padding,
        # left and right padding (a batch of one too), and a cached step. Left padding gives query
        # rows with no key at all; their real neighbours must not change, and nothing may be NaN.
        if model_module._SDPA is None:
            self.skipTest("torch %s has no scaled_dot_product_attention" % torch.__version__)
        model = tiny_model("llama")
        ids = random_ids(2, 7, seed=3)
        masks = [
            None,
            torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]]),
            torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]]),
            torch.tensor([[0, 0, 0, 1, 1, 1, 1]] * 2),
        ]
        for mask in masks:
            for rows in (slice(0, 2), slice(0, 1)):
                with self.subTest(mask=None if mask is None else mask.tolist(), rows=rows):
                    m = None if mask is None else mask[rows]
                    fused = model(ids[rows], attention_mask=m)[0]
                    with mock.patch.object(model_module, "_SDPA", None):
                        plain = model(ids[rows], attention_mask=m)[0]
                    self.assertFalse(bool(fused.isnan().any()))
                    real = (m if m is not None else torch.ones_like(ids[rows])).bool()
                    torch.testing.assert_close(fused[real], plain[real], atol=1e-5, rtol=1e-5)
        logits, past = model(ids[:, :5], use_cache=True)
        step = model(ids[:, 5:6], past_key_values=past, use_cache=True)[0]
        with mock.patch.object(model_module, "_SDPA", None):
            plain_step = model(ids[:, 5:6], past_key_values=past, use_cache=True)[0]
        torch.testing.assert_close(step, plain_step, atol=1e-5, rtol=1e-5)

    def test_gradient_checkpointing_gives_the_same_gradients(self):
        ids = random_ids(2, 7)
        grads = []
        for checkpointing in (False, True):
            model = tiny_model("llama").train()
            model.gradient_checkpointing = checkpointing
            model(ids)[0].logsumexp(-1).sum().backward()
            grads.append([p.grad for p in model.parameters()])
        for plain, checkpointed in zip(*grads, strict=True):
            torch.testing.assert_close(plain, checkpointed, atol=1e-6, rtol=1e-5)

    def test_logits_to_keep_returns_the_last_positions(self):
        model = tiny_model("gpt2")
        ids = random_ids(2, 6)
        torch.testing.assert_close(model(ids, logits_to_keep=2)[0], model(ids)[0][:, -2:], atol=1e-6, rtol=0)

    def test_rotary_positions_are_relative(self):
        model = tiny_model("llama")
        ids = random_ids(1, 5)
        default, _ = model(ids)
        self.assertTrue(torch.equal(default, model(ids, position_ids=torch.arange(5)[None])[0]))
        torch.testing.assert_close(model(ids, position_ids=torch.arange(30, 35)[None])[0], default, atol=1e-4, rtol=0)
        gapped, _ = model(ids, position_ids=torch.tensor([[0, 1, 2, 3, 9]]))
        torch.testing.assert_close(gapped[:, :4], default[:, :4], atol=1e-6, rtol=0)
        self.assertGreater((gapped[:, 4] - default[:, 4]).abs().max().item(), 1e-3)

    def test_rotary_embedding_rotates_halves_as_hugging_face_llama(self):
        model = tiny_model("llama")
        _, (cos, sin) = model.model.embed(torch.zeros(1, 4, dtype=torch.long), torch.tensor([[0, 1, 2, 3]]))
        x = torch.randn(8)
        inv_freq = rope_inv_freq(model.config)
        position = 3
        half = 4
        expected = torch.empty(8)
        for i in range(half):
            angle = torch.tensor(position * inv_freq[i].item())
            expected[i] = x[i] * angle.cos() - x[i + half] * angle.sin()
            expected[i + half] = x[i + half] * angle.cos() + x[i] * angle.sin()
        rotated = x * cos[0, 0, position] + rotate_half(x) * sin[0, 0, position]
        torch.testing.assert_close(rotated, expected, atol=1e-6, rtol=0)


if __name__ == "__main__":
    unittest.main()
