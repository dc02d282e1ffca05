"""Reads a slide's pyramid tiles on a background thread, so the UI thread never waits on a read.

The view asks for the tiles it needs at the level that matches its zoom; each request replaces the one
before (the newest request wins: tiles scrolled past are never read). The thread has its own OpenSlide
handle (OpenSlide is thread-safe for ``read_region``) and never touches Qt: it leaves finished tiles in a
deque that a UI-thread timer drains while reads are outstanding. So no Qt object is created, signalled
or destroyed from the thread, which rules out the lock/GIL deadlocks described in ``workers.py``.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from typing import NamedTuple

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)

TILE = 512  # level pixels a side of one viewer tile
POLL_MS = 15


class TileKey(NamedTuple):
    slide: int  # which slide (a new number each time one is opened)
    level: int
    col: int
    row: int


def tile_box(key: TileKey, level_dimensions) -> tuple[int, int, int, int]:
    """(x, y, width, height) of ``key`` in pixels of its level (edge tiles are smaller)."""
    width, height = level_dimensions[key.level]
    x, y = key.col * TILE, key.row * TILE
    return x, y, min(TILE, width - x), min(TILE, height - y)


class _Core:
    """The thread's side: a slide path, a queue of keys to read, finished tiles. No Qt in here."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.queue: deque[TileKey] = deque()
        self.done: deque[tuple[TileKey, np.ndarray | None]] = deque()
        self.path: str | None = None
        self.slide_id = -1
        self.level_dimensions: tuple = ()
        self.downsamples: tuple = ()
        self.stopped = False
        self.busy = False
        self.thread: threading.Thread | None = None

    def open(self, slide_id: int, path: str, level_dimensions, downsamples) -> None:
        with self.cond:
            self.slide_id, self.path = slide_id, path
            self.level_dimensions, self.downsamples = tuple(level_dimensions), tuple(downsamples)
            self.queue.clear()
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="slide-tile-reader", daemon=True)
            self.thread.start()

    def request(self, keys: list[TileKey]) -> None:
        with self.cond:
            self.queue = deque(keys)
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.queue.clear()
            self.cond.notify()

    @property
    def idle(self) -> bool:
        return not self.queue and not self.busy and not self.done

    def _loop(self) -> None:
        slide, open_path = None, None
        while True:
            with self.cond:
                while not self.queue and not self.stopped:
                    self.cond.wait()
                if self.stopped:
                    break
                key, path = self.queue.popleft(), self.path
                dims, downsamples = self.level_dimensions, self.downsamples
                self.busy = True
            try:
                if key.slide != self.slide_id:
                    continue
                if path != open_path:
                    slide = _reopen(slide, path)
                    open_path = path
                self.done.append((key, _read(slide, key, dims, downsamples)))
            except Exception as exc:  # a bad region must not end the thread; the view keeps the thumbnail
                log.warning("slide tile %s could not be read: %s", key, exc)
                self.done.append((key, None))
            finally:
                self.busy = False
        if slide is not None:
            slide.close()


def _reopen(old, path: str):
    from engine.slides import open_slide

    if old is not None:
        old.close()
    return open_slide(path)


def _read(slide, key: TileKey, level_dimensions, downsamples) -> np.ndarray:
    """One viewer tile as (h, w, 3) uint8, transparent parts (outside the scan) shown white."""
    from PIL import Image

    x, y, w, h = tile_box(key, level_dimensions)
    ds = downsamples[key.level]
    region = slide.read_region((round(x * ds), round(y * ds)), key.level, (w, h))
    if region.mode == "RGBA":
        white = Image.new("RGB", region.size, (255, 255, 255))
        white.paste(region, mask=region.getchannel("A"))
        region = white
    return np.asarray(region.convert("RGB"))


class TileReader(QObject):
    """``open(...)`` a slide, then ``request(keys)``; ``tile_ready(key, rgb)`` arrives on the UI thread."""

    tile_ready = Signal(object, object)  # TileKey, (h, w, 3) uint8 array

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._core = _Core()
        weakref.finalize(self, self._core.stop)  # the thread ends with the reader
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._drain)
        self.last_request: list[TileKey] = []  # what the view asked for last
        self.levels_requested: deque[int] = deque(maxlen=100)  # the level of each request that read something
        self.reads = 0

    def open(self, slide_id: int, path: str, level_dimensions, downsamples) -> None:
        self._core.open(slide_id, str(path), level_dimensions, downsamples)

    def request(self, keys: list[TileKey]) -> None:
        """Read ``keys`` (closest to the centre first), dropping whatever earlier request is still queued."""
        self.last_request = list(keys)
        if keys:
            self.levels_requested.append(keys[0].level)
        self._core.request(list(keys))
        if keys and not self._timer.isActive():
            self._timer.start()

    @property
    def idle(self) -> bool:
        return self._core.idle

    def close(self) -> None:
        self._timer.stop()
        self._core.stop()

    def _drain(self) -> None:
        while self._core.done:
            key, rgb = self._core.done.popleft()
            if rgb is not None:
                self.reads += 1
                self.tile_ready.emit(key, rgb)
        if self._core.idle:
            self._timer.stop()
