"""Batched prediction in torch, clean or under an attack made on a (possibly different) source model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.arrays import ArraySet, batches
from engine.models.fast import fast_model
from engine.models.tensors import to_tensor, to_uint8

AttackFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def _probs(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    return torch.softmax(model(x).float(), dim=1).cpu().numpy()


def predict_proba(
    model: nn.Module,
    data: ArraySet,
    device: torch.device,
    batch_size: int = 64,
    attack: AttackFn | None = None,
    source: nn.Module | None = None,
    stage: str = "predict",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Class probabilities (N, 2) of ``model``; with ``attack``, on adversarial images made on ``source``
    (``model`` itself when None: white-box). Nothing is stored but the probabilities."""
    model.eval()
    source = model if source is None else source
    net = fast_model(model)  # BatchNorm folded, channels-last: same probabilities, ~1.5x faster on a CPU
    out, n = [], len(data)
    for b, idx in enumerate(batches(n, batch_size), start=1):
        check_cancel(cancel, stage)
        x = to_tensor(data.images[idx], device)
        if attack is not None:
            x = attack(source, x, torch.from_numpy(data.labels[idx]).to(device))
        out.append(_probs(net, x))
        report(on_progress, stage, min(b * batch_size, n), n, unit="images")
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.float32)


def adversarial_set(
    source: nn.Module,
    data: ArraySet,
    attack: AttackFn,
    device: torch.device,
    batch_size: int = 64,
    stage: str = "attack",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ArraySet:
    """Adversarial copies of ``data`` made on ``source``, stored as 8-bit images (exact for eps = k/255 FGSM)."""
    out = np.empty_like(data.images)
    n = len(data)
    for b, idx in enumerate(batches(n, batch_size), start=1):
        check_cancel(cancel, stage)
        x = to_tensor(data.images[idx], device)
        out[idx] = to_uint8(attack(source, x, torch.from_numpy(data.labels[idx]).to(device)))
        report(on_progress, stage, min(b * batch_size, n), n, unit="images")
    return ArraySet(out, data.labels.copy(), None if data.patients is None else data.patients.copy())
