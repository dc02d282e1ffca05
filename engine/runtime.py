"""Process-wide CPU speed settings, applied once by the entry points (CLI, app, benchmarks), never on import.

- glibc's allocator returns every large freed block to the OS and takes it back on the next pass: a
  DenseNet121 forward at 224 then costs 100-190k page faults, about 1.5x the time (../shared/FINDINGS.md).
  Raising the mmap and trim thresholds keeps those blocks in the process. ``GLIBC_TUNABLES`` does the same
  from the environment; ``mallopt`` does it from inside the process, for the allocations that follow.
- bf16 is fast on a CPU only with native bf16 instructions (AVX512-BF16 or AMX). Without them PyTorch runs
  bf16 convolutions in a slow reference kernel (measured here on an AVX2-only CPU: ~10x *slower* than
  fp32), so "auto" precision picks bf16 on the CPU only where oneDNN reports support.

Torch-free at import: ``torch`` is imported inside the functions that need it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 32 * 1024 * 1024  # blocks below 32 MiB come from the heap, which is kept
TRIM_THRESHOLD = 1 << 30  # give memory back to the OS only when 1 GiB at the top of the heap is free
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
PRECISIONS = ("auto", "fp32", "bf16")
_malloc_tuned: bool | None = None


def tune_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True when they are in effect.

    Off with ``HISTOGUARD_MALLOC_TUNING=0``; a no-op (False) on other C libraries and systems, and when
    ``GLIBC_TUNABLES`` already sets the thresholds (the user's choice wins).
    """
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    _malloc_tuned = False
    if os.environ.get("HISTOGUARD_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    if "malloc.mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        _malloc_tuned = True
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = (
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        )
    except (OSError, AttributeError):  # musl and others have no mallopt
        ok = False
    _malloc_tuned = ok
    log.debug("malloc thresholds %s", "raised" if ok else "left at their defaults")
    return ok


def cpu_bf16_fast() -> bool:
    """True when this CPU runs bf16 convolutions natively (oneDNN with AVX512-BF16 or AMX)."""
    import torch

    if os.environ.get("HISTOGUARD_CPU_BF16") in ("0", "1"):  # manual override, e.g. to test both paths
        return os.environ["HISTOGUARD_CPU_BF16"] == "1"
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # the private check moved: be safe, stay in fp32
        return False


def autocast_dtype(device, precision: str = "auto"):
    """The autocast dtype for ``precision`` on ``device`` (a torch.device), or None for plain fp32.

    'auto': bf16 (fp16 where bf16 is missing) on CUDA; bf16 on CPUs with native bf16, else fp32.
    'bf16': bf16 everywhere (slow on CPUs without native support: a warning says so). 'fp32': None.
    """
    import torch

    if precision not in PRECISIONS:
        from engine.errors import ConfigError

        raise ConfigError(f"precision {precision!r} is unknown; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    if device.type != "cpu":
        return None
    if precision == "bf16":
        if not cpu_bf16_fast():
            log.warning("bf16 asked for on a CPU without native bf16: expect it to be slower than fp32")
        return torch.bfloat16
    return torch.bfloat16 if cpu_bf16_fast() else None


def describe_runtime() -> dict:
    """What the speed depends on, for logs and benchmark headers."""
    import platform

    import torch

    info = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": cpu_bf16_fast(),
        "malloc_tuned": bool(_malloc_tuned),
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()
