"""LoRA: gradients, freezing, enabling/disabling, merging and PEFT's names."""

import json
import os
import tempfile
import unittest

import torch
import torch.nn as nn
from pal_trainer import lora
from pal_trainer.model import Conv1D

from tests.test_model import EXPECTED_NAMES, random_ids, tiny_model


def train_a_little(model, steps=5, seed=0):
    optimizer = torch.optim.SGD(lora.lora_parameters(model), lr=0.5)
    ids = random_ids(2, 8, seed=seed)
    model.train()
    for _ in range(steps):
        logits, _ = model(ids[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


class LoRALinearTest(unittest.TestCase):
    def test_gradcheck_in_double_precision(self):
        torch.manual_seed(0)
        for base in (nn.Linear(5, 4).double(), Conv1D(5, 4, dtype=torch.float64)):
            with self.subTest(type(base).__name__):
                layer = lora.LoRALinear(base, r=3, alpha=6.0)
                self.assertEqual(layer.lora_A.weight.dtype, torch.float64)
                nn.init.normal_(layer.lora_B.weight)  # B = 0 would hide A's gradient
                x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
                params = (layer.weight, layer.bias, layer.lora_A.weight, layer.lora_B.weight)
                self.assertTrue(torch.autograd.gradcheck(lambda x, *p, layer=layer: layer(x), (x,) + params))

    def test_output_is_base_plus_scaled_low_rank_update(self):
        torch.manual_seed(0)
        base = nn.Linear(6, 4)
        layer = lora.LoRALinear(base, r=2, alpha=8.0)
        nn.init.normal_(layer.lora_B.weight)
        x = torch.randn(3, 6)
        expected = base(x) + x @ layer.lora_A.weight.t() @ layer.lora_B.weight.t() * 4.0
        torch.testing.assert_close(layer(x), expected)
        layer.enabled = False
        self.assertTrue(torch.equal(layer(x), base(x)))

    def test_half_precision_base_keeps_float32_adapters(self):
        layer = lora.LoRALinear(nn.Linear(4, 4).to(torch.bfloat16), r=2, alpha=2.0)
        self.assertEqual(layer.lora_A.weight.dtype, torch.float32)
        self.assertEqual(layer(torch.randn(2, 4, dtype=torch.bfloat16)).dtype, torch.bfloat16)


class ApplyLoRATest(unittest.TestCase):
    def test_only_adapters_train_and_fresh_adapters_change_nothing(self):
        for model_type, targets in (("llama", ["q_proj", "v_proj"]), ("gpt2", ["c_attn"])):
            with self.subTest(model_type):
                model = tiny_model(model_type)
                ids = random_ids(2, 6)
                before, _ = model(ids)
                names = lora.apply_lora(model, r=4, alpha=8, dropout=0.1, targets=targets)
                self.assertEqual(len(names), 2 * len(targets))
                trainable = {n for n, p in model.named_parameters() if p.requires_grad}
                self.assertEqual(trainable, {"%s.lora_%s.weight" % (n, ab) for n in names for ab in "AB"})
                self.assertEqual(set(map(id, lora.lora_parameters(model))), {id(p) for p in model.parameters() if p.requires_grad})
                self.assertTrue(torch.equal(model(ids)[0], before))

    def test_base_names_stay_in_the_state_dict(self):
        model = tiny_model("llama")
        lora.apply_lora(model, r=2, alpha=4, targets=["q_proj"])
        names = set(model.state_dict())
        self.assertTrue(set(EXPECTED_NAMES["llama"]) <= names)
        self.assertEqual(names - set(EXPECTED_NAMES["llama"]), {"model.layers.%d.self_attn.q_proj.lora_%s.weight" % (i, ab) for i in range(2) for ab in "AB"})

    def test_bad_targets(self):
        model = tiny_model("llama")
        with self.assertRaisesRegex(ValueError, "q_proj"):
            lora.apply_lora(model, targets=["query"])
        with self.assertRaisesRegex(TypeError, "not a linear layer"):
            lora.apply_lora(model, targets=["mlp"])
        lora.apply_lora(model, targets=["q_proj"])
        with self.assertRaisesRegex(ValueError, "already"):
            lora.apply_lora(model, targets=["q_proj"])

    def test_merge_after_training_keeps_the_logits_and_restores_plain_layers(self):
        for model_type, targets in (("llama", ["q_proj", "v_proj", "down_proj"]), ("qwen2", ["k_proj", "o_proj"]), ("gpt2", ["c_attn", "c_fc"])):
            with self.subTest(model_type):
                model = tiny_model(model_type)
                ids = random_ids(2, 7, seed=5)
                base_logits, _ = model(ids)
                lora.apply_lora(model, r=4, alpha=8, dropout=0.1, targets=targets)
                train_a_little(model)
                adapted, _ = model(ids)
                self.assertGreater((adapted - base_logits).abs().max().item(), 1e-3)
                lora.set_lora_enabled(model, False)
                self.assertTrue(torch.equal(model(ids)[0], base_logits))
                lora.set_lora_enabled(model, True)
                self.assertTrue(torch.equal(model(ids)[0], adapted))
                merged_names = lora.merge_lora(model)
                self.assertEqual(len(merged_names), 2 * len(targets))
                self.assertEqual(list(model.state_dict()), EXPECTED_NAMES[model_type])
                self.assertEqual(lora.lora_modules(model), [])
                torch.testing.assert_close(model(ids)[0], adapted, atol=1e-5, rtol=0)


class PeftFormatTest(unittest.TestCase):
    def test_state_dict_uses_peft_names(self):
        model = tiny_model("gpt2")
        lora.apply_lora(model, r=2, alpha=4, targets=["c_attn"])
        state = lora.lora_state_dict(model)
        self.assertEqual(list(state), ["base_model.model.transformer.h.%d.attn.c_attn.lora_%s.weight" % (i, ab) for i in range(2) for ab in "AB"])
        self.assertEqual(tuple(state["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].shape), (2, 32))
        self.assertEqual(tuple(state["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].shape), (96, 2))

    def test_load_state_dict_round_trip_and_mismatch(self):
        source = tiny_model("llama")
        lora.apply_lora(source, r=2, alpha=4, targets=["q_proj", "v_proj"])
        train_a_little(source)
        target = tiny_model("llama")
        lora.apply_lora(target, r=2, alpha=4, targets=["q_proj", "v_proj"])
        state = lora.lora_state_dict(source)
        lora.load_lora_state_dict(target, {k.replace(".lora_A.", ".lora_A.default."): v for k, v in state.items()})
        ids = random_ids(1, 6)
        self.assertTrue(torch.equal(source(ids)[0], target(ids)[0]))
        broken = dict(state)
        broken.pop("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        broken["base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"] = torch.zeros(2, 32)
        with self.assertRaisesRegex(ValueError, "missing.*q_proj.lora_A.*unexpected.*k_proj"):
            lora.load_lora_state_dict(target, broken)

    def test_adapter_folder_round_trip(self):
        source = tiny_model("gpt2")
        lora.apply_lora(source, r=2, alpha=4, targets=["c_attn"])
        train_a_little(source)
        with tempfile.TemporaryDirectory() as folder:
            lora.save_adapter(source, folder, base_model_name_or_path="openai-community/gpt2")
            with open(os.path.join(folder, "adapter_config.json")) as f:
                config = json.load(f)
            self.assertEqual((config["peft_type"], config["r"], config["lora_alpha"]), ("LORA", 2, 4))
            self.assertEqual((config["target_modules"], config["fan_in_fan_out"]), (["c_attn"], True))
            target = tiny_model("gpt2")
            self.assertEqual(lora.load_adapter(target, folder), ["transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"])
        ids = random_ids(1, 6)
        self.assertTrue(torch.equal(source(ids)[0], target(ids)[0]))

    def test_save_pretrained_refuses_unmerged_adapters(self):
        model = tiny_model("llama")
        lora.apply_lora(model, targets=["q_proj"])
        with tempfile.TemporaryDirectory() as folder, self.assertRaisesRegex(ValueError, "merge_lora"):
            model.save_pretrained(folder)


if __name__ == "__main__":
    unittest.main()


class CombineAdaptersTest(unittest.TestCase):
    def test_stacked_adapters_equal_the_two_stages_merged_in_turn(self):
        # Stage 1's adapter merged into the base, then stage 2's trained over that (other rank,
        # alpha and targets): one combined adapter on the base gives the same weights.
        from pal_trainer.combine_adapters import combine
        from pal_trainer.combine_adapters import main as combine_main

        read_adapter = lora.read_adapter
        with tempfile.TemporaryDirectory() as tmp:
            base = tiny_model("llama", seed=3)
            staged = tiny_model("llama", seed=3)
            lora.apply_lora(staged, r=4, alpha=8, targets=["q_proj", "v_proj"])
            for _, m in lora.lora_modules(staged):
                torch.nn.init.normal_(m.lora_B.weight)
            lora.save_adapter(staged, os.path.join(tmp, "one"))
            lora.merge_lora(staged)
            lora.apply_lora(staged, r=2, alpha=16, targets=["q_proj", "o_proj"])
            for _, m in lora.lora_modules(staged):
                torch.nn.init.normal_(m.lora_B.weight)
            lora.save_adapter(staged, os.path.join(tmp, "two"))
            lora.merge_lora(staged)

            self.assertEqual(combine_main([os.path.join(tmp, "one"), os.path.join(tmp, "two"), "--out", os.path.join(tmp, "both"), "--dtype", "float32"]), None)
            config, _ = read_adapter(os.path.join(tmp, "both"))
            # q_proj holds both stages (r 4 + 2), v_proj stage 1's 4, o_proj stage 2's 2: no zero rows.
            self.assertEqual((config["r"], config["lora_alpha"], config["target_modules"]), (6, 6, ["o_proj", "q_proj", "v_proj"]))
            self.assertEqual((config["rank_pattern"], config["alpha_pattern"]), ({"o_proj": 2, "v_proj": 4}, {"o_proj": 2, "v_proj": 4}))
            lora.load_adapter(base, os.path.join(tmp, "both"))
            lora.merge_lora(base)
            for name, value in staged.state_dict().items():
                torch.testing.assert_close(base.state_dict()[name], value, atol=1e-5, rtol=1e-5, msg=name)
            # Dropping the second adapter's scale would not give the same weights.
            (c1, w1), (c2, w2) = read_adapter(os.path.join(tmp, "one")), read_adapter(os.path.join(tmp, "two"))
            _, unscaled = combine([(c1, w1), (dict(c2, lora_alpha=c2["r"]), w2)])
            name = next(k for k in unscaled if "o_proj.lora_B" in k)
            self.assertFalse(torch.allclose(unscaled[name], read_adapter(os.path.join(tmp, "both"))[1][name]))
            # A rank_pattern keyed by a layer path (PEFT allows regexes) is refused, not guessed.
            with open(os.path.join(tmp, "both", "adapter_config.json"), encoding="utf-8") as f:
                odd = dict(json.load(f), rank_pattern={"model.layers.0.self_attn.q_proj": 3})
            with open(os.path.join(tmp, "both", "adapter_config.json"), "w", encoding="utf-8") as f:
                json.dump(odd, f)
            with self.assertRaisesRegex(ValueError, r"rank_pattern keys \['model.layers.0.self_attn.q_proj'\] are not target module names"):
                read_adapter(os.path.join(tmp, "both"))
