"""Training batches gathered ahead of time: on a GPU, the next batch is read from the (memory-mapped)
decoded-image cache and put in pinned memory by a background thread while the GPU works on the current
one, so the copy to the device can be asynchronous (``non_blocking``). On the CPU the gather is cheap and
a second thread would only compete with the compute threads, so batches are read in line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch


def _gather(images: np.ndarray, idx: np.ndarray, pin: bool) -> np.ndarray | torch.Tensor:
    batch = np.ascontiguousarray(images[idx])
    return torch.from_numpy(batch).pin_memory() if pin else batch


def batch_images(
    images: np.ndarray, index_batches: Iterable[np.ndarray], device: torch.device, ahead: bool | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray | torch.Tensor]]:
    """(idx, uint8 NHWC images of idx) for each batch of indices; on CUDA pinned, and (``ahead``, the
    default there) gathered one batch ahead by a background thread."""
    pin = device.type == "cuda"
    if not (pin if ahead is None else ahead):
        for idx in index_batches:
            yield idx, _gather(images, idx, pin)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="histoguard-prefetch") as pool:
        pending = None
        for idx in index_batches:
            future = pool.submit(_gather, images, idx, pin)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (idx, future)
        if pending is not None:
            yield pending[0], pending[1].result()
