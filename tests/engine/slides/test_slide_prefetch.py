"""Reading ahead: the next batches of tiles are read on one background thread while the model runs, at most
``depth`` batches ahead; the reader's errors reach the caller, and cancel or an early stop leave no thread
running. Prediction with and without it gives the same probabilities."""

from __future__ import annotations

import threading
import time
from contextlib import closing

import numpy as np
import pytest

from engine.core.errors import Cancelled, SlideError
from engine.core.progress import CancelToken
from engine.slides.prefetch import THREAD_NAME, read_ahead
from tests.engine.slides.painted import mean_colour_model, paint_slide


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME)]


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prefetch")
    return paint_slide(folder), mean_colour_model(folder)


def _wait_for(condition, timeout=5.0) -> None:
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)


def test_items_come_in_order_from_one_thread_at_most_depth_ahead():
    started, threads = [], set()

    def load(i):
        started.append(i)
        threads.add(threading.current_thread().name)
        return i * 10

    with closing(read_ahead(load, range(20), depth=2)) as loaded:
        assert next(loaded) == 0
        _wait_for(lambda: len(started) >= 3)
        time.sleep(0.1)  # the reader had time to run further ahead, if it would
        assert started == [0, 1, 2]  # the batch held + 2 ahead: memory stays bounded
        assert [next(loaded) for _ in range(3)] == [10, 20, 30]
    assert len(threads) == 1 and next(iter(threads)).startswith(THREAD_NAME)
    assert len(started) <= 6 and not _readers()  # stopping early stopped the reader
    assert list(read_ahead(load, range(3), depth=0)) == [0, 10, 20]
    assert threading.current_thread().name in threads  # depth 0: read in the caller's thread


def test_a_reader_error_reaches_the_caller_at_its_item():
    def load(i):
        if i == 3:
            raise SlideError("tile 3 is damaged")
        return i

    got = []
    with pytest.raises(SlideError, match="tile 3"):
        for item in read_ahead(load, range(10), depth=2):
            got.append(item)
    assert got == [0, 1, 2] and not _readers()


def test_prefetch_gives_the_same_probabilities_and_reads_in_one_thread(slide, monkeypatch):
    from engine.slides import predict as module

    readers = set()
    real = module.read_tile_rgb

    def spy(*args):
        readers.add(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(module, "read_tile_rgb", spy)
    ahead = module.predict_slide(*slide, model_mpp=1.0, batch_size=16, device="cpu")
    assert len(readers) == 1 and next(iter(readers)).startswith(THREAD_NAME)
    readers.clear()
    inline = module.predict_slide(*slide, model_mpp=1.0, batch_size=16, device="cpu", prefetch=0)
    assert readers == {threading.current_thread().name}
    assert np.array_equal(ahead.probabilities, inline.probabilities) and len(ahead.tiles) == 384


def test_a_read_error_in_the_reader_fails_the_prediction(slide, monkeypatch):
    from engine.slides import predict as module

    calls = []
    real = module.read_tile_rgb

    def failing(*args):
        calls.append(1)
        if len(calls) == 40:
            raise SlideError("slide.tiff: damaged tile (Bogus marker length)")
        return real(*args)

    monkeypatch.setattr(module, "read_tile_rgb", failing)
    with pytest.raises(SlideError, match="Bogus marker"):
        module.predict_slide(*slide, model_mpp=1.0, batch_size=16, device="cpu")
    assert len(calls) <= 40 + 16 and not _readers()  # the reader stopped at the error's batch


def test_cancel_stops_the_reader_within_the_bound(slide, monkeypatch):
    from engine.slides import predict as module

    token, reads, progress = CancelToken(), [], []
    real = module.read_tile_rgb
    monkeypatch.setattr(module, "read_tile_rgb", lambda *a: reads.append(1) or real(*a))

    def on_progress(p):
        progress.append(p.done)
        if p.done >= 32:
            token.cancel()

    with pytest.raises(Cancelled):
        module.predict_slide(*slide, model_mpp=1.0, batch_size=16, device="cpu", on_progress=on_progress, cancel=token)
    assert progress == [16, 32] and not _readers()
    assert len(reads) <= 16 * (2 + 2 + 1)  # the 2 predicted, 2 read ahead, at most 1 more started
