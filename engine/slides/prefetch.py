"""Read ahead: the next batches of tiles are read and decoded by one background thread while the model runs on
the current one, so the slide's reads overlap inference instead of adding to it.

At most ``depth`` batches are in flight (read or being read) beside the one the caller holds, so memory stays
bounded whatever the slide's size. One worker thread does every read, in order, so a slide handle is only ever
read from one thread at a time (OpenSlide handles are thread-safe for ``read_region`` anyway). An error in the
reader is raised in the caller at the batch it concerns; when the caller stops early (cancel, an error of its
own, ``close()``), batches not yet started are dropped and the one being read is waited for, so no thread
outlives the call and the slide can be closed right after. numpy-free, Qt-free, torch-free.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Loaded = TypeVar("Loaded")
THREAD_NAME = "histoguard-slide-reader"


def read_ahead(load: Callable[[Item], Loaded], items: Iterable[Item], depth: int = 2) -> Iterator[Loaded]:
    """``load(item)`` for each item, in order, computed up to ``depth`` items ahead on one background thread;
    ``depth`` 0 loads in the caller's thread. Use it in ``contextlib.closing`` so stopping early stops the
    reader at once."""
    if depth <= 0:
        for item in items:
            yield load(item)
        return
    source = iter(items)
    with ThreadPoolExecutor(1, thread_name_prefix=THREAD_NAME) as pool:
        pending = deque(pool.submit(load, item) for _, item in zip(range(depth), source))
        try:
            while pending:
                loaded = pending.popleft().result()  # the reader's error, if any, is raised here
                for item in _next(source):
                    pending.append(pool.submit(load, item))
                yield loaded
        finally:
            for future in pending:
                future.cancel()  # not started: dropped; the one running finishes before the pool shuts down


def _next(source: Iterator[Item]) -> list[Item]:
    for item in source:
        return [item]
    return []
