"""The probe the engine runs in every candidate interpreter: it must always answer, never raise."""

import io
import json
import os
import subprocess
import sys
import tempfile
import types
import unittest
from contextlib import redirect_stdout
from unittest import mock

from pal_trainer import probe


class ProbeTest(unittest.TestCase):
    def test_main_prints_exactly_one_json_line(self):
        out = io.StringIO()
        with redirect_stdout(out):
            probe.main()
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 1)
        report = json.loads(lines[0])
        self.assertEqual(report["probe"], 1)
        self.assertEqual(report["executable"], sys.executable)
        self.assertRegex(report["version"], r"^3\.\d+")

    def test_reports_torch_when_importable(self):
        try:
            import torch
        except ImportError:
            self.skipTest("torch is not installed in this interpreter")
        report = probe.probe()
        t = report["torch"]
        self.assertEqual(t["version"], torch.__version__)
        self.assertIsInstance(t["cuda"]["usable"], bool)
        self.assertEqual(t["cuda"]["usable"], torch.cuda.is_available() and "error" not in t["cuda"])
        self.assertGreaterEqual(t["threads"], 1)
        if sys.platform.startswith("linux"):
            self.assertTrue(t["blasLibraries"], "the BLAS torch loaded is listed")

    def test_a_broken_torch_is_reported_not_raised(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "torch.py"), "w") as f:
                f.write("raise RuntimeError('CUDA driver version is insufficient')\n")
            result = subprocess.run(
                [sys.executable, "-B", probe.__file__],
                env={**os.environ, "PYTHONPATH": tmp},
                capture_output=True,
                text=True,
                timeout=60,
            )
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        self.assertIsNone(report["torch"])
        self.assertEqual(report["torchError"], "RuntimeError: CUDA driver version is insufficient")

    def test_a_failing_cuda_allocation_makes_the_gpu_unusable_with_the_reason(self):
        class FakeCuda:
            @staticmethod
            def is_available():
                return True

            @staticmethod
            def device_count():
                return 1

            @staticmethod
            def get_device_properties(i):
                return types.SimpleNamespace(name="NVIDIA H100", total_memory=80 * 2**30, major=9, minor=0)

            @staticmethod
            def device(i):
                return mock.MagicMock()

            @staticmethod
            def is_bf16_supported():
                return True

        fake_torch = mock.Mock()
        fake_torch.cuda = FakeCuda
        fake_torch.zeros.side_effect = RuntimeError("CUDA error: all CUDA-capable devices are busy or unavailable")
        report = probe._cuda(fake_torch)
        self.assertFalse(report["usable"])
        self.assertEqual(report["devices"][0]["capability"], "9.0")
        self.assertIn("busy or unavailable", report["error"])


if __name__ == "__main__":
    unittest.main()
