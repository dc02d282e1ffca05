"""The one worker abstraction: long engine calls run on a thread pool, never on the UI thread.

A ``Task`` wraps a plain-Python engine call that takes ``on_progress`` and ``cancel`` (see
``engine.core.progress``). Its signals reach the UI thread queued: ``progress(Progress)`` (throttled),
``finished(result)``, ``failed(exception, traceback text)`` and ``cancelled()``; exactly one of the last
three is emitted, then ``ended()``. The worker hands its outcome to the task's own UI-thread slot, which
emits those four, so a task that ends within microseconds cannot emit them before the code that started
it has connected its slots (a signal emitted with no connection yet is lost, queued or not). Worker code
never touches widgets. ``TaskRunner`` owns the pool, keeps every task's signal object parented to itself
(a long-lived QObject, so queued signals are never lost) and can cancel and wait for all tasks when the
window closes.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal, Slot

from engine.core.errors import Cancelled
from engine.core.progress import CancelToken, Progress

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress signals a second per task, plus every stage change


class Task(QObject):
    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(object, str)
    cancelled = Signal()
    ended = Signal()  # after any of finished / failed / cancelled
    # The worker thread emits only these argument-less signals and leaves the data in a thread-safe queue.
    # Emitting a signal with a Python-object argument copies it (taking the GIL) while Qt holds the sender's
    # connection lock; the UI thread destroying any QObject under the same lock while holding the GIL then
    # deadlocks (seen with PySide6 6.11: a closed window freed while a training worker reported progress).
    _progress_ready = Signal()
    _outcome_ready = Signal()

    def __init__(self, name: str, fn: Callable, args: tuple, kwargs: dict, parent: QObject) -> None:
        super().__init__(parent)
        self.name, self.fn, self.args, self.kwargs = name, fn, args, kwargs
        self.token = CancelToken()
        self._last_emit, self._last_stage = 0.0, None
        self.running = True
        self._progress_queue: deque[Progress] = deque()
        self._outcome: tuple[str, object, str] | None = None
        self._progress_ready.connect(self._deliver_progress, Qt.ConnectionType.QueuedConnection)
        self._outcome_ready.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def cancel(self) -> None:
        self.token.cancel()

    def _on_progress(self, p: Progress) -> None:  # called on the worker thread
        now = time.monotonic()
        due = now - self._last_emit > PROGRESS_INTERVAL_S
        if due or p.stage != self._last_stage or p.done >= p.total or p.unit == "epochs":
            self._last_emit, self._last_stage = now, p.stage
            self._progress_queue.append(p)  # deque.append/popleft are thread-safe
            self._progress_ready.emit()

    def run(self) -> None:  # called on the worker thread
        try:
            result = self.fn(*self.args, on_progress=self._on_progress, cancel=self.token, **self.kwargs)
        except Cancelled:
            log.info("%s cancelled", self.name)
            self._outcome = ("cancelled", None, "")
        except Exception as exc:  # every failure reaches the UI through one signal  # noqa: BLE001
            log.error("%s failed: %s", self.name, exc, exc_info=True)
            self._outcome = ("failed", exc, traceback.format_exc())
        else:
            self._outcome = ("finished", result, "")
        self.running = False
        self._outcome_ready.emit()  # the thread's work is over (its outcome may still wait in the UI's queue)

    @Slot()
    def _deliver_progress(self) -> None:  # on the UI thread
        while self._progress_queue:
            self.progress.emit(self._progress_queue.popleft())

    @Slot()
    def _deliver(self) -> None:  # on the UI thread
        self._deliver_progress()
        kind, value, details = self._outcome
        if kind == "finished":
            self.finished.emit(value)
        elif kind == "failed":
            self.failed.emit(value, details)
        else:
            self.cancelled.emit()
        self.ended.emit()


class _Runnable(QRunnable):
    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task
        self.setAutoDelete(True)

    def run(self) -> None:
        self.task.run()


_POOL: QThreadPool | None = None


def shared_pool(max_threads: int = 4) -> QThreadPool:
    """One thread pool for the process, never destroyed before exit.

    A QThreadPool's destructor joins its threads while holding the GIL; a pool thread that has run
    Python needs the GIL to exit, so destroying a pool (e.g. with a closed window) could deadlock.
    """
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(max_threads)
        _POOL.setExpiryTimeout(-1)  # idle threads stay: no thread exits (and needs the GIL) mid-session
    return _POOL


class TaskRunner(QObject):
    """Starts tasks on its own thread pool; the window owns one."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = shared_pool()
        self.tasks: list[Task] = []
        self._pending: list[Task] = []

    def start(self, name: str, fn: Callable, *args, **kwargs) -> Task:
        """Run ``fn(*args, on_progress=..., cancel=..., **kwargs)`` on the pool; connect to the returned
        task's signals before control returns to the event loop (they are delivered queued)."""
        task = Task(name, fn, args, kwargs, parent=self)
        task.ended.connect(self._ended)  # a bound method of a UI-thread QObject: delivered queued
        self.tasks.append(task)
        self.busy_changed.emit(True)
        log.info("starting %s", name)
        # start on the next turn of the event loop, after the caller has connected its slots: a task
        # that finishes in microseconds would otherwise emit `finished` before anyone listens
        self._pending.append(task)
        QTimer.singleShot(0, self._launch_pending)
        return task

    @Slot()
    def _launch_pending(self) -> None:
        # Collect Python's cyclic garbage here, on the UI thread, before a worker runs: if the collector
        # ran on a worker thread and freed a Qt object (a closed dialog or page part), its destructor would
        # take a Qt lock and then wait for the GIL while the UI thread, holding the GIL, waits for that
        # lock (seen as a hang in CI with PySide6 6.11).
        gc.collect()
        while self._pending:
            self.pool.start(_Runnable(self._pending.pop(0)))

    @Slot()
    def _ended(self) -> None:
        task = self.sender()
        if task in self.tasks:
            self.tasks.remove(task)
        task.deleteLater()
        if not self.tasks:
            self.busy_changed.emit(False)

    @property
    def busy(self) -> bool:
        """A task has not ended yet, as far as the UI thread knows (its last signals may be queued)."""
        return bool(self.tasks)

    @property
    def running(self) -> bool:
        """A task's thread is still working (after ``wait`` this is False even before the queued
        signals are handled)."""
        return any(t.running for t in self.tasks)

    def cancel_all(self) -> None:
        for task in self.tasks:
            task.cancel()

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until every task's thread is done (True) or the timeout passes (False)."""
        self._launch_pending()  # a task not started yet still runs (and ends at once if cancelled)
        return self.pool.waitForDone(timeout_ms)
