"""Letting the event loop run until the app has done its work: queued worker signals are delivered by it."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QApplication


def wait_until(app: QApplication, condition, timeout_s: float = 600.0, what: str = "its work") -> None:
    """Process events until ``condition()`` holds; TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the app did not finish {what} in time")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, window, timeout_s: float = 600.0) -> None:
    """Until no task runs, then a few more turns of the event loop for what their signals started."""
    wait_until(app, lambda: not window.ctx.tasks.busy, timeout_s)
    for _ in range(5):
        app.processEvents()
        time.sleep(0.02)
