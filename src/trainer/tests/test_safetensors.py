"""The safetensors reader/writer: exact layout, every dtype, shards, and errors that name the file."""

import json
import os
import struct
import tempfile
import unittest
from unittest import mock

import torch
from pal_trainer import safetensors as st


def sample_tensors():
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, dtype in st.DTYPES.items():
        if dtype.is_floating_point:
            values = torch.randn(2, 3, generator=g).to(dtype)
        elif dtype == torch.bool:
            values = torch.randint(0, 2, (2, 3), generator=g).bool()
        else:
            info = torch.iinfo(dtype)
            values = torch.randint(max(info.min, -1000), min(info.max, 1000), (2, 3), generator=g).to(dtype)
        tensors[name.lower()] = values
        tensors[name.lower() + "_scalar"] = values[0, 0].clone()
        tensors[name.lower() + "_empty"] = values[:0]
    return tensors


class SafetensorsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name="t.safetensors"):
        return os.path.join(self.dir, name)

    def assertSameTensors(self, expected, actual):
        self.assertEqual(sorted(expected), sorted(actual))
        for name, tensor in expected.items():
            self.assertEqual(actual[name].dtype, tensor.dtype, name)
            self.assertEqual(actual[name].shape, tensor.shape, name)
            self.assertTrue(torch.equal(actual[name], tensor), name)

    def test_round_trip_of_every_dtype(self):
        tensors = sample_tensors()
        for required in ("f32", "f16", "bf16", "f64", "i64", "i32", "i16", "i8", "u8", "bool"):
            self.assertIn(required, tensors)
        st.save_file(tensors, self.path())
        self.assertSameTensors(tensors, st.load_file(self.path()))

    def test_a_saved_file_gets_the_mode_of_any_new_file(self):
        # The temporary file behind the atomic write is owner-only; the saved model must not be.
        old = os.umask(0o022)
        try:
            st.save_file({"x": torch.zeros(2)}, self.path())
        finally:
            os.umask(old)
        self.assertEqual(os.stat(self.path()).st_mode & 0o777, 0o644)

    def test_non_contiguous_input_is_saved_by_value(self):
        base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
        tensors = {"t": base.t(), "slice": base[1:, ::2]}
        st.save_file(tensors, self.path())
        self.assertSameTensors({k: v.contiguous() for k, v in tensors.items()}, st.load_file(self.path()))

    def test_header_layout_is_byte_exact(self):
        st.save_file({"w": torch.tensor([1.0, -2.5], dtype=torch.float32)}, self.path(), metadata={"format": "pt"})
        header = b'{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
        header += b" " * (-len(header) % 8)
        expected = struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, -2.5)
        with open(self.path(), "rb") as f:
            self.assertEqual(f.read(), expected)
        self.assertEqual(len(header) % 8, 0)

    def test_reads_a_hand_built_file_with_spaces_and_its_own_key_order(self):
        header = b'{ "b": {"shape": [], "data_offsets": [4, 6], "dtype": "I16"},\n "a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]} }'
        data = struct.pack("<ih", 7, -3)
        with open(self.path(), "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header + data)
        loaded = st.load_file(self.path())
        self.assertEqual(loaded["a"].tolist(), [7])
        self.assertEqual(loaded["b"].item(), -3)
        self.assertEqual(loaded["b"].dim(), 0)

    def test_larger_elements_come_first_so_every_tensor_is_aligned(self):
        tensors = {"a_byte": torch.ones(3, dtype=torch.uint8), "b_double": torch.ones(2, dtype=torch.float64), "c_half": torch.ones(1, dtype=torch.float16)}
        st.save_file(tensors, self.path())
        header, _, data_start = st.read_header(self.path())
        self.assertEqual(data_start % 8, 0)
        self.assertEqual(header["b_double"]["data_offsets"], [0, 16])
        self.assertEqual(header["c_half"]["data_offsets"], [16, 18])
        self.assertEqual(header["a_byte"]["data_offsets"], [18, 21])

    def test_metadata_round_trip(self):
        st.save_file({"x": torch.zeros(1)}, self.path(), metadata={"format": "pt", "step": "12"})
        _, metadata, _ = st.read_header(self.path())
        self.assertEqual(metadata, {"format": "pt", "step": "12"})
        with self.assertRaises(TypeError):
            st.save_file({"x": torch.zeros(1)}, self.path(), metadata={"step": 12})

    def test_load_to_a_device_argument(self):
        st.save_file({"x": torch.arange(3)}, self.path())
        self.assertEqual(st.load_file(self.path(), device=torch.device("cpu"))["x"].tolist(), [0, 1, 2])

    def test_sharded_save_and_load_with_index(self):
        tensors = {"layer%d" % i: torch.full((64,), float(i)) for i in range(5)}  # 256 bytes each
        written = st.save_sharded(tensors, self.dir, max_shard_bytes=600)
        shards = ["model-0000%d-of-00003.safetensors" % i for i in (1, 2, 3)]
        self.assertEqual(written, shards + [st.INDEX_FILE])
        with open(os.path.join(self.dir, st.INDEX_FILE)) as f:
            index = json.load(f)
        self.assertEqual(index["metadata"]["total_size"], 5 * 256)
        self.assertEqual(index["weight_map"], {"layer0": shards[0], "layer1": shards[0], "layer2": shards[1], "layer3": shards[1], "layer4": shards[2]})
        self.assertSameTensors(tensors, st.load_sharded(self.dir))

    def test_tensor_larger_than_a_shard_gets_its_own(self):
        tensors = {"small": torch.zeros(2), "huge": torch.zeros(100), "tail": torch.zeros(2)}
        st.save_sharded(tensors, self.dir, max_shard_bytes=64)
        with open(os.path.join(self.dir, st.INDEX_FILE)) as f:
            self.assertEqual(len(set(json.load(f)["weight_map"].values())), 3)
        self.assertSameTensors(tensors, st.load_sharded(self.dir))

    def test_small_checkpoint_is_one_file_and_replaces_old_shards(self):
        st.save_sharded({"a": torch.zeros(64), "b": torch.ones(64)}, self.dir, max_shard_bytes=300)
        self.assertIn(st.INDEX_FILE, os.listdir(self.dir))
        tensors = {"c": torch.arange(4)}
        self.assertEqual(st.save_sharded(tensors, self.dir), [st.SINGLE_FILE])
        self.assertEqual(sorted(os.listdir(self.dir)), [st.SINGLE_FILE])
        self.assertSameTensors(tensors, st.load_sharded(self.dir))

    def test_missing_checkpoint_and_missing_shard(self):
        with self.assertRaisesRegex(st.SafetensorsError, "neither"):
            st.load_sharded(self.dir)
        st.save_sharded({"a": torch.zeros(64), "b": torch.ones(64)}, self.dir, max_shard_bytes=300)
        os.unlink(os.path.join(self.dir, "model-00002-of-00002.safetensors"))
        with self.assertRaisesRegex(st.SafetensorsError, "00002-of-00002.safetensors is missing"):
            st.load_sharded(self.dir)

    def test_truncated_file_names_the_file(self):
        st.save_file({"w": torch.zeros(16)}, self.path())
        with open(self.path(), "rb") as f:
            content = f.read()
        for cut in (len(content) - 4, 20, 5):
            with open(self.path("cut.safetensors"), "wb") as f:
                f.write(content[:cut])
            with self.assertRaises(st.SafetensorsError) as caught:
                st.load_file(self.path("cut.safetensors"))
            self.assertIn("cut.safetensors", str(caught.exception))
            self.assertIn("truncated", str(caught.exception))

    def write_raw(self, header_bytes, data=b"", name="bad.safetensors"):
        with open(self.path(name), "wb") as f:
            f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
        return self.path(name)

    def assertLoadFails(self, path, *phrases):
        with self.assertRaises(st.SafetensorsError) as caught:
            st.load_file(path)
        message = str(caught.exception)
        self.assertIn(os.path.basename(path), message)
        for phrase in phrases:
            self.assertIn(phrase, message)

    def test_bad_headers(self):
        self.assertLoadFails(self.write_raw(b"not json"), "bad header")
        self.assertLoadFails(self.write_raw(b"[1, 2]"), "bad header")
        self.assertLoadFails(self.write_raw(b'{"w": {"dtype": "F32", "shape": [2]}}'), "'w'", "bad header")
        self.assertLoadFails(self.write_raw(b'{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', b"\0" * 8), "'w'", "needs 12")
        with open(self.path("huge.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", 2**40) + b"{}")
        self.assertLoadFails(self.path("huge.safetensors"), "bad header")

    def test_unknown_dtype(self):
        path = self.write_raw(b'{"w": {"dtype": "F12", "shape": [1], "data_offsets": [0, 2]}}', b"\0\0")
        self.assertLoadFails(path, "unknown dtype", "F12")

    def test_offsets_out_of_range(self):
        path = self.write_raw(b'{"w": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}}', b"\0" * 6)
        self.assertLoadFails(path, "out of range", "'w'")

    def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(self):
        st.save_file({"w": torch.ones(4)}, self.path())
        with mock.patch.object(st, "_write_tensor", side_effect=OSError("disk full")):
            with self.assertRaises(OSError):
                st.save_file({"w": torch.zeros(4)}, self.path())
        self.assertEqual(os.listdir(self.dir), ["t.safetensors"])
        self.assertEqual(st.load_file(self.path())["w"].tolist(), [1.0] * 4)

    def test_rejects_what_it_cannot_store(self):
        with self.assertRaises(ValueError):
            st.save_file({"c": torch.zeros(2, dtype=torch.complex64)}, self.path())
        with self.assertRaises(TypeError):
            st.save_file({"x": [1, 2]}, self.path())
        with self.assertRaises(ValueError):
            st.save_file({"__metadata__": torch.zeros(1)}, self.path())


if __name__ == "__main__":
    unittest.main()
