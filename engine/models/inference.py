"""A model's logits on a labelled set, batch by batch, without gradients (what calibration is fitted on)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.data.arrays import ArraySet, batches
from engine.models.fast import fast_model
from engine.models.tensors import to_tensor


@torch.no_grad()
def logits_of(model: nn.Module, data: ArraySet, device: torch.device, batch_size: int = 64) -> np.ndarray:
    """(N, classes) float64 logits of ``model`` (eval mode, its faster folded copy) on ``data``'s images."""
    model.eval()
    fast = fast_model(model)
    out = [fast(to_tensor(data.images[idx], device)).double().cpu().numpy() for idx in batches(len(data), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 2))
