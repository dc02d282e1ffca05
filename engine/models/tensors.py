"""uint8 NHWC images <-> float NCHW batches in [0, 1] on a device: how images enter and leave a torch model."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(batch: np.ndarray | torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """uint8 NHWC (an array, or a pinned tensor for an asynchronous copy to a GPU) -> float NCHW in [0, 1]."""
    if isinstance(batch, np.ndarray):
        batch = torch.from_numpy(np.require(batch, requirements=["C", "W"]))
    x = batch.to(device, non_blocking=True)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float NCHW in [0, 1] -> uint8 NHWC (rounded, as a PNG would store it)."""
    return x.detach().mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
