"""Decoded images as arrays: uint8 (N, H, W, 3) with labels and patient ids, and batches of their indices.

Torch-free: ``engine.models.tensors`` turns a batch into a model's input."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class ArraySet:
    """Images (N, H, W, 3) uint8 and labels (N,) int64, with optional patient ids for aggregation."""

    images: np.ndarray
    labels: np.ndarray
    patients: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def batches(n: int, batch_size: int, order: np.ndarray | None = None) -> Iterator[np.ndarray]:
    idx = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield np.sort(idx[start : start + batch_size])


def concat(a: ArraySet, b: ArraySet) -> ArraySet:
    patients = None if a.patients is None or b.patients is None else np.concatenate([a.patients, b.patients])
    return ArraySet(np.concatenate([a.images, b.images]), np.concatenate([a.labels, b.labels]), patients)
