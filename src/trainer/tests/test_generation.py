"""Generation: greedy against a cache-free loop, batching with left padding, eos, seeds and filters."""

import unittest

import torch
from pal_trainer.generation import _filter_logits, generate

from tests.test_model import VOCAB, tiny_model

PROMPTS = [[5, 17, 3, 44, 9, 12], [8], [30, 2, 2]]


def greedy_without_cache(model, prompt, steps):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            logits, _ = model(torch.tensor([ids]))
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt) :]


class GenerateTest(unittest.TestCase):
    def test_greedy_equals_a_hand_rolled_argmax_loop(self):
        for model_type in ("llama", "qwen2", "gpt2"):
            with self.subTest(model_type):
                model = tiny_model(model_type)
                for prompt in PROMPTS:
                    self.assertEqual(generate(model, [prompt], 12, temperature=0)[0], greedy_without_cache(model, prompt, 12))

    def test_batch_of_different_lengths_equals_one_by_one(self):
        for model_type in ("llama", "gpt2"):
            with self.subTest(model_type):
                model = tiny_model(model_type, seed=3)
                alone = [generate(model, [p], 10, temperature=0)[0] for p in PROMPTS]
                self.assertEqual(generate(model, PROMPTS, 10, temperature=0, pad_token_id=1), alone)

    def test_eos_stops_and_is_not_included(self):
        model = tiny_model("llama")
        free = generate(model, PROMPTS, 12, temperature=0)
        eos = next(token for token in free[0] if token != free[0][0])  # first seen mid-sequence
        stopped = generate(model, PROMPTS, 12, temperature=0, eos_token_id=eos)
        self.assertGreater(len(stopped[0]), 0)
        self.assertEqual(stopped[0], free[0][: free[0].index(eos)])
        for row, tokens in enumerate(free):
            expected = tokens[: tokens.index(eos)] if eos in tokens else tokens
            self.assertEqual(stopped[row], expected)
        several = generate(model, PROMPTS, 12, temperature=0, eos_token_id=[VOCAB + 5, eos])
        self.assertEqual(several, stopped)

    def test_same_seed_same_samples(self):
        model = tiny_model("qwen2")

        def sample(seed):
            return generate(model, PROMPTS, 15, temperature=1.5, top_p=0.95, generator=torch.Generator().manual_seed(seed))

        first = sample(7)
        self.assertEqual(sample(7), first)
        self.assertNotEqual(sample(8), first)
        self.assertTrue(all(len(tokens) == 15 for tokens in first))

    def test_top_k_one_and_tiny_top_p_are_greedy(self):
        model = tiny_model("gpt2")
        greedy = generate(model, PROMPTS, 8, temperature=0)
        generator = torch.Generator().manual_seed(0)
        self.assertEqual(generate(model, PROMPTS, 8, top_k=1, generator=generator), greedy)
        self.assertEqual(generate(model, PROMPTS, 8, top_p=1e-6, generator=generator), greedy)

    def test_restores_the_training_mode(self):
        model = tiny_model("llama").train()
        generate(model, [[1, 2]], 2)
        self.assertTrue(model.training)
        model.eval()
        generate(model, [[1, 2]], 2)
        self.assertFalse(model.training)

    def test_edge_cases(self):
        model = tiny_model("gpt2")
        self.assertEqual(generate(model, [[1], [2, 3]], 0), [[], []])
        with self.assertRaises(ValueError):
            generate(model, [[]], 3)
        with self.assertRaisesRegex(ValueError, "positions"):
            generate(model, [[1] * 60], 10)


class FilterTest(unittest.TestCase):
    def test_top_k_and_top_p(self):
        logits = torch.log(torch.tensor([[0.5, 0.2, 0.05, 0.25]]))
        kept = torch.isfinite(_filter_logits(logits, top_k=2, top_p=1.0))
        self.assertEqual(kept.tolist(), [[True, False, False, True]])
        kept = torch.isfinite(_filter_logits(logits, top_k=0, top_p=0.7))
        self.assertEqual(kept.tolist(), [[True, False, False, True]])
        kept = torch.isfinite(_filter_logits(logits, top_k=0, top_p=0.74))
        self.assertEqual(kept.tolist(), [[True, False, False, True]])
        kept = torch.isfinite(_filter_logits(logits, top_k=0, top_p=0.76))
        self.assertEqual(kept.tolist(), [[True, True, False, True]])


if __name__ == "__main__":
    unittest.main()
