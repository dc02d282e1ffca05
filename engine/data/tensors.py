"""uint8 NHWC arrays -> float NCHW batches in [0, 1] on a device, and label-preserving augmentation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ArraySet:
    """Images (N, H, W, 3) uint8 and labels (N,) int64, with optional patient ids for aggregation."""

    images: np.ndarray
    labels: np.ndarray
    patients: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


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


def batches(n: int, batch_size: int, order: np.ndarray | None = None) -> Iterator[np.ndarray]:
    idx = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield np.sort(idx[start : start + batch_size])


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and 90-degree rotations per image: tissue has no up or down, pixels are unchanged."""
    n = x.shape[0]
    draws = torch.randint(0, 8, (n,), generator=generator).tolist()
    out = torch.empty_like(x)
    for i, k in enumerate(draws):
        xi = x[i]
        if k & 4:
            xi = xi.flip(-1)
        out[i] = torch.rot90(xi, k & 3, dims=(-2, -1))
    return out


def concat(a: ArraySet, b: ArraySet) -> ArraySet:
    patients = None if a.patients is None or b.patients is None else np.concatenate([a.patients, b.patients])
    return ArraySet(np.concatenate([a.images, b.images]), np.concatenate([a.labels, b.labels]), patients)
