"""The one worker abstraction: signals arrive on the UI thread, exactly one ending, cancel, throttling."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QObject, QThread, Slot

from desktop_app.workers import TaskRunner
from engine.core.errors import DataError
from engine.core.progress import check_cancel, report


class Recorder(QObject):
    """Records what reached it and on which thread (a bound-method receiver, as pages use)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []
        self.threads: set = set()

    @Slot(object)
    def progress(self, p) -> None:
        self._add("progress", p)

    @Slot(object)
    def finished(self, result) -> None:
        self._add("finished", result)

    @Slot(object, str)
    def failed(self, exc, details) -> None:
        self._add("failed", exc, details)

    @Slot()
    def cancelled(self) -> None:
        self._add("cancelled")

    def _add(self, *event) -> None:
        self.events.append(event)
        self.threads.add(QThread.currentThread())

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events if e[0] != "progress"]


@pytest.fixture
def runner(qtbot):
    r = TaskRunner()
    yield r
    r.cancel_all()
    assert r.wait(10_000)


def _start(runner, rec, fn, *args, **kwargs):
    task = runner.start("test task", fn, *args, **kwargs)
    for name in ("progress", "finished", "failed", "cancelled"):
        getattr(task, name).connect(getattr(rec, name))
    return task


def _count(n, *, on_progress=None, cancel=None, delay=0.0):
    worker_thread = threading.get_ident()
    for i in range(1, n + 1):
        check_cancel(cancel, "counting")
        time.sleep(delay)
        report(on_progress, "count", i, n, unit="steps")
    return worker_thread


def test_result_arrives_on_the_ui_thread_from_another_thread(qtbot, runner):
    rec = Recorder()
    _start(runner, rec, _count, 3)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert rec.kinds() == ["finished"]
    assert rec.events[-1][1] != threading.get_ident()  # the work ran on a pool thread
    assert rec.threads == {QThread.currentThread()}  # every signal was delivered on the UI thread
    assert [e[1].done for e in rec.events if e[0] == "progress"][-1] == 3


def test_failure_is_one_signal_with_the_exception_and_traceback(qtbot, runner):
    def boom(*, on_progress=None, cancel=None):
        raise DataError("folder X has no images")

    rec = Recorder()
    _start(runner, rec, boom)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert rec.kinds() == ["failed"]
    _, exc, details = rec.events[-1]
    assert isinstance(exc, DataError) and "boom" in details and "DataError" in details


def test_cancel_ends_with_cancelled_only(qtbot, runner):
    rec = Recorder()
    task = _start(runner, rec, _count, 10_000, delay=0.001)
    qtbot.waitUntil(lambda: any(e[0] == "progress" for e in rec.events), timeout=10_000)
    task.cancel()
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert rec.kinds() == ["cancelled"]


def test_progress_is_throttled_but_the_last_event_arrives(qtbot, runner):
    rec = Recorder()
    _start(runner, rec, _count, 20_000)
    qtbot.waitUntil(lambda: not runner.busy, timeout=20_000)
    progress = [e[1] for e in rec.events if e[0] == "progress"]
    assert 1 <= len(progress) < 2_000  # 20,000 reports do not flood the event queue
    assert progress[-1].done == 20_000


def test_busy_signal_follows_the_tasks(qtbot, runner):
    seen = []
    runner.busy_changed.connect(seen.append)
    _start(runner, Recorder(), _count, 1)
    _start(runner, Recorder(), _count, 1)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert seen[0] is True and seen[-1] is False and not runner.tasks


def test_a_task_that_ends_before_its_slots_are_connected_still_reaches_them(qtbot, runner):
    rec = Recorder()
    task = runner.start("instant task", _count, 1)
    assert runner.wait(10_000)  # the work is done on its thread before anything is connected
    time.sleep(0.05)
    for name in ("finished", "failed", "cancelled"):
        getattr(task, name).connect(getattr(rec, name))
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert rec.kinds() == ["finished"] and rec.threads == {QThread.currentThread()}


def test_an_instant_task_result_is_not_lost(qtbot, runner):
    def instant(*, on_progress=None, cancel=None):
        return 42

    for _ in range(20):  # the worker may finish before the caller connects: the start waits for the loop
        rec = Recorder()
        task = runner.start("instant", instant)
        time.sleep(0.005)
        task.finished.connect(rec.finished)
        qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
        assert rec.events == [("finished", 42)]
