"""The compute device (CUDA when present and asked for or 'auto', else the CPU) and its precision.

bf16 is fast on a CPU only with native bf16 instructions (AVX512-BF16 or AMX). Without them PyTorch runs bf16
convolutions in a slow reference kernel (measured on an AVX2-only CPU: ~10x *slower* than fp32), so "auto"
precision picks bf16 on the CPU only where oneDNN reports support.
"""

from __future__ import annotations

import logging
import os

import torch

from engine.core.errors import ConfigError, option
from engine.core.runtime import PRECISIONS, cpu_name, malloc_tuned

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> the first CUDA GPU if there is one, else the CPU; 'cuda' without a GPU is an error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} asked for, but torch sees no CUDA GPU; choose {option('device', 'cpu')} or "
            f"{option('device', 'auto')}"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not 'auto', 'cpu', 'cuda' or 'cuda:N'") from None


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA GPU {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def cpu_bf16_fast() -> bool:
    """True when this CPU runs bf16 convolutions natively (oneDNN with AVX512-BF16 or AMX)."""
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
    if precision not in PRECISIONS:
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

    info = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": cpu_bf16_fast(),
        "malloc_tuned": malloc_tuned(),
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info
