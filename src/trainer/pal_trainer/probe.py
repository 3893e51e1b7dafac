"""Reports what this Python can do for PAL Studio's trainer, as one JSON object on stdout.

The engine runs this in every interpreter it considers, so it must work on any Python 3 and must
never fail: whatever goes wrong is reported in the object rather than raised. It imports nothing
from the trainer package, so a broken trainer cannot hide a working torch.
"""

import json
import os
import platform
import sys


def _error(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def _loaded_blas_libraries():
    """Shared BLAS/LAPACK libraries mapped into this process (Linux only).

    Debian's torch links the generic libblas.so.3, and which library that is depends on the
    alternatives system: the reference BLAS makes training 5-14x slower than OpenBLAS, so the
    engine shows which one was really loaded.
    """
    found = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1] if "/" in line else ""
                name = os.path.basename(path)
                if ("blas" in name or "lapack" in name or "mkl" in name) and path not in found:
                    found.append(path)
    except OSError:
        pass
    return found


def _cuda(torch):
    report = {"usable": False, "devices": []}
    try:
        if not torch.cuda.is_available():
            return report
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            with torch.cuda.device(index):
                bf16 = bool(torch.cuda.is_bf16_supported())
            report["devices"].append(
                {
                    "index": index,
                    "name": props.name,
                    "memoryBytes": int(props.total_memory),
                    "capability": "%d.%d" % (props.major, props.minor),
                    "bf16": bf16,
                }
            )
        # A driver that answers is_available() can still fail at the first allocation (a
        # mismatched driver, a device held by another process): only a real tensor proves it.
        torch.zeros(1, device="cuda").add_(1).item()
        report["usable"] = True
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable", reported as such
        report["error"] = _error(exc)
    return report


def probe():
    report = {
        "probe": 1,
        "executable": sys.executable,
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "torch": None,
    }
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - ImportError, but also broken installs raising anything
        report["torchError"] = _error(exc)
        return report
    mps = False
    try:
        mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    except Exception:  # noqa: BLE001
        pass
    report["torch"] = {
        "version": torch.__version__,
        "location": os.path.dirname(torch.__file__),
        "threads": torch.get_num_threads(),
        "cudaBuild": torch.version.cuda,
        "cuda": _cuda(torch),
        "mps": mps,
        "blasLibraries": _loaded_blas_libraries(),
    }
    return report


def main():
    try:
        report = probe()
    except Exception as exc:  # noqa: BLE001 - the probe must always answer
        report = {"probe": 1, "executable": sys.executable, "version": platform.python_version(), "torch": None, "probeError": _error(exc)}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
