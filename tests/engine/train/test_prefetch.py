"""Training batches read ahead by a background thread arrive complete and in order."""

from __future__ import annotations

import numpy as np
import torch

from engine.data.arrays import batches
from engine.models.tensors import to_tensor
from engine.train.prefetch import batch_images


def test_batches_read_ahead_equal_batches_read_in_line():
    images = np.random.default_rng(0).integers(0, 256, (23, 8, 8, 3), dtype=np.uint8)
    order = np.random.default_rng(1).permutation(23)
    todo = list(batches(23, 5, order))
    inline = list(batch_images(images, todo, torch.device("cpu"), ahead=False))
    ahead = list(batch_images(images, todo, torch.device("cpu"), ahead=True))
    assert len(inline) == len(ahead) == 5
    for (i1, b1), (i2, b2) in zip(inline, ahead, strict=True):
        assert np.array_equal(i1, i2) and np.array_equal(b1, b2) and np.array_equal(b1, images[i1])


def test_to_tensor_takes_arrays_and_tensors_alike():
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    a = to_tensor(images, torch.device("cpu"))
    b = to_tensor(torch.from_numpy(images), torch.device("cpu"), channels_last=True)
    assert a.shape == (2, 3, 4, 4) and torch.equal(a, b) and float(a.max()) <= 1.0
