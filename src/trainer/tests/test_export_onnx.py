"""The exported graph's interface, read back from model.onnx (the Node parity test checks the numbers).

Without the onnx package, model.onnx is read with a minimal protobuf decoder covering the few
ModelProto fields checked here.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import torch
from pal_trainer.export_onnx import export_onnx
from pal_trainer.model import CausalLM, ModelConfig

# ONNX TensorProto.DataType
FLOAT, INT64 = 1, 7


def _varint(buf, i):
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def fields(buf):
    """{field number: [values]} of one protobuf message; length-delimited values stay bytes."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = bytes(buf[i : i + size]), i + size
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        out.setdefault(number, []).append(value)
    return out


def value_info(raw):
    """ValueInfoProto -> (name, elem_type, [dim_value or dim_param])."""
    v = fields(raw)
    tensor = fields(fields(v[2][0])[1][0])
    dims = []
    for d in fields(tensor[2][0]).get(1, []) if 2 in tensor else []:
        d = fields(d)
        dims.append(d[1][0] if 1 in d else d[2][0].decode())
    return v[1][0].decode(), tensor[1][0], dims


def read_onnx(path):
    with open(path, "rb") as f:
        model = fields(f.read())
    graph = fields(model[7][0])
    opsets = {fields(o).get(1, [b""])[0].decode(): fields(o)[2][0] for o in model.get(8, [])}
    initializers = [fields(t) for t in graph.get(5, [])]
    weight_bytes = sum(len(t.get(9, [b""])[0]) for t in initializers)
    return {
        "inputs": [value_info(v) for v in graph.get(11, [])],
        "outputs": [value_info(v) for v in graph.get(12, [])],
        "opset": opsets.get(""),
        "weight_bytes": weight_bytes,
    }


def tiny(model_type):
    torch.manual_seed(0)
    extra = (
        {"num_key_value_heads": 2, "tie_word_embeddings": True}
        if model_type == "llama"
        else {"tie_word_embeddings": True, "qkv_bias": True, "o_bias": True, "mlp_bias": True, "hidden_act": "gelu_new"}
    )
    config = ModelConfig(
        model_type=model_type,
        vocab_size=61,
        hidden_size=32,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        eos_token_id=2,
        **extra,
    )
    return CausalLM(config).eval()


class ExportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def check_graph(self, model_type, kv_heads):
        model = tiny(model_type)
        path = export_onnx(model, self.tmp.name, generation_config={"max_new_tokens": 7})
        g = read_onnx(path)
        self.assertEqual(g["opset"], 14)
        past = [("past_key_values.%d.%s" % (i, kv), FLOAT, ["batch_size", kv_heads, "past_sequence_length", 8]) for i in range(2) for kv in ("key", "value")]
        self.assertEqual(
            g["inputs"],
            [
                ("input_ids", INT64, ["batch_size", "sequence_length"]),
                ("attention_mask", INT64, ["batch_size", "total_sequence_length"]),
                ("position_ids", INT64, ["batch_size", "sequence_length"]),
            ]
            + past,
        )
        present = [("present.%d.%s" % (i, kv), FLOAT, ["batch_size", kv_heads, "total_sequence_length", 8]) for i in range(2) for kv in ("key", "value")]
        self.assertEqual(g["outputs"], [("logits", FLOAT, ["batch_size", "sequence_length", 61])] + present)
        # Every weight once, tied embeddings included (constant folding could duplicate the transposed matrix).
        self.assertLessEqual(g["weight_bytes"], 4 * sum(p.numel() for p in model.parameters()) * 1.05)

        with open(os.path.join(self.tmp.name, "config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["model_type"], model_type)
        self.assertEqual(config["transformers.js_config"]["dtype"], "fp32")
        with open(os.path.join(self.tmp.name, "generation_config.json")) as f:
            self.assertEqual(json.load(f), {"eos_token_id": 2, "pad_token_id": 2, "max_new_tokens": 7})
        return config

    def test_llama_graph(self):
        config = self.check_graph("llama", 2)
        self.assertEqual((config["num_key_value_heads"], config["head_dim"]), (2, 8))

    def test_gpt2_graph(self):
        config = self.check_graph("gpt2", 4)
        self.assertEqual((config["n_head"], config["n_layer"], config["n_embd"]), (4, 2, 32))

    def test_cli_copies_tokenizer_files(self):
        src = os.path.join(self.tmp.name, "src")
        out = os.path.join(self.tmp.name, "out")
        tiny("llama").save_pretrained(src)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            with open(os.path.join(src, name), "w") as f:
                f.write("{}")
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        subprocess.run([sys.executable, "-m", "pal_trainer.export_onnx", src, out], check=True, env=env, stdout=subprocess.DEVNULL)
        self.assertEqual(sorted(os.listdir(out)), ["config.json", "generation_config.json", "onnx", "tokenizer.json", "tokenizer_config.json"])
        self.assertEqual(os.listdir(os.path.join(out, "onnx")), ["model.onnx"])

    def test_compressed_weights_shrink_the_file_and_keep_the_model(self):
        model = tiny("llama")
        ids = torch.randint(0, 61, (2, 9))
        with torch.no_grad():
            reference, _ = model(ids)
        fp32 = read_onnx(export_onnx(model, os.path.join(self.tmp.name, "fp32")))
        for kind, ratio, tolerance in (("fp16", 0.5, 2e-3), ("int8", 0.27, 0.05)):
            g = read_onnx(export_onnx(model, os.path.join(self.tmp.name, kind), weights=kind))
            self.assertEqual(g["inputs"], fp32["inputs"], "the interface stays fp32")
            self.assertEqual(g["outputs"], fp32["outputs"])
            self.assertLess(g["weight_bytes"], fp32["weight_bytes"] * ratio * 1.1, kind)
            # The graph computes what the compressed module computes, which stays close to the original.
            import copy

            from pal_trainer.export_onnx import compress_weights

            with torch.no_grad():
                logits, _ = compress_weights(copy.deepcopy(model), kind)(ids)
            self.assertLess((logits - reference).abs().max().item(), tolerance, kind)
            self.assertGreater((logits - reference).abs().max().item(), 0, "%s is not a no-op" % kind)
        self.assertEqual([p.dtype for p in model.parameters()][0], torch.float32, "the caller's model is untouched")

    def test_cli_writes_safetensors_beside_the_onnx_model(self):
        src = os.path.join(self.tmp.name, "src")
        out = os.path.join(self.tmp.name, "out")
        model = tiny("llama")
        model.save_pretrained(src)
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        subprocess.run(
            [sys.executable, "-m", "pal_trainer.export_onnx", src, out, "--weights", "int8", "--safetensors", "fp16"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        back = CausalLM.from_pretrained(out)
        self.assertEqual(next(back.parameters()).dtype, torch.float16)
        for (name, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items(), strict=True):
            self.assertLess((a - b.float()).abs().max().item(), 1e-3, name)
        with open(os.path.join(out, "config.json")) as f:
            config = json.load(f)
        self.assertEqual((config["torch_dtype"], config["transformers.js_config"]["dtype"]), ("float16", "fp32"))


class InitModelTest(unittest.TestCase):
    def test_a_new_model_starts_near_uniform_and_is_seeded(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "config.json")
            with open(config, "w") as f:
                json.dump(
                    {
                        "model_type": "llama",
                        "vocab_size": 300,
                        "hidden_size": 32,
                        "intermediate_size": 64,
                        "num_hidden_layers": 2,
                        "num_attention_heads": 4,
                        "max_position_embeddings": 64,
                        "tie_word_embeddings": True,
                        "eos_token_id": 0,
                    },
                    f,
                )
            env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
                subprocess.run(
                    [sys.executable, "-m", "pal_trainer.init_model", config, os.path.join(tmp, name), "--seed", seed],
                    check=True,
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            a, b, c = (CausalLM.from_pretrained(os.path.join(tmp, n)) for n in "abc")
            self.assertTrue(all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)))
            self.assertFalse(torch.equal(a.state_dict()["model.embed_tokens.weight"], c.state_dict()["model.embed_tokens.weight"]))
            # GPT-2's initialisation: the first loss is close to log(vocab), not the huge value
            # torch's N(0, 1) embeddings would give a tied output layer.
            ids = torch.randint(0, 300, (4, 16))
            with torch.no_grad():
                logits, _ = a(ids)
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 300), ids[:, 1:].reshape(-1)).item()
            self.assertLess(abs(loss - math.log(300)), 0.1)
            self.assertAlmostEqual(a.state_dict()["model.embed_tokens.weight"].std().item(), 0.02, delta=0.002)
            self.assertAlmostEqual(a.state_dict()["model.layers.0.self_attn.o_proj.weight"].std().item(), 0.02 / 2, delta=0.002)


if __name__ == "__main__":
    unittest.main()
