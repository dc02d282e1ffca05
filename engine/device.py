"""Choose the compute device: CUDA when present (and asked for or 'auto'), else CPU."""

from __future__ import annotations

import logging

import torch

from engine.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> the first CUDA GPU if there is one, else the CPU; 'cuda' without a GPU is an error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not 'auto', 'cpu', 'cuda' or 'cuda:N'") from None


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA GPU {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """Mixed precision for training: see ``engine.runtime.autocast_dtype`` (bf16 on CUDA and on CPUs with
    native bf16, fp16 on older GPUs, fp32 elsewhere)."""
    from engine.runtime import autocast_dtype as choose

    return choose(device, precision)
